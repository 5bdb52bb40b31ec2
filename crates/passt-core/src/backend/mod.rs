//! Where guest frames come from and go to: the qemu stream socket and the
//! pasta tap device. A backend moves whole Ethernet frames and knows no
//! protocol above that.

pub mod framing;
pub mod pcap;
pub mod qemu;
pub mod qrap;
pub mod tap;
pub mod txqueue;
pub mod vnet;
