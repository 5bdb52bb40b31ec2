//! Flows: L4 traffic of the guest carried over host sockets. One module
//! per protocol; each owns its sockets and its table, takes time as an
//! argument, and hands frames' contents back to the engine to be framed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The loopback address of IPv6 (`v6`) or IPv4: where the gateway leads,
/// and where the splice paths connect.
pub fn loopback(v6: bool) -> IpAddr {
    if v6 {
        Ipv6Addr::LOCALHOST.into()
    } else {
        Ipv4Addr::LOCALHOST.into()
    }
}

/// The unspecified address of IPv6 (`v6`) or IPv4.
pub fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    }
}

pub mod icmp;
pub mod policy;
pub mod record;
pub mod splice;
pub mod tcp;
pub mod udp;
pub mod udp_splice;
