//! The services that answer the guest ourselves: ARP, DHCPv4, NDP and
//! DHCPv6. Each is pure: a parsed request and the guest configuration in,
//! a reply and its addressing out; framing it is the caller's job.

pub mod arp;
pub mod dhcp;
pub mod dhcpv6;
pub mod ndp;
