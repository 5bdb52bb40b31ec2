//! The DHCPv6 server (RFC 8415), stateful for exactly one address: the
//! guest's. SOLICIT gets an ADVERTISE (or, with rapid commit, a REPLY);
//! REQUEST, RENEW and REBIND get a REPLY with the address; CONFIRM is
//! answered Success or NotOnLink; INFORMATION-REQUEST gets DNS and search
//! list only; RELEASE and DECLINE are acknowledged. Messages naming
//! another server are ignored.

use std::net::Ipv6Addr;

use crate::config::GuestConfig;
use crate::wire::dhcpv6::{duid_ll, status, MessageType, Reply, Request};

/// Address lifetime (seconds); T1/T2 follow from it.
pub const LIFETIME: u32 = 3600;

pub fn answer(req: &Request, cfg: &GuestConfig) -> Option<Reply> {
    if cfg.disabled.dhcpv6 {
        return None;
    }
    let v6 = cfg.v6.as_ref()?;
    let server_id = duid_ll(cfg.our_mac);
    if req.server_id.as_ref().is_some_and(|s| *s != server_id) {
        return None;
    }
    let needs_server_id = matches!(
        req.kind,
        MessageType::Request | MessageType::Renew | MessageType::Release | MessageType::Decline
    );
    if needs_server_id && req.server_id.is_none() {
        return None;
    }
    let iaid = req.ia_na.as_ref().map(|(iaid, _)| *iaid);
    let mut reply = Reply {
        kind: MessageType::Reply,
        xid: req.xid,
        server_id,
        client_id: req.client_id.clone(),
        ia_na: None,
        status: None,
        rapid_commit: false,
        dns: v6.dns.clone(),
        search: cfg.search.clone(),
    };
    match req.kind {
        MessageType::Solicit => {
            reply.kind = if req.rapid_commit {
                MessageType::Reply
            } else {
                MessageType::Advertise
            };
            reply.rapid_commit = req.rapid_commit;
            reply.ia_na = iaid.map(|i| (i, v6.addr, LIFETIME));
        }
        MessageType::Request | MessageType::Renew | MessageType::Rebind => {
            reply.ia_na = iaid.map(|i| (i, v6.addr, LIFETIME));
        }
        MessageType::Confirm => {
            let prefix = |a: Ipv6Addr| u128::from(a) >> 64;
            let on_link = req
                .ia_na
                .iter()
                .flat_map(|(_, addrs)| addrs)
                .all(|a| prefix(*a) == prefix(v6.addr));
            reply.status = Some(if on_link {
                (status::SUCCESS, "")
            } else {
                (status::NOT_ON_LINK, "not on link")
            });
        }
        MessageType::InformationRequest => {}
        MessageType::Release | MessageType::Decline => {
            reply.status = Some((status::SUCCESS, ""));
            reply.dns.clear();
            reply.search.clear();
        }
        MessageType::Advertise | MessageType::Reply => return None,
    }
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: MessageType) -> Request {
        Request {
            kind,
            xid: [1, 2, 3],
            client_id: Some(vec![0, 3, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            server_id: None,
            ia_na: Some((7, vec![])),
            rapid_commit: false,
        }
    }

    #[test]
    fn solicit_with_and_without_rapid_commit() {
        let cfg = GuestConfig::example();
        let adv = answer(&req(MessageType::Solicit), &cfg).unwrap();
        assert_eq!(adv.kind, MessageType::Advertise);
        assert_eq!(adv.ia_na, Some((7, "fd00::2".parse().unwrap(), LIFETIME)));
        assert_eq!(adv.dns, vec!["fd00::53".parse::<Ipv6Addr>().unwrap()]);
        let mut rc = req(MessageType::Solicit);
        rc.rapid_commit = true;
        let r = answer(&rc, &cfg).unwrap();
        assert_eq!((r.kind, r.rapid_commit), (MessageType::Reply, true));
    }

    #[test]
    fn request_needs_our_server_id() {
        let cfg = GuestConfig::example();
        let mut r = req(MessageType::Request);
        assert_eq!(answer(&r, &cfg), None);
        r.server_id = Some(duid_ll(cfg.our_mac));
        assert_eq!(
            answer(&r, &cfg).unwrap().ia_na.map(|i| i.1),
            Some("fd00::2".parse().unwrap())
        );
        r.server_id = Some(vec![0, 3, 0, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(answer(&r, &cfg), None);
    }

    #[test]
    fn confirm_checks_the_prefix() {
        let cfg = GuestConfig::example();
        let mut c = req(MessageType::Confirm);
        c.ia_na = Some((7, vec!["fd00::1234".parse().unwrap()]));
        assert_eq!(
            answer(&c, &cfg).unwrap().status.map(|s| s.0),
            Some(status::SUCCESS)
        );
        c.ia_na = Some((7, vec!["2001:db8::1".parse().unwrap()]));
        assert_eq!(
            answer(&c, &cfg).unwrap().status.map(|s| s.0),
            Some(status::NOT_ON_LINK)
        );
    }

    #[test]
    fn information_request_has_no_address() {
        let cfg = GuestConfig::example();
        let mut i = req(MessageType::InformationRequest);
        i.ia_na = None;
        let r = answer(&i, &cfg).unwrap();
        assert_eq!(r.ia_na, None);
        assert_eq!(r.search, vec!["example.org".to_string()]);
    }
}
