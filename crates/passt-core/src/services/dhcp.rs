//! The DHCPv4 server (RFC 2131): the guest always gets the one address
//! configured for it, with the host's router, DNS, search list and MTU.
//! Pure: a parsed request in, a reply and where to send it out.
//!
//! The lease is infinite (0xffffffff): the address never changes while the
//! engine runs, so there is nothing to renew.

use std::net::Ipv4Addr;

use crate::config::{netmask, GuestConfig};
use crate::wire::dhcpv4::{opt, MessageType, Reply, Request, FLAG_BROADCAST};
use crate::wire::dnsname;

pub const LEASE_INFINITE: u32 = u32::MAX;

/// A reply and its destination (IP and MAC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub reply: Reply,
    pub dst_ip: Ipv4Addr,
    pub dst_mac: [u8; 6],
}

pub fn answer(req: &Request, cfg: &GuestConfig) -> Option<Answer> {
    if cfg.disabled.dhcp {
        return None;
    }
    let v4 = cfg.v4.as_ref()?;
    let ours = v4.gateway;
    let kind = match req.kind {
        MessageType::Discover => MessageType::Offer,
        MessageType::Request => {
            if req.server_id.is_some_and(|s| s != ours) {
                return None; // the client chose another server
            }
            let wanted = req
                .requested_ip
                .or((!req.ciaddr.is_unspecified()).then_some(req.ciaddr));
            if wanted.is_some_and(|a| a != v4.addr) {
                MessageType::Nak
            } else {
                MessageType::Ack
            }
        }
        MessageType::Inform => MessageType::Ack,
        _ => return None, // RELEASE, DECLINE: nothing to answer
    };

    let mut options = vec![(opt::SERVER_ID, ours.octets().to_vec())];
    if kind != MessageType::Nak {
        if req.kind != MessageType::Inform {
            options.push((opt::LEASE_TIME, LEASE_INFINITE.to_be_bytes().to_vec()));
        }
        options.push((opt::SUBNET_MASK, netmask(v4.prefix_len).octets().to_vec()));
        options.push((opt::ROUTER, ours.octets().to_vec()));
        if !v4.dns.is_empty() {
            options.push((opt::DNS, v4.dns.iter().flat_map(|a| a.octets()).collect()));
        }
        let search = dnsname::encode_list(cfg.search.iter().map(String::as_str));
        if !search.is_empty() {
            options.push((opt::SEARCH, search));
        }
        if let Some(mtu) = cfg.mtu {
            options.push((opt::MTU, mtu.to_be_bytes().to_vec()));
        }
        if let Some(name) = &cfg.hostname {
            options.push((opt::HOSTNAME, name.as_bytes().to_vec()));
        }
    }

    let yiaddr = match (kind, req.kind) {
        (MessageType::Nak, _) | (_, MessageType::Inform) => Ipv4Addr::UNSPECIFIED,
        _ => v4.addr,
    };
    // RFC 2131 §4.1: NAKs are broadcast; a client with an address (INFORM,
    // renewal) gets unicast there; otherwise broadcast if it asked to,
    // else unicast to its hardware address and the offered address.
    let broadcast = ([0xff; 6], Ipv4Addr::BROADCAST);
    let (dst_mac, dst_ip) = if kind == MessageType::Nak || req.flags & FLAG_BROADCAST != 0 {
        broadcast
    } else if !req.ciaddr.is_unspecified() {
        (req.chaddr, req.ciaddr)
    } else {
        (req.chaddr, v4.addr)
    };
    Some(Answer {
        reply: Reply {
            kind,
            xid: req.xid,
            flags: req.flags & FLAG_BROADCAST,
            ciaddr: req.ciaddr,
            yiaddr,
            siaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: req.chaddr,
            options,
        },
        dst_ip,
        dst_mac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn req(kind: MessageType) -> Request {
        Request {
            kind,
            xid: 42,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: MAC,
            requested_ip: None,
            server_id: None,
        }
    }

    fn option(a: &Answer, code: u8) -> Option<&[u8]> {
        a.reply
            .options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| &v[..])
    }

    #[test]
    fn discover_gets_an_offer_with_everything() {
        let cfg = GuestConfig::example();
        let a = answer(&req(MessageType::Discover), &cfg).unwrap();
        assert_eq!(a.reply.kind, MessageType::Offer);
        assert_eq!(a.reply.yiaddr, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!((a.dst_mac, a.dst_ip), (MAC, Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(option(&a, opt::SUBNET_MASK), Some(&[255, 255, 255, 0][..]));
        assert_eq!(option(&a, opt::ROUTER), Some(&[192, 0, 2, 1][..]));
        assert_eq!(option(&a, opt::SERVER_ID), Some(&[192, 0, 2, 1][..]));
        assert_eq!(option(&a, opt::DNS), Some(&[192, 0, 2, 1][..]));
        assert_eq!(option(&a, opt::MTU), Some(&65520u16.to_be_bytes()[..]));
        assert_eq!(option(&a, opt::LEASE_TIME), Some(&[0xff; 4][..]));
        assert_eq!(
            option(&a, opt::SEARCH),
            Some(&b"\x07example\x03org\x00"[..])
        );
        assert_eq!(option(&a, opt::HOSTNAME), None, "not sent unless -H");
    }

    #[test]
    fn the_host_name_goes_in_option_12() {
        let cfg = GuestConfig {
            hostname: Some("guest1".into()),
            ..GuestConfig::example()
        };
        let a = answer(&req(MessageType::Discover), &cfg).unwrap();
        assert_eq!(option(&a, opt::HOSTNAME), Some(&b"guest1"[..]));
    }

    #[test]
    fn request_for_our_address_is_acked_others_naked() {
        let cfg = GuestConfig::example();
        let mut r = req(MessageType::Request);
        r.requested_ip = Some(Ipv4Addr::new(192, 0, 2, 2));
        r.server_id = Some(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(answer(&r, &cfg).unwrap().reply.kind, MessageType::Ack);
        r.requested_ip = Some(Ipv4Addr::new(192, 0, 2, 99));
        let nak = answer(&r, &cfg).unwrap();
        assert_eq!(nak.reply.kind, MessageType::Nak);
        assert_eq!(nak.dst_ip, Ipv4Addr::BROADCAST);
        assert_eq!(option(&nak, opt::ROUTER), None);
        r.server_id = Some(Ipv4Addr::new(10, 9, 9, 9));
        assert_eq!(answer(&r, &cfg), None, "another server's business");
    }

    #[test]
    fn broadcast_flag_and_renewals_pick_the_destination() {
        let cfg = GuestConfig::example();
        let mut r = req(MessageType::Discover);
        r.flags = FLAG_BROADCAST;
        let a = answer(&r, &cfg).unwrap();
        assert_eq!((a.dst_mac, a.dst_ip), ([0xff; 6], Ipv4Addr::BROADCAST));
        assert_eq!(a.reply.flags, FLAG_BROADCAST);
        let mut renew = req(MessageType::Request);
        renew.ciaddr = Ipv4Addr::new(192, 0, 2, 2);
        let a = answer(&renew, &cfg).unwrap();
        assert_eq!((a.reply.kind, a.dst_ip), (MessageType::Ack, renew.ciaddr));
    }

    #[test]
    fn inform_gets_options_without_a_lease() {
        let cfg = GuestConfig::example();
        let mut r = req(MessageType::Inform);
        r.ciaddr = Ipv4Addr::new(192, 0, 2, 2);
        let a = answer(&r, &cfg).unwrap();
        assert_eq!(a.reply.kind, MessageType::Ack);
        assert_eq!(a.reply.yiaddr, Ipv4Addr::UNSPECIFIED);
        assert_eq!(option(&a, opt::LEASE_TIME), None);
        assert!(option(&a, opt::ROUTER).is_some());
    }

    #[test]
    fn release_and_disabled_get_nothing() {
        let mut cfg = GuestConfig::example();
        assert_eq!(answer(&req(MessageType::Release), &cfg), None);
        assert_eq!(answer(&req(MessageType::Decline), &cfg), None);
        cfg.disabled.dhcp = true;
        assert_eq!(answer(&req(MessageType::Discover), &cfg), None);
        cfg.disabled.dhcp = false;
        cfg.v4 = None;
        assert_eq!(answer(&req(MessageType::Discover), &cfg), None);
    }
}
