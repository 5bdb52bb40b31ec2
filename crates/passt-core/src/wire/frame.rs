//! A whole guest frame, parsed down to what the engine dispatches on:
//! Ethernet, then ARP or IP (IPv6 extension headers walked), then TCP,
//! UDP, ICMP or ICMPv6, every checksum verified. This is the one entry
//! point for guest input, and the fuzz target's.
//!
//! Beyond the formats, it applies the rules a guest's packet must follow
//! for us to act on it:
//! - no fragments (IPv4 MF or offset, IPv6 Fragment header other than an
//!   atomic one): the guest fragments only above the MTU we gave it, and
//!   reassembly is not worth a buffer per flow (`Fragment`);
//! - no multicast or broadcast source address (RFC 1122 §3.2.1.3, RFC
//!   4291 §2.7) (`BadAddress`);
//! - no port zero: a TCP port on either side, a UDP destination port
//!   (`BadPort`).
//!
//! The result borrows the frame; nothing is allocated. `Frame::emit`
//! writes a parsed frame back (Ethernet and IP headers as found, TCP
//! options in Linux's layout, checksums recomputed), which tests and the
//! fuzz target use to check that parse and emit agree.

use std::net::IpAddr;
use std::ops::Range;

use super::ethernet::{self, MacAddr};
use super::{arp, icmp, icmpv6, ipv4, ipv6, tcp, udp, DropReason};

/// The upper layer of an IP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4<'a> {
    Tcp(tcp::Repr<'a>),
    Udp(udp::Repr<'a>),
    /// ICMP or ICMPv6; `message` is the whole message (header included).
    Icmp {
        repr: icmp::Repr,
        message: &'a [u8],
    },
    /// Another protocol: its number and its packet.
    Other(u8, &'a [u8]),
}

/// The IP header as parsed, for fields beyond the summary in `Ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpHeader<'a> {
    V4(ipv4::Repr<'a>),
    V6(ipv6::Repr<'a>),
}

impl IpHeader<'_> {
    fn header_len(&self) -> usize {
        match self {
            IpHeader::V4(h) => h.header_len(),
            IpHeader::V6(h) => h.header_len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub hop_limit: u8,
    /// The upper-layer protocol (after IPv6 extension headers).
    pub protocol: u8,
    pub header: IpHeader<'a>,
    pub l4: L4<'a>,
    /// Where the upper-layer packet (header and payload) is in the frame.
    pub l4_range: Range<usize>,
    /// Where its payload is in the frame: TCP or UDP data, the ICMP
    /// message after its 8-byte header, or all of an other protocol.
    pub data: Range<usize>,
}

// Boxing the IP variant would allocate per frame; a `Frame` lives on the
// stack for one dispatch, and ARP frames are rare.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    Arp(arp::Repr),
    Ip(Ip<'a>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
    pub ethertype: u16,
    pub payload: Payload<'a>,
}

impl<'a> Frame<'a> {
    pub fn ip(&self) -> Option<&Ip<'a>> {
        match &self.payload {
            Payload::Ip(ip) => Some(ip),
            Payload::Arp(_) => None,
        }
    }

    /// The upper-layer protocol number, for IP frames.
    pub fn l4_protocol(&self) -> Option<u8> {
        self.ip().map(|ip| ip.protocol)
    }

    /// Source and destination ports, for TCP and UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.ip()?.l4 {
            L4::Tcp(t) => Some((t.src_port, t.dst_port)),
            L4::Udp(u) => Some((u.src_port, u.dst_port)),
            L4::Icmp { .. } | L4::Other(..) => None,
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        ethernet::HEADER_LEN
            + match &self.payload {
                Payload::Arp(a) => a.buffer_len(),
                Payload::Ip(ip) => ip.header.header_len() + l4_len(&ip.l4),
            }
    }

    /// Writes the frame into `buf[..buffer_len()]`. IP payload lengths
    /// follow the upper layer as re-emitted (its TCP options may be laid
    /// out differently from the original's); link padding is not kept.
    pub fn emit<B: AsMut<[u8]> + ?Sized>(&self, buf: &mut B) {
        let b = buf.as_mut();
        ethernet::Repr {
            dst: self.dst_mac,
            src: self.src_mac,
            ethertype: self.ethertype,
        }
        .emit(b);
        let b = &mut b[ethernet::HEADER_LEN..];
        let ip = match &self.payload {
            Payload::Arp(a) => return a.emit(b),
            Payload::Ip(ip) => ip,
        };
        let (len, header_len) = (l4_len(&ip.l4), ip.header.header_len());
        match &ip.header {
            IpHeader::V4(h) => {
                let mut h = h.clone();
                h.payload = header_len..header_len + len;
                h.emit(b);
            }
            IpHeader::V6(h) => {
                let mut h = h.clone();
                h.payload = header_len..header_len + len;
                h.emit(b);
            }
        }
        let l4 = &mut b[header_len..header_len + len];
        match &ip.l4 {
            L4::Tcp(t) => t.emit(l4, ip.src, ip.dst),
            L4::Udp(u) => u.emit(l4, ip.src, ip.dst),
            // Copied as they are: their checksums were verified.
            L4::Icmp { message, .. } => l4.copy_from_slice(message),
            L4::Other(_, bytes) => l4.copy_from_slice(bytes),
        }
    }
}

fn l4_len(l4: &L4<'_>) -> usize {
    match l4 {
        L4::Tcp(t) => t.buffer_len(),
        L4::Udp(u) => u.buffer_len(),
        L4::Icmp { message, .. } => message.len(),
        L4::Other(_, bytes) => bytes.len(),
    }
}

/// Parses the upper layer `b` (at `start` in the frame) of a packet
/// from `src` to `dst`; returns it with its payload's range in the frame.
fn parse_l4(
    proto: u8,
    b: &[u8],
    start: usize,
    (src, dst): (IpAddr, IpAddr),
    verify: bool,
) -> Result<(L4<'_>, Range<usize>), DropReason> {
    let end = start + b.len();
    Ok(match proto {
        ipv4::PROTO_TCP => {
            let t = tcp::Repr::parse_with(b, src, dst, verify)?;
            if t.src_port == 0 || t.dst_port == 0 {
                return Err(DropReason::BadPort);
            }
            let data = end - t.payload.len()..end;
            (L4::Tcp(t), data)
        }
        ipv4::PROTO_UDP => {
            let u = udp::Repr::parse_with(b, src, dst, verify)?;
            if u.dst_port == 0 {
                return Err(DropReason::BadPort);
            }
            let data_start = start + udp::HEADER_LEN;
            (L4::Udp(u), data_start..data_start + u.payload.len())
        }
        ipv4::PROTO_ICMP if src.is_ipv4() => {
            let repr = icmp::Repr::parse(b, None)?;
            (L4::Icmp { repr, message: b }, start + icmp::HEADER_LEN..end)
        }
        icmpv6::PROTO_ICMPV6 if src.is_ipv6() => {
            let repr = icmp::Repr::parse(b, Some((src, dst)))?;
            (L4::Icmp { repr, message: b }, start + icmp::HEADER_LEN..end)
        }
        other => (L4::Other(other, b), start..end),
    })
}

/// Parses a frame from the guest, or says why it is refused.
pub fn parse_frame(buf: &[u8]) -> Result<Frame<'_>, DropReason> {
    parse_frame_with(buf, true)
}

/// As `parse_frame`; `verify_l4: false` takes TCP and UDP checksums on
/// trust (a tap whose kernel left them to us: `backend::vnet`). IP
/// header and ICMP checksums are verified regardless.
pub fn parse_frame_with(buf: &[u8], verify_l4: bool) -> Result<Frame<'_>, DropReason> {
    let eth = ethernet::Packet::new_checked(buf)?;
    // Sliced from `buf`, not the view, so that the result borrows the frame.
    let l3 = &buf[ethernet::HEADER_LEN..];
    const L3: usize = ethernet::HEADER_LEN;
    let payload = match eth.ethertype() {
        ethernet::ETHERTYPE_ARP => Payload::Arp(arp::Repr::parse(l3)?),
        ethernet::ETHERTYPE_IPV4 => {
            let h = ipv4::Repr::parse(l3)?;
            if h.is_fragment() {
                return Err(DropReason::Fragment);
            }
            if h.src.is_multicast() || h.src.is_broadcast() {
                return Err(DropReason::BadAddress);
            }
            let (src, dst) = (IpAddr::V4(h.src), IpAddr::V4(h.dst));
            let l4_range = L3 + h.payload.start..L3 + h.payload.end;
            let (l4, data) = parse_l4(
                h.protocol,
                &l3[h.payload.clone()],
                l4_range.start,
                (src, dst),
                verify_l4,
            )?;
            Payload::Ip(Ip {
                src,
                dst,
                hop_limit: h.ttl,
                protocol: h.protocol,
                header: IpHeader::V4(h),
                l4,
                l4_range,
                data,
            })
        }
        ethernet::ETHERTYPE_IPV6 => {
            let h = ipv6::Repr::parse(l3)?;
            if h.is_fragment() {
                return Err(DropReason::Fragment);
            }
            if h.src.is_multicast() {
                return Err(DropReason::BadAddress);
            }
            let (src, dst) = (IpAddr::V6(h.src), IpAddr::V6(h.dst));
            let l4_range = L3 + h.payload.start..L3 + h.payload.end;
            let proto = h.next_header;
            let (l4, data) = parse_l4(
                proto,
                &l3[h.payload.clone()],
                l4_range.start,
                (src, dst),
                verify_l4,
            )?;
            Payload::Ip(Ip {
                src,
                dst,
                hop_limit: h.hop_limit,
                protocol: proto,
                header: IpHeader::V6(h),
                l4,
                l4_range,
                data,
            })
        }
        _ => return Err(DropReason::UnknownEtherType),
    };
    Ok(Frame {
        dst_mac: eth.dst_addr(),
        src_mac: eth.src_addr(),
        ethertype: eth.ethertype(),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use proptest::prelude::*;

    // Whole frames captured on a veth between two namespaces.

    /// ARP who-has 10.77.0.2 tell 10.77.0.1 (broadcast).
    static ARP_FRAME: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x4d,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x4d, 0x00, 0x02,
    ];

    /// `ping -s 8` 10.77.0.1 -> 10.77.0.2, echo id 0x5a22 seq 1.
    static PING_FRAME: [u8; 50] = [
        0x02, 0xbb, 0x00, 0x00, 0x00, 0x02, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x24, 0x45, 0x92, 0x40, 0x00, 0x40, 0x01, 0xe0, 0xaa, 0x0a, 0x4d, 0x00, 0x01,
        0x0a, 0x4d, 0x00, 0x02, 0x08, 0x00, 0x91, 0xcc, 0x5a, 0x22, 0x00, 0x01, 0x00, 0x01, 0x02,
        0x03, 0x04, 0x05, 0x06, 0x07,
    ];

    /// `ping -6 -s 8` fd77::1 -> fd77::2, echo id 0x5a24 seq 1.
    static PING6_FRAME: [u8; 70] = [
        0x02, 0xbb, 0x00, 0x00, 0x00, 0x02, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60,
        0x06, 0xb0, 0xe4, 0x00, 0x10, 0x3a, 0x40, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x80, 0x00, 0x1e, 0x8d, 0x5a, 0x24,
        0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    ];

    /// TCP SYN 10.77.0.1:43802 -> 10.77.0.2:8000 with MSS, SACK-permitted,
    /// timestamps and window scale.
    static SYN_FRAME: [u8; 74] = [
        0x02, 0xbb, 0x00, 0x00, 0x00, 0x02, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3c, 0x45, 0xeb, 0x40, 0x00, 0x40, 0x06, 0xe0, 0x34, 0x0a, 0x4d, 0x00, 0x01,
        0x0a, 0x4d, 0x00, 0x02, 0xab, 0x1a, 0x1f, 0x40, 0xc4, 0xc4, 0x5a, 0xe7, 0x00, 0x00, 0x00,
        0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x6f, 0x15, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02,
        0x08, 0x0a, 0x4b, 0x20, 0x94, 0x33, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];

    /// "hello", UDP 10.77.0.1:40000 -> 10.77.0.2:9999.
    static UDP4_FRAME: [u8; 47] = [
        0x02, 0xbb, 0x00, 0x00, 0x00, 0x02, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x21, 0x5f, 0x5a, 0x40, 0x00, 0x40, 0x11, 0xc6, 0xd5, 0x0a, 0x4d, 0x00, 0x01,
        0x0a, 0x4d, 0x00, 0x02, 0x9c, 0x40, 0x27, 0x0f, 0x00, 0x0d, 0xe4, 0x15, 0x68, 0x65, 0x6c,
        0x6c, 0x6f,
    ];

    /// "hello6", UDP [fd77::1]:40001 -> [fd77::2]:9999.
    static UDP6_FRAME: [u8; 68] = [
        0x02, 0xbb, 0x00, 0x00, 0x00, 0x02, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60,
        0x0a, 0xd3, 0xdf, 0x00, 0x0e, 0x11, 0x40, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x9c, 0x41, 0x27, 0x0f, 0x00, 0x0e,
        0xfd, 0x86, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x36,
    ];

    /// MLDv2 report fe80::bb:ff:fe00:2 -> ff02::16 behind a Hop-by-Hop header.
    static MLD_FRAME: [u8; 90] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x16, 0x02, 0xbb, 0x00, 0x00, 0x00, 0x02, 0x86, 0xdd, 0x60,
        0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x01, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xbb, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x02, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x3a, 0x00, 0x05, 0x02, 0x00, 0x00,
        0x01, 0x00, 0x8f, 0x00, 0x71, 0x4a, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0xff,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x02,
    ];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const FIXTURES: [&[u8]; 7] = [
        &ARP_FRAME,
        &PING_FRAME,
        &PING6_FRAME,
        &SYN_FRAME,
        &UDP4_FRAME,
        &UDP6_FRAME,
        &MLD_FRAME,
    ];

    #[test]
    fn deconstruct() {
        let f = parse_frame(&ARP_FRAME).unwrap();
        assert_eq!(
            (f.dst_mac, f.ethertype),
            (ethernet::BROADCAST, ethernet::ETHERTYPE_ARP)
        );
        let Payload::Arp(a) = f.payload else {
            panic!("not ARP")
        };
        assert_eq!(
            (a.op, a.target_ip),
            (arp::OP_REQUEST, "10.77.0.2".parse().unwrap())
        );
        assert_eq!((f.l4_protocol(), f.ports()), (None, None));

        let f = parse_frame(&PING_FRAME).unwrap();
        assert_eq!(f.src_mac, [0x02, 0xaa, 0, 0, 0, 1]);
        let p = f.ip().unwrap();
        assert_eq!(
            (p.src, p.dst, p.hop_limit),
            (ip("10.77.0.1"), ip("10.77.0.2"), 64)
        );
        assert_eq!(
            (p.protocol, p.l4_range.clone(), p.data.clone()),
            (1, 34..50, 42..50)
        );
        let L4::Icmp { repr, message } = p.l4 else {
            panic!("not ICMP")
        };
        assert_eq!(
            (repr.kind, repr.id, repr.seq),
            (icmp::V4_ECHO_REQUEST, 0x5a22, 1)
        );
        assert_eq!(message, &PING_FRAME[34..]);

        let f = parse_frame(&PING6_FRAME).unwrap();
        let L4::Icmp { repr, .. } = f.ip().unwrap().l4 else {
            panic!("not ICMPv6")
        };
        assert_eq!((repr.kind, repr.id), (icmp::V6_ECHO_REQUEST, 0x5a24));

        let f = parse_frame(&SYN_FRAME).unwrap();
        assert_eq!((f.l4_protocol(), f.ports()), (Some(6), Some((43802, 8000))));
        let p = f.ip().unwrap();
        assert_eq!((p.l4_range.clone(), p.data.clone()), (34..74, 74..74));
        let L4::Tcp(t) = p.l4 else { panic!("not TCP") };
        assert_eq!(
            (t.flags, t.options.mss, t.options.wscale),
            (tcp::SYN, Some(1460), Some(10))
        );

        let f = parse_frame(&UDP4_FRAME).unwrap();
        assert_eq!(f.ports(), Some((40000, 9999)));
        assert_eq!(&UDP4_FRAME[f.ip().unwrap().data.clone()], b"hello");
        let f = parse_frame(&UDP6_FRAME).unwrap();
        assert_eq!(f.ports(), Some((40001, 9999)));
        assert_eq!(&UDP6_FRAME[f.ip().unwrap().data.clone()], b"hello6");

        let f = parse_frame(&MLD_FRAME).unwrap();
        let p = f.ip().unwrap();
        assert_eq!(
            (p.protocol, p.hop_limit, p.l4_range.clone()),
            (58, 1, 62..90)
        );
        let IpHeader::V6(h) = &p.header else {
            panic!("not IPv6")
        };
        assert_eq!(h.ext.first(), ipv6::NEXT_HOP_BY_HOP);
    }

    #[test]
    fn parse_then_emit_is_byte_identical() {
        for fixture in FIXTURES {
            let f = parse_frame(fixture).unwrap();
            assert_eq!(f.buffer_len(), fixture.len());
            let mut out = vec![0u8; f.buffer_len()];
            f.emit(&mut out);
            assert_eq!(out, fixture);
        }
    }

    #[test]
    fn checksums_verify() {
        // The IPv4 header and ICMP message of the ping sum to zero, as
        // does the TCP segment with its pseudo-header.
        assert_eq!(checksum::checksum(&PING_FRAME[14..34]), 0);
        assert_eq!(checksum::checksum(&PING_FRAME[34..]), 0);
        let seg = &SYN_FRAME[34..];
        assert_eq!(
            checksum::upper_layer(ip("10.77.0.1"), ip("10.77.0.2"), 6, seg),
            0
        );
        // A bit flipped anywhere a checksum covers is refused: all of an
        // IPv4 packet; IPv6 addresses (pseudo-header) and upper layer.
        for fixture in FIXTURES {
            let Some(ip) = parse_frame(fixture).unwrap().ip().cloned() else {
                continue;
            };
            let covered: Vec<usize> = match ip.header {
                IpHeader::V4(_) => (14..fixture.len()).collect(),
                IpHeader::V6(_) => (22..54).chain(ip.l4_range.clone()).collect(),
            };
            for at in covered {
                let mut bad = fixture.to_vec();
                bad[at] ^= 0x01;
                assert!(
                    parse_frame(&bad).is_err(),
                    "byte {at} of {:02x?}",
                    &fixture[..20]
                );
            }
        }
    }

    #[test]
    fn every_prefix_is_refused() {
        for fixture in FIXTURES {
            for n in 0..fixture.len() {
                assert!(parse_frame(&fixture[..n]).is_err(), "prefix {n}");
            }
        }
    }

    /// `PING_FRAME` with its IPv4 flags/offset and source changed.
    fn ping_with(flags_offset: u16, src: [u8; 4]) -> Vec<u8> {
        let mut b = PING_FRAME.to_vec();
        b[20..22].copy_from_slice(&flags_offset.to_be_bytes());
        b[26..30].copy_from_slice(&src);
        ipv4::Packet::new_unchecked(&mut b[14..]).fill_checksum();
        // The ICMP checksum does not cover the IP header.
        b
    }

    #[test]
    fn what_a_guest_may_not_send() {
        let ok = ping_with(0x4000, [10, 77, 0, 1]);
        assert!(parse_frame(&ok).is_ok());
        assert_eq!(
            parse_frame(&ping_with(0x2000, [10, 77, 0, 1])),
            Err(DropReason::Fragment)
        );
        assert_eq!(
            parse_frame(&ping_with(0x0001, [10, 77, 0, 1])),
            Err(DropReason::Fragment)
        );
        assert_eq!(
            parse_frame(&ping_with(0x4000, [224, 0, 0, 1])),
            Err(DropReason::BadAddress)
        );
        assert_eq!(
            parse_frame(&ping_with(0x4000, [255; 4])),
            Err(DropReason::BadAddress)
        );
        let mut mcast6 = PING6_FRAME;
        mcast6[22] = 0xff;
        assert_eq!(parse_frame(&mcast6), Err(DropReason::BadAddress));
        // UDP to port 0.
        let mut port0 = UDP4_FRAME;
        port0[36..38].fill(0);
        udp::Packet::new_unchecked(&mut port0[34..])
            .fill_checksum(ip("10.77.0.1"), ip("10.77.0.2"));
        assert_eq!(parse_frame(&port0), Err(DropReason::BadPort));
        // 802.1Q, LLDP and an 802.3 length field are not ours.
        for ethertype in [0x8100u16, 0x88cc, 0x0040] {
            let mut other = PING_FRAME;
            other[12..14].copy_from_slice(&ethertype.to_be_bytes());
            assert_eq!(parse_frame(&other), Err(DropReason::UnknownEtherType));
        }
        // IPv6 in an IPv4 EtherType.
        let mut mixed = PING6_FRAME;
        mixed[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(parse_frame(&mixed), Err(DropReason::UnsupportedVersion));
    }

    #[test]
    fn other_protocols_are_reported_not_refused() {
        let mut b = ping_with(0x4000, [10, 77, 0, 1]);
        b[23] = 132; // SCTP
        ipv4::Packet::new_unchecked(&mut b[14..]).fill_checksum();
        let f = parse_frame(&b).unwrap();
        assert!(matches!(f.ip().unwrap().l4, L4::Other(132, m) if m.len() == 16));
        let mut out = vec![0u8; f.buffer_len()];
        f.emit(&mut out);
        assert_eq!(out, b);
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
            let mut b = PING_FRAME[..14].to_vec();
            if v6 {
                b[12..14].copy_from_slice(&[0x86, 0xdd]);
            }
            b.extend_from_slice(&bytes);
            if b.len() > 14 {
                b[14] = if v6 { 0x60 } else { 0x45 };
            }
            let _ = parse_frame(&b);
        }

        /// Emitting what was parsed gives a frame that parses to the same.
        #[test]
        fn mutated_fixtures_parse_emit_parse(
            which in 0usize..7, at in 0usize..100, value in any::<u8>(),
        ) {
            let mut b = FIXTURES[which].to_vec();
            let at = at % b.len();
            b[at] = value;
            if let Ok(f) = parse_frame(&b) {
                let mut out = vec![0u8; f.buffer_len()];
                f.emit(&mut out);
                let again = parse_frame(&out).unwrap();
                let mut out2 = vec![0u8; again.buffer_len()];
                again.emit(&mut out2);
                prop_assert_eq!(out, out2);
            }
        }
    }
}
