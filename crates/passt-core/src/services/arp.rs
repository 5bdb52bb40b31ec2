//! ARP (RFC 826) from the guest's side: every IPv4 address other than the
//! guest's own is reached through us, so we answer requests for all of
//! them with our MAC. Requests for the guest's own address (address
//! conflict probes, RFC 5227, and gratuitous announcements) get no answer:
//! answering would make the guest believe its address is taken.

use std::net::Ipv4Addr;

use crate::config::GuestConfig;

/// The fields of an ARP request we act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_ip: Ipv4Addr,
}

/// The reply: "target_ip is at our_mac", addressed back to the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub our_mac: [u8; 6],
    pub our_ip: Ipv4Addr,
    pub dst_mac: [u8; 6],
    pub dst_ip: Ipv4Addr,
}

pub fn answer(q: &Query, cfg: &GuestConfig) -> Option<Reply> {
    let guest = cfg.v4.as_ref().map(|v4| v4.addr);
    let probe = q.sender_ip.is_unspecified();
    let announcement = q.sender_ip == q.target_ip;
    // Nobody owns a multicast or broadcast address: no reply claims one.
    let shared = q.target_ip.is_multicast() || q.target_ip.is_broadcast();
    if probe || announcement || shared || Some(q.target_ip) == guest {
        return None;
    }
    Some(Reply {
        our_mac: cfg.our_mac,
        our_ip: q.target_ip,
        dst_mac: q.sender_mac,
        dst_ip: q.sender_ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn q(sender: [u8; 4], target: [u8; 4]) -> Query {
        Query {
            sender_mac: GUEST_MAC,
            sender_ip: sender.into(),
            target_ip: target.into(),
        }
    }

    #[test]
    fn never_claims_a_multicast_or_broadcast_address() {
        let cfg = GuestConfig::example();
        for target in [[224, 0, 0, 1], [255, 255, 255, 255]] {
            assert_eq!(answer(&q([192, 0, 2, 2], target), &cfg), None);
        }
    }

    #[test]
    fn answers_for_the_gateway_and_anything_else() {
        let cfg = GuestConfig::example();
        for target in [[192, 0, 2, 1], [192, 0, 2, 77], [203, 0, 113, 9]] {
            let r = answer(&q([192, 0, 2, 2], target), &cfg).unwrap();
            assert_eq!(r.our_mac, cfg.our_mac);
            assert_eq!(r.our_ip, Ipv4Addr::from(target));
            assert_eq!(
                (r.dst_mac, r.dst_ip),
                (GUEST_MAC, Ipv4Addr::new(192, 0, 2, 2))
            );
        }
    }

    #[test]
    fn never_claims_the_guests_own_address() {
        let cfg = GuestConfig::example();
        assert_eq!(
            answer(&q([0, 0, 0, 0], [192, 0, 2, 2]), &cfg),
            None,
            "probe"
        );
        assert_eq!(
            answer(&q([0, 0, 0, 0], [192, 0, 2, 1]), &cfg),
            None,
            "any probe"
        );
        assert_eq!(
            answer(&q([192, 0, 2, 2], [192, 0, 2, 2]), &cfg),
            None,
            "announcement"
        );
        assert_eq!(
            answer(&q([192, 0, 2, 9], [192, 0, 2, 2]), &cfg),
            None,
            "guest's address"
        );
    }
}
