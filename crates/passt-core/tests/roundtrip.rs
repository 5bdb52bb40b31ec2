//! Property tests: whatever we emit parses back to what we emitted, for
//! every format with an emitter; and random bytes never panic a parser.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use passt_core::wire::{arp, dhcpv4, dhcpv6, ethernet, icmp, ipv4, ipv6, ndisc, udp};
use proptest::prelude::*;

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}
fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}

proptest! {
    #[test]
    fn ethernet_header(dst in any::<[u8; 6]>(), src in any::<[u8; 6]>(), ty in any::<u16>(),
                       payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut b = vec![0u8; 14];
        ethernet::emit_header(&mut b, dst, src, ty);
        b.extend_from_slice(&payload);
        let f = ethernet::Frame::parse(&b).unwrap();
        prop_assert_eq!((f.dst, f.src, f.ethertype, f.payload), (dst, src, ty, &payload[..]));
    }

    #[test]
    fn arp(op in 1u16..=2, sm in any::<[u8; 6]>(), si in v4(), tm in any::<[u8; 6]>(), ti in v4()) {
        let r = arp::Repr { op, sender_mac: sm, sender_ip: si, target_mac: tm, target_ip: ti };
        let mut b = [0u8; arp::LEN];
        r.emit(&mut b);
        prop_assert_eq!(arp::Repr::parse(&b).unwrap(), r);
    }

    #[test]
    fn ipv4_udp(src in v4(), dst in v4(), sp in any::<u16>(), dp in any::<u16>(), id in any::<u16>(),
                payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let len = udp::HEADER_LEN + payload.len();
        let mut b = vec![0u8; ipv4::HEADER_LEN + len];
        ipv4::emit_header(&mut b, src, dst, ipv4::PROTO_UDP, len, id);
        b[ipv4::HEADER_LEN + udp::HEADER_LEN..].copy_from_slice(&payload);
        udp::emit(&mut b[ipv4::HEADER_LEN..], src.into(), dst.into(), sp, dp, payload.len());
        let ip = ipv4::Repr::parse(&b).unwrap();
        prop_assert_eq!((ip.src, ip.dst, ip.protocol), (src, dst, ipv4::PROTO_UDP));
        let u = udp::Repr::parse(&b[ip.payload], src.into(), dst.into()).unwrap();
        prop_assert_eq!((u.src_port, u.dst_port, u.payload), (sp, dp, &payload[..]));
    }

    #[test]
    fn ipv6_icmpv6(src in v6(), dst in v6(), kind in any::<u8>(), id in any::<u16>(), seq in any::<u16>(),
                   data in proptest::collection::vec(any::<u8>(), 0..100), hop in any::<u8>()) {
        let mut msg = vec![kind, 0, 0, 0];
        msg.extend_from_slice(&id.to_be_bytes());
        msg.extend_from_slice(&seq.to_be_bytes());
        msg.extend_from_slice(&data);
        let mut b = vec![0u8; ipv6::HEADER_LEN + msg.len()];
        ipv6::emit_header(&mut b, src, dst, ipv6::NEXT_ICMPV6, msg.len(), hop);
        b[ipv6::HEADER_LEN..].copy_from_slice(&msg);
        icmp::fill_checksum_v6(&mut b[ipv6::HEADER_LEN..], src.into(), dst.into());
        let ip = ipv6::Repr::parse(&b).unwrap();
        prop_assert_eq!((ip.src, ip.dst, ip.next_header, ip.hop_limit), (src, dst, ipv6::NEXT_ICMPV6, hop));
        let (s, d): (IpAddr, IpAddr) = (src.into(), dst.into());
        let r = icmp::Repr::parse(&b[ip.payload], Some((s, d))).unwrap();
        prop_assert_eq!((r.kind, r.id, r.seq), (kind, id, seq));
    }

    #[test]
    fn icmpv4(kind in any::<u8>(), code in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 4..100)) {
        let mut msg = vec![kind, code, 0, 0];
        msg.extend_from_slice(&rest);
        icmp::fill_checksum_v4(&mut msg);
        let r = icmp::Repr::parse(&msg, None).unwrap();
        prop_assert_eq!((r.kind, r.code), (kind, code));
    }

    #[test]
    fn dhcpv4_reply(xid in any::<u32>(), yi in v4(), mac in any::<[u8; 6]>(),
                    opts in proptest::collection::vec((1u8..=254, proptest::collection::vec(any::<u8>(), 0..400)), 0..6)) {
        let opts: Vec<(u8, Vec<u8>)> = opts.into_iter().filter(|(c, _)| *c != dhcpv4::opt::MESSAGE_TYPE).collect();
        let reply = dhcpv4::Reply {
            kind: dhcpv4::MessageType::Ack, xid, flags: 0, ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: yi, siaddr: Ipv4Addr::UNSPECIFIED, chaddr: mac, options: opts.clone(),
        };
        let mut b = vec![0u8; reply.buffer_len()];
        reply.emit(&mut b);
        let p = dhcpv4::Packet::new_checked(&b[..]).unwrap();
        prop_assert_eq!(p.xid(), xid);
        prop_assert_eq!(p.chaddr(), mac);
        prop_assert_eq!(p.option(dhcpv4::opt::MESSAGE_TYPE), Some(&[5u8][..]));
        // Long options come back split (RFC 3396); concatenated, they are intact.
        for (code, value) in &opts {
            let got: Vec<u8> = p.options().filter(|(c, _)| c == code).flat_map(|(_, v)| v.to_vec()).collect();
            let want: Vec<u8> = opts.iter().filter(|(c, _)| c == code).flat_map(|(_, v)| v.clone()).collect();
            prop_assert_eq!(got, want, "option {} ({} bytes)", code, value.len());
        }
    }

    #[test]
    fn dhcpv6_reply(xid in any::<[u8; 3]>(), mac in any::<[u8; 6]>(), iaid in any::<u32>(), addr in v6(),
                    rapid in any::<bool>()) {
        let r = dhcpv6::Reply {
            kind: dhcpv6::MessageType::Reply, xid, server_id: dhcpv6::duid_ll(mac), client_id: Some(vec![1, 2, 3]),
            ia_na: Some((iaid, addr, 3600)), status: None, rapid_commit: rapid, dns: vec![addr], search: vec!["a.b".into()],
        };
        let back = dhcpv6::parse(&r.emit()).unwrap();
        prop_assert_eq!(back.xid, xid);
        prop_assert_eq!(back.ia_na, Some((iaid, vec![addr])));
        prop_assert_eq!(back.rapid_commit, rapid);
        prop_assert_eq!(back.client_id, Some(vec![1, 2, 3]));
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (s, d): (IpAddr, IpAddr) = (Ipv4Addr::LOCALHOST.into(), Ipv4Addr::LOCALHOST.into());
        let _ = arp::Repr::parse(&bytes);
        let _ = ipv4::Repr::parse(&bytes);
        let _ = ipv6::Repr::parse(&bytes);
        let _ = udp::Repr::parse(&bytes, s, d);
        let _ = icmp::Repr::parse(&bytes, None);
        let _ = ndisc::parse(&bytes);
        let _ = dhcpv6::parse(&bytes);
        if let Ok(p) = dhcpv4::Packet::new_checked(&bytes[..]) {
            let _ = dhcpv4::Request::parse(&p);
            let _ = p.options().count();
        }
    }
}
