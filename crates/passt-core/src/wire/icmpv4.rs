//! ICMP for IPv4 (RFC 792): the 8-byte header every message has (type,
//! code, checksum over the whole message, four bytes whose meaning
//! depends on the type), and typed forms of the messages the engine
//! handles: echo request and reply, destination unreachable (with the
//! next-hop MTU of RFC 1191), time exceeded.
//!
//! Anything else, or a known type whose unused bytes are not zero (RFC
//! 4884 extensions, say), is `Repr::Other` and keeps those bytes, so
//! that emitting what was parsed gives back the same message.

use super::checksum;
use super::{read_u16, read_u32, write_u16, write_u32, DropReason};

pub const ECHO_REPLY: u8 = 0;
pub const DST_UNREACHABLE: u8 = 3;
pub const REDIRECT: u8 = 5;
pub const ECHO_REQUEST: u8 = 8;
pub const TIME_EXCEEDED: u8 = 11;
pub const PARAM_PROBLEM: u8 = 12;

/// Destination unreachable codes (RFC 792, RFC 1122, RFC 1812).
pub mod unreachable {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    pub const FRAG_NEEDED: u8 = 4;
    pub const ADMIN_PROHIBITED: u8 = 13;
}

mod field {
    use std::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const UNUSED: Range<usize> = 4..6;
    pub const MTU: Range<usize> = 6..8;
    pub const DATA: usize = 8;
}

pub const HEADER_LEN: usize = field::DATA;

/// A view of an ICMP message (the whole IPv4 payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

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

    /// Bytes 4..8, whatever the type makes of them.
    pub fn rest_of_header(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::REST])
    }

    pub fn echo_ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    pub fn echo_seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_SEQNO])
    }

    /// Destination unreachable, fragmentation needed: the next hop's MTU.
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::MTU])
    }

    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA..]
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
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

    pub fn set_next_hop_mtu(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::UNUSED], 0);
        write_u16(&mut self.buffer.as_mut()[field::MTU], v);
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA..]
    }

    /// Checksum over the whole buffer: size it to the message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
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

/// An ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
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
    /// `data` is the start of the datagram that could not be delivered
    /// (its IP header and at least 8 bytes of payload).
    DstUnreachable {
        code: u8,
        /// Non-zero only for `unreachable::FRAG_NEEDED`.
        mtu: u16,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    /// Any other message, bytes 4..8 kept as they are.
    Other {
        msg_type: u8,
        code: u8,
        rest: u32,
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parses a whole message, verifying its checksum.
    pub fn parse<B: AsRef<[u8]> + ?Sized>(buf: &'a B) -> Result<Repr<'a>, DropReason> {
        let b = buf.as_ref();
        let p = Packet::new_checked(b)?;
        if !p.verify_checksum() {
            return Err(DropReason::BadChecksum);
        }
        let data = &b[field::DATA..];
        let (msg_type, code, rest) = (p.msg_type(), p.msg_code(), p.rest_of_header());
        Ok(match (msg_type, code) {
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
            (DST_UNREACHABLE, _) if rest >> 16 == 0 => Repr::DstUnreachable {
                code,
                mtu: p.next_hop_mtu(),
                data,
            },
            (TIME_EXCEEDED, _) if rest == 0 => Repr::TimeExceeded { code, data },
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
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::DstUnreachable { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::Other { data, .. } => data,
        }
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message into `buf[..buffer_len()]`, checksum included.
    pub fn emit<B: AsMut<[u8]> + ?Sized>(&self, buf: &mut B) {
        let len = self.buffer_len();
        let mut p = Packet::new_unchecked(&mut buf.as_mut()[..len]);
        let (msg_type, code) = match *self {
            Repr::EchoRequest { ident, seq_no, .. } | Repr::EchoReply { ident, seq_no, .. } => {
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                let t = if matches!(self, Repr::EchoRequest { .. }) {
                    ECHO_REQUEST
                } else {
                    ECHO_REPLY
                };
                (t, 0)
            }
            Repr::DstUnreachable { code, mtu, .. } => {
                p.set_next_hop_mtu(mtu);
                (DST_UNREACHABLE, code)
            }
            Repr::TimeExceeded { code, .. } => {
                p.set_rest_of_header(0);
                (TIME_EXCEEDED, code)
            }
            Repr::Other {
                msg_type,
                code,
                rest,
                ..
            } => {
                p.set_rest_of_header(rest);
                (msg_type, code)
            }
        };
        p.set_msg_type(msg_type);
        p.set_msg_code(code);
        p.data_mut().copy_from_slice(self.data());
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on a veth between two namespaces (IPv4 header removed).

    /// `ping -s 8` from 10.77.0.1: id 0x5a22, seq 1, data 00..07.
    static ECHO_REQUEST_MSG: [u8; 16] = [
        0x08, 0x00, 0x91, 0xcc, 0x5a, 0x22, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];

    /// The reply from 10.77.0.2.
    static ECHO_REPLY_MSG: [u8; 16] = [
        0x00, 0x00, 0x99, 0xcc, 0x5a, 0x22, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];

    /// Port unreachable for a UDP datagram 10.77.0.1:40002 ->
    /// 10.77.0.2:9998 ("closed"), quoting its IP header and UDP datagram.
    static PORT_UNREACHABLE: [u8; 42] = [
        0x03, 0x03, 0x11, 0xb9, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x22, 0x5f, 0x64, 0x40,
        0x00, 0x40, 0x11, 0xc6, 0xca, 0x0a, 0x4d, 0x00, 0x01, 0x0a, 0x4d, 0x00, 0x02, 0x9c, 0x42,
        0x27, 0x0e, 0x00, 0x0e, 0xef, 0xa0, 0x63, 0x6c, 0x6f, 0x73, 0x65, 0x64,
    ];

    const FIXTURES: [&[u8]; 3] = [&ECHO_REQUEST_MSG, &ECHO_REPLY_MSG, &PORT_UNREACHABLE];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&ECHO_REQUEST_MSG[..]).unwrap();
        assert_eq!(
            (p.msg_type(), p.msg_code(), p.checksum()),
            (ECHO_REQUEST, 0, 0x91cc)
        );
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x5a22, 1));
        assert_eq!(p.data(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(p.verify_checksum());
        let u = Packet::new_checked(&PORT_UNREACHABLE[..]).unwrap();
        assert_eq!(
            (u.msg_type(), u.msg_code()),
            (DST_UNREACHABLE, unreachable::PORT)
        );
        assert_eq!((u.rest_of_header(), u.next_hop_mtu()), (0, 0));
        assert_eq!(u.data().len(), 34);
        assert_eq!(&u.data()[..2], &[0x45, 0x00], "the quoted IPv4 header");
        assert!(u.verify_checksum());
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 16];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(ECHO_REPLY);
        p.set_msg_code(0);
        p.set_echo_ident(0x5a22);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(&[0, 1, 2, 3, 4, 5, 6, 7]);
        p.fill_checksum();
        assert_eq!(b, ECHO_REPLY_MSG);
    }

    #[test]
    fn parse_then_emit_is_byte_identical() {
        assert_eq!(
            Repr::parse(&ECHO_REQUEST_MSG),
            Ok(Repr::EchoRequest {
                ident: 0x5a22,
                seq_no: 1,
                data: &ECHO_REQUEST_MSG[8..]
            })
        );
        assert_eq!(
            Repr::parse(&PORT_UNREACHABLE),
            Ok(Repr::DstUnreachable {
                code: 3,
                mtu: 0,
                data: &PORT_UNREACHABLE[8..]
            })
        );
        for fixture in FIXTURES {
            let r = Repr::parse(fixture).unwrap();
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out);
            assert_eq!(out, fixture);
        }
    }

    #[test]
    fn truncated_and_corrupted() {
        for fixture in FIXTURES {
            for n in 0..HEADER_LEN {
                assert_eq!(Repr::parse(&fixture[..n]), Err(DropReason::Truncated));
            }
            // Shorter data makes the checksum wrong, never a panic.
            for n in HEADER_LEN..fixture.len() {
                assert!(Repr::parse(&fixture[..n]).is_err(), "{n}");
            }
            let mut bad = fixture.to_vec();
            bad[5] ^= 0x10;
            assert_eq!(Repr::parse(&bad), Err(DropReason::BadChecksum));
        }
    }

    #[test]
    fn unusual_bytes_survive_as_other() {
        // RFC 4884: a length in byte 5 of a destination unreachable.
        let mut ext = PORT_UNREACHABLE;
        ext[5] = 8;
        Packet::new_unchecked(&mut ext[..]).fill_checksum();
        let r = Repr::parse(&ext).unwrap();
        assert!(matches!(
            r,
            Repr::Other {
                msg_type: DST_UNREACHABLE,
                rest: 0x0008_0000,
                ..
            }
        ));
        let mut out = [0u8; 42];
        r.emit(&mut out);
        assert_eq!(out, ext);
    }

    /// One of each variant, chosen by `variant`, over `data`.
    fn build(variant: u8, a: u16, b: u16, code: u8, rest: u32, data: &[u8]) -> Repr<'_> {
        match variant % 5 {
            0 => Repr::EchoRequest {
                ident: a,
                seq_no: b,
                data,
            },
            1 => Repr::EchoReply {
                ident: a,
                seq_no: b,
                data,
            },
            2 => Repr::DstUnreachable { code, mtu: b, data },
            3 => Repr::TimeExceeded { code, data },
            // Types modelled above would parse as themselves.
            _ => Repr::Other {
                msg_type: [5, 12, 13, 40][usize::from(a % 4)],
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
        ) {
            let r = build(variant, a, b, code, rest, &data);
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out);
            prop_assert_eq!(Repr::parse(&out).unwrap(), r);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.data(), p.echo_ident(), p.next_hop_mtu(), p.verify_checksum());
            }
            let _ = Repr::parse(&bytes);
        }
    }
}
