//! The validated configuration the engine runs on. TypeScript parses the
//! command line, discovers defaults and validates; the binding converts
//! that into this struct. Nothing here parses text.

use std::net::{Ipv4Addr, Ipv6Addr};

/// What the guest is told about IPv4, and what we answer for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Config {
    /// The guest's address (DHCP yiaddr).
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// The default gateway we impersonate (ARP, DHCP router and server id).
    pub gateway: Ipv4Addr,
    /// DNS servers offered by DHCP (empty: none).
    pub dns: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Config {
    /// The guest's global address (DHCPv6 IA_NA; its /64 is advertised).
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
    /// The host's IPv6 gateway as the guest may address it (mapped to the
    /// host's loopback, see `man passt` NOTES).
    pub gateway: Ipv6Addr,
    /// The link-local router we impersonate: source of RAs and DHCPv6
    /// replies, and the guest's default route.
    pub router_ll: Ipv6Addr,
    pub dns: Vec<Ipv6Addr>,
}

/// Per-service switches (`--no-dhcp` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disabled {
    pub dhcp: bool,
    pub ndp: bool,
    pub dhcpv6: bool,
    pub ra: bool,
    pub icmp: bool,
    pub tcp: bool,
    pub udp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestConfig {
    /// Source MAC of everything we send to the guest (`-M`).
    pub our_mac: [u8; 6],
    pub v4: Option<Ipv4Config>,
    pub v6: Option<Ipv6Config>,
    /// DNS search list for DHCP option 119, DHCPv6 and NDP DNSSL.
    pub search: Vec<String>,
    /// MTU offered (DHCP option 26, NDP MTU option); `None`: not sent.
    pub mtu: Option<u16>,
    /// `-H`: the host name offered (DHCP option 12); `None`: not sent.
    pub hostname: Option<String>,
    pub disabled: Disabled,
}

impl GuestConfig {
    /// A configuration for tests and examples: the addresses of
    /// `shared/testnet/fakehost.sh`.
    pub fn example() -> Self {
        GuestConfig {
            our_mac: [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55],
            v4: Some(Ipv4Config {
                addr: Ipv4Addr::new(192, 0, 2, 2),
                prefix_len: 24,
                gateway: Ipv4Addr::new(192, 0, 2, 1),
                dns: vec![Ipv4Addr::new(192, 0, 2, 1)],
            }),
            v6: Some(Ipv6Config {
                addr: "fd00::2".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
                prefix_len: 64,
                gateway: "fd00::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
                router_ll: "fe80::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED),
                dns: vec!["fd00::53".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)],
            }),
            search: vec!["example.org".into()],
            mtu: Some(65520),
            hostname: None,
            disabled: Disabled::default(),
        }
    }
}

/// IPv4 netmask of a prefix length.
pub fn netmask(prefix_len: u8) -> Ipv4Addr {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks() {
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(netmask(32), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(netmask(17), Ipv4Addr::new(255, 255, 128, 0));
    }
}
