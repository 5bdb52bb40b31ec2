//! Flows: L4 traffic of the guest carried over host sockets. One module
//! per protocol; each owns its sockets and its table, takes time as an
//! argument, and hands frames' contents back to the engine to be framed.

pub mod icmp;
pub mod splice;
pub mod tcp;
pub mod udp;
pub mod udp_splice;
