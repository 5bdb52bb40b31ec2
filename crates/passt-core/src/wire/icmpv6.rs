//! ICMPv6 (RFC 4443): the 8-byte header (type, code, checksum over the
//! pseudo-header and the whole message, four type-specific bytes), and
//! typed forms of the error and echo messages: destination unreachable,
//! packet too big, time exceeded, parameter problem, echo request and
//! reply.
//!
//! Neighbour Discovery and MLD messages are ICMPv6 too; their bodies are
//! `ndisc`'s business, and here they are `Repr::Other`, which keeps
//! bytes 4..8 and the rest as they are so that emitting what was parsed
//! gives back the same message. So is a known type with non-zero unused
//! bytes.

use std::net::{IpAddr, Ipv6Addr};

use super::checksum;
use super::{read_u16, read_u32, write_u16, write_u32, DropReason};

pub const PROTO_ICMPV6: u8 = 58;

pub const DST_UNREACHABLE: u8 = 1;
pub const PACKET_TOO_BIG: u8 = 2;
pub const TIME_EXCEEDED: u8 = 3;
pub const PARAM_PROBLEM: u8 = 4;
pub const ECHO_REQUEST: u8 = 128;
pub const ECHO_REPLY: u8 = 129;
pub const MLD_QUERY: u8 = 130;
pub const ROUTER_SOLICIT: u8 = 133;
pub const ROUTER_ADVERT: u8 = 134;
pub const NEIGHBOR_SOLICIT: u8 = 135;
pub const NEIGHBOR_ADVERT: u8 = 136;
pub const REDIRECT: u8 = 137;
pub const MLDV2_REPORT: u8 = 143;

/// Destination unreachable codes (RFC 4443 §3.1).
pub mod unreachable {
    pub const NO_ROUTE: u8 = 0;
    pub const ADMIN_PROHIBITED: u8 = 1;
    pub const BEYOND_SCOPE: u8 = 2;
    pub const ADDRESS: u8 = 3;
    pub const PORT: u8 = 4;
}

mod field {
    use std::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const DATA: usize = 8;
}

pub const HEADER_LEN: usize = field::DATA;

/// A view of an ICMPv6 message (the upper-layer packet of IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Every ICMPv6 message defined has at least the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, DropReason> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), DropReason> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// Bytes 4..8: unused, an MTU, a pointer, or echo identifiers.
    pub fn rest_of_header(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::REST])
    }

    pub fn echo_ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    pub fn echo_seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        checksum::upper_layer(IpAddr::V6(src), IpAddr::V6(dst), PROTO_ICMPV6, b) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    pub fn set_checksum(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    pub fn set_rest_of_header(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::REST], v);
    }

    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_IDENT], v);
    }

    pub fn set_echo_seq_no(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_SEQNO], v);
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Checksum over the pseudo-header and the whole buffer: size it to
    /// the message.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let c = checksum::upper_layer(IpAddr::V6(src), IpAddr::V6(dst), PROTO_ICMPV6, b);
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AsMut<[u8]> for Packet<T> {
    fn as_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

/// An ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// `data` is as much of the offending packet as fits (RFC 4443 §2.4).
    DstUnreachable {
        code: u8,
        data: &'a [u8],
    },
    PacketTooBig {
        mtu: u32,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    ParamProblem {
        code: u8,
        /// Offset of the offending byte in the quoted packet.
        pointer: u32,
        data: &'a [u8],
    },
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// NDP, MLD and anything else: bytes 4..8 and the body as found.
    Other {
        msg_type: u8,
        code: u8,
        rest: u32,
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses a whole message from `src` to `dst`, verifying its checksum.
    pub fn parse<B: AsRef<[u8]> + ?Sized>(
        buf: &'a B,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Repr<'a>, DropReason> {
        let b = buf.as_ref();
        let p = Packet::new_checked(b)?;
        if !p.verify_checksum(src, dst) {
            return Err(DropReason::BadChecksum);
        }
        let data = &b[field::DATA..];
        let (msg_type, code, rest) = (p.msg_type(), p.msg_code(), p.rest_of_header());
        Ok(match (msg_type, code) {
            (DST_UNREACHABLE, _) if rest == 0 => Repr::DstUnreachable { code, data },
            (PACKET_TOO_BIG, 0) => Repr::PacketTooBig { mtu: rest, data },
            (TIME_EXCEEDED, _) if rest == 0 => Repr::TimeExceeded { code, data },
            (PARAM_PROBLEM, _) => Repr::ParamProblem {
                code,
                pointer: rest,
                data,
            },
            (ECHO_REQUEST, 0) => Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            (ECHO_REPLY, 0) => Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            _ => Repr::Other {
                msg_type,
                code,
                rest,
                data,
            },
        })
    }

    pub fn data(&self) -> &'a [u8] {
        match *self {
            Repr::DstUnreachable { data, .. }
            | Repr::PacketTooBig { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::ParamProblem { data, .. }
            | Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::Other { data, .. } => data,
        }
    }

    /// Type, code and bytes 4..8 as they go on the wire.
    fn header(&self) -> (u8, u8, u32) {
        let echo = |ident: u16, seq_no: u16| u32::from(ident) << 16 | u32::from(seq_no);
        match *self {
            Repr::DstUnreachable { code, .. } => (DST_UNREACHABLE, code, 0),
            Repr::PacketTooBig { mtu, .. } => (PACKET_TOO_BIG, 0, mtu),
            Repr::TimeExceeded { code, .. } => (TIME_EXCEEDED, code, 0),
            Repr::ParamProblem { code, pointer, .. } => (PARAM_PROBLEM, code, pointer),
            Repr::EchoRequest { ident, seq_no, .. } => (ECHO_REQUEST, 0, echo(ident, seq_no)),
            Repr::EchoReply { ident, seq_no, .. } => (ECHO_REPLY, 0, echo(ident, seq_no)),
            Repr::Other {
                msg_type,
                code,
                rest,
                ..
            } => (msg_type, code, rest),
        }
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message from `src` to `dst` into `buf[..buffer_len()]`,
    /// checksum included.
    pub fn emit<B: AsMut<[u8]> + ?Sized>(&self, buf: &mut B, src: Ipv6Addr, dst: Ipv6Addr) {
        let len = self.buffer_len();
        let mut p = Packet::new_unchecked(&mut buf.as_mut()[..len]);
        let (msg_type, code, rest) = self.header();
        p.set_msg_type(msg_type);
        p.set_msg_code(code);
        p.set_rest_of_header(rest);
        p.data_mut().copy_from_slice(self.data());
        p.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on a veth between two namespaces (IPv6 header removed).

    /// `ping -6 -s 8` fd77::1 -> fd77::2: id 0x5a24, seq 1, data 00..07.
    static ECHO: [u8; 16] = [
        0x80, 0x00, 0x1e, 0x8d, 0x5a, 0x24, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];

    /// fd77::2 -> fd77::1: port unreachable for UDP [fd77::1]:40003 ->
    /// [fd77::2]:9998 ("closed6"), quoting the whole datagram.
    static UNREACH: [u8; 63] = [
        0x01, 0x04, 0x57, 0xf3, 0x00, 0x00, 0x00, 0x00, 0x60, 0x0b, 0x3a, 0x62, 0x00, 0x0f, 0x11,
        0x40, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x02, 0x9c, 0x43, 0x27, 0x0e, 0x00, 0x0f, 0xd3, 0x47, 0x63, 0x6c, 0x6f, 0x73,
        0x65, 0x64, 0x36,
    ];

    /// fd77::1 -> ff02::1:ff00:2: neighbour solicitation for fd77::2 with
    /// a source link-layer address option (02:aa:00:00:00:01).
    static NS: [u8; 32] = [
        0x87, 0x00, 0x7b, 0xff, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01, 0x02, 0xaa, 0x00, 0x00,
        0x00, 0x01,
    ];

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// Each fixture with its source and destination.
    fn fixtures() -> [(&'static [u8], Ipv6Addr, Ipv6Addr); 3] {
        [
            (&ECHO, ip("fd77::1"), ip("fd77::2")),
            (&UNREACH, ip("fd77::2"), ip("fd77::1")),
            (&NS, ip("fd77::1"), ip("ff02::1:ff00:2")),
        ]
    }

    #[test]
    fn deconstruct() {
        let (s, d) = (ip("fd77::1"), ip("fd77::2"));
        let p = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(
            (p.msg_type(), p.msg_code(), p.checksum()),
            (ECHO_REQUEST, 0, 0x1e8d)
        );
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x5a24, 1));
        assert_eq!(p.data(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(p.verify_checksum(s, d));
        assert!(
            !p.verify_checksum(s, ip("fd77::3")),
            "the pseudo-header counts"
        );
        let u = Packet::new_checked(&UNREACH[..]).unwrap();
        assert_eq!(
            (u.msg_type(), u.msg_code(), u.rest_of_header()),
            (1, unreachable::PORT, 0)
        );
        assert_eq!(u.data()[0] >> 4, 6, "the quoted IPv6 header");
        let n = Packet::new_checked(&NS[..]).unwrap();
        assert_eq!(n.msg_type(), NEIGHBOR_SOLICIT);
        assert!(n.verify_checksum(ip("fd77::1"), ip("ff02::1:ff00:2")));
    }

    #[test]
    fn construct() {
        let (s, d) = (ip("fd77::1"), ip("fd77::2"));
        let mut b = [0xa5u8; 16];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_echo_ident(0x5a24);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7]);
        p.fill_checksum(s, d);
        assert_eq!(b, ECHO);
    }

    #[test]
    fn parse_then_emit_is_byte_identical() {
        let (s, d) = (ip("fd77::1"), ip("fd77::2"));
        assert_eq!(
            Repr::parse(&ECHO, s, d),
            Ok(Repr::EchoRequest {
                ident: 0x5a24,
                seq_no: 1,
                data: &ECHO[8..]
            })
        );
        assert_eq!(
            Repr::parse(&UNREACH, d, s),
            Ok(Repr::DstUnreachable {
                code: unreachable::PORT,
                data: &UNREACH[8..]
            })
        );
        assert!(matches!(
            Repr::parse(&NS, s, ip("ff02::1:ff00:2")),
            Ok(Repr::Other {
                msg_type: NEIGHBOR_SOLICIT,
                code: 0,
                rest: 0,
                ..
            })
        ));
        for (fixture, s, d) in fixtures() {
            let r = Repr::parse(fixture, s, d).unwrap();
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out, s, d);
            assert_eq!(out, fixture);
        }
    }

    #[test]
    fn truncated_and_corrupted() {
        for (fixture, s, d) in fixtures() {
            for n in 0..HEADER_LEN {
                assert_eq!(Repr::parse(&fixture[..n], s, d), Err(DropReason::Truncated));
            }
            for n in HEADER_LEN..fixture.len() {
                assert!(Repr::parse(&fixture[..n], s, d).is_err(), "{n}");
            }
            assert_eq!(
                Repr::parse(fixture, s, ip("::1")),
                Err(DropReason::BadChecksum)
            );
        }
    }

    fn build(variant: u8, a: u16, b: u16, code: u8, rest: u32, data: &[u8]) -> Repr<'_> {
        match variant % 7 {
            0 => Repr::DstUnreachable { code, data },
            1 => Repr::PacketTooBig { mtu: rest, data },
            2 => Repr::TimeExceeded { code, data },
            3 => Repr::ParamProblem {
                code,
                pointer: rest,
                data,
            },
            4 => Repr::EchoRequest {
                ident: a,
                seq_no: b,
                data,
            },
            5 => Repr::EchoReply {
                ident: a,
                seq_no: b,
                data,
            },
            // Types modelled above would parse as themselves.
            _ => Repr::Other {
                msg_type: [ROUTER_SOLICIT, NEIGHBOR_ADVERT, MLDV2_REPORT, 200][usize::from(a % 4)],
                code,
                rest,
                data,
            },
        }
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            variant in any::<u8>(), a in any::<u16>(), b in any::<u16>(), code in any::<u8>(),
            rest in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..64),
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
        ) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let r = build(variant, a, b, code, rest, &data);
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out, src, dst);
            prop_assert_eq!(Repr::parse(&out, src, dst).unwrap(), r);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.data(), p.echo_ident(), p.rest_of_header());
            }
            let _ = Repr::parse(&bytes, Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST);
        }
    }
}
