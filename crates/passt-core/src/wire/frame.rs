//! A whole guest frame, parsed down to what the engine dispatches on:
//! Ethernet, then ARP or IP (with IPv6 extension headers walked), then
//! TCP, UDP or ICMP, all checksums verified. This is the one entry point
//! for guest input, and the fuzz target's.

use std::net::IpAddr;

use super::ethernet::{self, MacAddr};
use super::{arp, icmp, ipv4, ipv6, tcp, udp, DropReason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4<'a> {
    Tcp(tcp::Repr<'a>),
    Udp(udp::Repr<'a>),
    /// ICMP or ICMPv6; `message` is the whole message (header included).
    Icmp {
        repr: icmp::Repr,
        message: &'a [u8],
    },
    /// Another protocol: the number and its payload.
    Other(u8, &'a [u8]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub hop_limit: u8,
    pub l4: L4<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    Arp(arp::Repr),
    Ip(Ip<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
    pub payload: Payload<'a>,
}

fn l4(proto: u8, b: &[u8], src: IpAddr, dst: IpAddr) -> Result<L4<'_>, DropReason> {
    Ok(match proto {
        ipv4::PROTO_TCP => L4::Tcp(tcp::Repr::parse(b, src, dst)?),
        ipv4::PROTO_UDP => L4::Udp(udp::Repr::parse(b, src, dst)?),
        ipv4::PROTO_ICMP if src.is_ipv4() => L4::Icmp {
            repr: icmp::Repr::parse(b, None)?,
            message: b,
        },
        ipv6::NEXT_ICMPV6 if src.is_ipv6() => L4::Icmp {
            repr: icmp::Repr::parse(b, Some((src, dst)))?,
            message: b,
        },
        other => L4::Other(other, b),
    })
}

pub fn parse_frame(b: &[u8]) -> Result<Frame<'_>, DropReason> {
    let eth = ethernet::Frame::parse(b)?;
    let payload = match eth.ethertype {
        ethernet::ETHERTYPE_ARP => Payload::Arp(arp::Repr::parse(eth.payload)?),
        ethernet::ETHERTYPE_IPV4 => {
            let ip = ipv4::Repr::parse(eth.payload)?;
            let (src, dst) = (IpAddr::V4(ip.src), IpAddr::V4(ip.dst));
            Payload::Ip(Ip {
                src,
                dst,
                hop_limit: ip.ttl,
                l4: l4(ip.protocol, &eth.payload[ip.payload], src, dst)?,
            })
        }
        ethernet::ETHERTYPE_IPV6 => {
            let ip = ipv6::Repr::parse(eth.payload)?;
            let (src, dst) = (IpAddr::V6(ip.src), IpAddr::V6(ip.dst));
            Payload::Ip(Ip {
                src,
                dst,
                hop_limit: ip.hop_limit,
                l4: l4(ip.next_header, &eth.payload[ip.payload], src, dst)?,
            })
        }
        _ => return Err(DropReason::UnknownEtherType),
    };
    Ok(Frame {
        dst_mac: eth.dst,
        src_mac: eth.src,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::tests::PING;
    use proptest::prelude::*;

    fn with_ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 14];
        ethernet::emit_header(
            &mut b,
            [2, 0, 0, 0, 0, 1],
            [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            ethertype,
        );
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn a_ping_frame_down_to_the_echo_request() {
        let b = with_ethernet(ethernet::ETHERTYPE_IPV4, &PING);
        let f = parse_frame(&b).unwrap();
        assert_eq!(f.src_mac, [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        let Payload::Ip(ip) = f.payload else {
            panic!("not IP")
        };
        assert_eq!(ip.dst, "192.0.2.1".parse::<IpAddr>().unwrap());
        let L4::Icmp { repr, message } = ip.l4 else {
            panic!("not ICMP")
        };
        assert_eq!(
            (repr.kind, repr.id, message.len()),
            (icmp::V4_ECHO_REQUEST, 0x0a0b, 16)
        );
    }

    #[test]
    fn every_prefix_of_a_frame_is_refused_not_a_panic() {
        let b = with_ethernet(ethernet::ETHERTYPE_IPV4, &PING);
        for n in 0..b.len() {
            assert!(parse_frame(&b[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(
            parse_frame(&with_ethernet(0x88cc, &[0; 40])),
            Err(DropReason::UnknownEtherType)
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_frame(&bytes);
        }

        #[test]
        fn random_ip_payloads_never_panic(
            v6 in any::<bool>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let ethertype = if v6 { ethernet::ETHERTYPE_IPV6 } else { ethernet::ETHERTYPE_IPV4 };
            let mut payload = bytes;
            if let Some(first) = payload.first_mut() {
                *first = if v6 { 0x60 } else { 0x45 };
            }
            let _ = parse_frame(&with_ethernet(ethertype, &payload));
        }
    }
}
