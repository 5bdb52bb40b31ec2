//! NDP (RFC 4861) from the guest's side: we are its router and every
//! neighbour it has. Router Solicitations get a Router Advertisement with
//! the guest's /64 (for SLAAC), the MTU, and DNS (RDNSS/DNSSL, RFC 8106);
//! Neighbor Solicitations for any address but the sender's own get our
//! MAC. Duplicate Address Detection probes (unspecified source) are never
//! answered, so the guest's addresses stay its own.

use std::net::Ipv6Addr;

use crate::config::GuestConfig;
use crate::wire::ndisc::{
    self, Message, RouterAdvert, NA_ROUTER, NA_SOLICITED, RA_MANAGED, RA_OTHER,
};

/// Router and DNS information stays valid this long (seconds); RAs are
/// answered on request, and a guest solicits again when it restarts.
pub const LIFETIME: u32 = 3600;
/// All-nodes multicast, the destination of RAs to a solicitor without an
/// address.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An ICMPv6 message (checksum still zero) and its addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub message: Vec<u8>,
    pub src_ip: Ipv6Addr,
    pub dst_ip: Ipv6Addr,
    pub dst_mac: [u8; 6],
}

fn multicast_mac(a: Ipv6Addr) -> [u8; 6] {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// `src_ip`/`src_mac`: the IPv6 source and Ethernet source of the
/// message from the guest.
pub fn answer(
    msg: &Message,
    src_ip: Ipv6Addr,
    src_mac: [u8; 6],
    cfg: &GuestConfig,
) -> Option<Answer> {
    if cfg.disabled.ndp {
        return None;
    }
    let v6 = cfg.v6.as_ref()?;
    match msg {
        Message::RouterSolicit { .. } => {
            if cfg.disabled.ra {
                return None;
            }
            let prefix_len = 64u8;
            let prefix = Ipv6Addr::from(u128::from(v6.addr) & (u128::MAX << (128 - prefix_len)));
            let ra = RouterAdvert {
                flags: if cfg.disabled.dhcpv6 {
                    0
                } else {
                    RA_MANAGED | RA_OTHER
                },
                router_lifetime: u16::MAX,
                source_lladdr: cfg.our_mac,
                prefix: Some((prefix, prefix_len, LIFETIME)),
                mtu: cfg.mtu.map(u32::from),
                rdnss: v6.dns.clone(),
                dnssl: cfg.search.clone(),
                dns_lifetime: LIFETIME,
            };
            let (dst_ip, dst_mac) = if src_ip.is_unspecified() {
                (ALL_NODES, multicast_mac(ALL_NODES))
            } else {
                (src_ip, src_mac)
            };
            Some(Answer {
                message: ra.emit(),
                src_ip: v6.router_ll,
                dst_ip,
                dst_mac,
            })
        }
        Message::NeighborSolicit {
            target,
            source_lladdr,
        } => {
            // DAD probes and the guest's own address are not ours; a
            // multicast target is invalid (RFC 4861 7.1.1) and would make
            // our advertisement come from a multicast address.
            if src_ip.is_unspecified() || *target == src_ip || target.is_multicast() {
                return None;
            }
            let flags = NA_SOLICITED
                | if *target == v6.router_ll {
                    NA_ROUTER
                } else {
                    0
                };
            Some(Answer {
                message: ndisc::neighbor_advert(*target, cfg.our_mac, flags),
                src_ip: *target,
                dst_ip: src_ip,
                dst_mac: source_lladdr.unwrap_or(src_mac),
            })
        }
        Message::Other(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn router_solicitation_gets_the_prefix_mtu_and_dns() {
        let cfg = GuestConfig::example();
        let rs = Message::RouterSolicit {
            source_lladdr: Some(GUEST_MAC),
        };
        let a = answer(&rs, ip("fe80::5054:ff:fe12:3456"), GUEST_MAC, &cfg).unwrap();
        assert_eq!(a.src_ip, ip("fe80::1"));
        assert_eq!(a.dst_ip, ip("fe80::5054:ff:fe12:3456"));
        assert_eq!(a.message[0], ndisc::ROUTER_ADVERT);
        assert_eq!(a.message[5], RA_MANAGED | RA_OTHER);
        // Prefix information: fd00::/64, on-link + autonomous.
        let pi = &a.message[16..48];
        assert_eq!(&pi[..4], &[3, 4, 64, 0xc0]);
        assert_eq!(&pi[16..32], &ip("fd00::").octets());
        let from_nowhere = answer(&rs, Ipv6Addr::UNSPECIFIED, GUEST_MAC, &cfg).unwrap();
        assert_eq!(from_nowhere.dst_ip, ALL_NODES);
        assert_eq!(from_nowhere.dst_mac, [0x33, 0x33, 0, 0, 0, 1]);
    }

    #[test]
    fn neighbour_solicitations_get_our_mac_except_for_dad() {
        let cfg = GuestConfig::example();
        let ns = |target: &str| Message::NeighborSolicit {
            target: ip(target),
            source_lladdr: Some(GUEST_MAC),
        };
        let a = answer(&ns("fe80::1"), ip("fd00::2"), GUEST_MAC, &cfg).unwrap();
        assert_eq!(a.message[4], NA_SOLICITED | NA_ROUTER);
        assert_eq!(&a.message[26..32], &cfg.our_mac);
        assert_eq!(
            (a.src_ip, a.dst_ip, a.dst_mac),
            (ip("fe80::1"), ip("fd00::2"), GUEST_MAC)
        );
        let other = answer(&ns("fd00::77"), ip("fd00::2"), GUEST_MAC, &cfg).unwrap();
        assert_eq!(other.message[4], NA_SOLICITED);
        assert_eq!(
            answer(&ns("fd00::2"), Ipv6Addr::UNSPECIFIED, GUEST_MAC, &cfg),
            None
        );
        assert_eq!(answer(&ns("fd00::2"), ip("fd00::2"), GUEST_MAC, &cfg), None);
        // Found by the fuzzer: a multicast target got an advertisement
        // from that multicast address.
        assert_eq!(answer(&ns("ff77::2"), ip("fd77::1"), GUEST_MAC, &cfg), None);
    }

    #[test]
    fn switches_turn_answers_off() {
        let mut cfg = GuestConfig::example();
        let rs = Message::RouterSolicit {
            source_lladdr: None,
        };
        cfg.disabled.ra = true;
        assert_eq!(answer(&rs, ip("fe80::2"), GUEST_MAC, &cfg), None);
        cfg.disabled.ra = false;
        cfg.disabled.dhcpv6 = true;
        assert_eq!(
            answer(&rs, ip("fe80::2"), GUEST_MAC, &cfg).unwrap().message[5],
            0
        );
        cfg.disabled.ndp = true;
        assert_eq!(answer(&rs, ip("fe80::2"), GUEST_MAC, &cfg), None);
    }
}
