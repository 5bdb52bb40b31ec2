//! IPv4 headers (RFC 791).
//!
//! Owns the header: version, IHL, the header checksum, options (their
//! TLV structure is checked, their meaning is not ours: they are kept as
//! bytes and re-emitted as found), and the fragment fields. Fragments
//! are parsed and flagged (`Repr::is_fragment`); refusing them is
//! `frame::parse_frame`'s decision, not the format's.
//!
//! Invariant of a checked view: `header_len() >= 20` and
//! `header_len() <= total_len() <= buffer length`, so `options()` and
//! `payload()` never panic. Bytes after `total_len()` are link padding
//! and belong to nobody.

use std::net::Ipv4Addr;
use std::ops::Range;

use super::checksum;
use super::{read_u16, write_u16, DropReason};

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const DEFAULT_TTL: u8 = 64;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

mod option {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
}

mod field {
    use std::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// The fixed header; options may follow, up to `MAX_HEADER_LEN`.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
pub const MAX_HEADER_LEN: usize = 60;

fn addr_at(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// A view of an IPv4 packet.
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
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let header = self.header_len();
        if header < HEADER_LEN {
            return Err(DropReason::BadHeaderLength);
        }
        if len < header {
            return Err(DropReason::Truncated);
        }
        let total = usize::from(self.total_len());
        if total < header {
            return Err(DropReason::BadLength);
        }
        if len < total {
            return Err(DropReason::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL is in 32-bit words).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// DSCP (upper six bits) and ECN (lower two), as one byte.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    pub fn total_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }

    pub fn dont_frag(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (read_u16(&self.buffer.as_ref()[field::FLG_OFF]) & OFFSET_MASK) << 3
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    pub fn src_addr(&self) -> Ipv4Addr {
        addr_at(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    pub fn dst_addr(&self) -> Ipv4Addr {
        addr_at(&self.buffer.as_ref()[field::DST_ADDR])
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload up to the total length: link padding excluded.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length (a multiple of 4, 20 to 60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    pub fn set_total_len(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], v);
    }

    pub fn set_ident(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::IDENT], v);
    }

    /// Flags and fragment offset (in bytes, a multiple of 8) at once.
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        write_u16(&mut self.buffer.as_mut()[field::FLG_OFF], v);
    }

    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    pub fn set_checksum(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Computes and stores the header checksum (IHL set first).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(c);
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
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

/// Checks the TLV structure of IPv4 options (RFC 791 §3.1): EOL ends
/// them, NOP is one byte, every other option has a length of at least 2
/// that stays inside the header. At most 40 bytes, so the loop is short.
fn check_options(mut o: &[u8]) -> Result<(), DropReason> {
    while let Some(&kind) = o.first() {
        match kind {
            option::EOL => break,
            option::NOP => o = &o[1..],
            _ => {
                let len = usize::from(*o.get(1).ok_or(DropReason::BadOption)?);
                if len < 2 || len > o.len() {
                    return Err(DropReason::BadOption);
                }
                o = &o[len..];
            }
        }
    }
    Ok(())
}

/// An IPv4 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In bytes.
    pub frag_offset: u16,
    /// Options as found (a multiple of 4 bytes, at most 40).
    pub options: &'a [u8],
    /// Where the payload is in the parsed buffer, from the end of the
    /// options to the total length. Emitting uses only its length: the
    /// payload always follows the header.
    pub payload: Range<usize>,
}

impl Repr<'static> {
    /// The header we originate: no options, DF (we never fragment; path
    /// MTU discovery stays possible), TTL 64.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload_len: usize) -> Self {
        Repr {
            src,
            dst,
            protocol,
            ttl: DEFAULT_TTL,
            dscp_ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: &[],
            payload: HEADER_LEN..HEADER_LEN + payload_len,
        }
    }
}

impl<'a> Repr<'a> {
    /// Parses an IPv4 packet: version 4, consistent lengths, a header
    /// checksum that verifies, well-formed options.
    pub fn parse<B: AsRef<[u8]> + ?Sized>(buf: &'a B) -> Result<Repr<'a>, DropReason> {
        let b = buf.as_ref();
        // The version first: a packet of another version has other
        // lengths, and "truncated" would misname it.
        match b.first() {
            None => return Err(DropReason::Truncated),
            Some(v) if v >> 4 != 4 => return Err(DropReason::UnsupportedVersion),
            Some(_) => {}
        }
        let p = Packet::new_checked(b)?;
        if !p.verify_checksum() {
            return Err(DropReason::BadChecksum);
        }
        let header_len = p.header_len();
        let options = &b[HEADER_LEN..header_len];
        check_options(options)?;
        Ok(Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
            options,
            payload: header_len..usize::from(p.total_len()),
        })
    }

    /// True for any fragment but a whole datagram (RFC 791: MF clear and
    /// offset zero).
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    fn options_len(&self) -> usize {
        ((self.options.len() + 3) & !3).min(MAX_HEADER_LEN - HEADER_LEN)
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }

    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len()
    }

    /// Writes the header, options padded with EOL to a multiple of 4 and
    /// the checksum into `buf[..header_len()]`. The payload is the
    /// caller's, before or after this call.
    pub fn emit<B: AsMut<[u8]> + ?Sized>(&self, buf: &mut B) {
        let header_len = self.header_len();
        let mut p = Packet::new_unchecked(buf.as_mut());
        p.set_version_and_header_len(header_len);
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len((header_len + self.payload_len()) as u16);
        p.set_ident(self.ident);
        p.set_frag(self.dont_frag, self.more_frags, self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        let opts = p.options_mut();
        let n = self.options.len().min(opts.len());
        opts[..n].copy_from_slice(&self.options[..n]);
        opts[n..].fill(option::EOL);
        p.fill_checksum();
    }
}

/// Writes a 20-byte header (no options, DF, TTL 64) for `payload_len`
/// bytes of payload, checksum included.
pub fn emit_header(
    b: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
    id: u16,
) {
    let mut r = Repr::new(src, dst, protocol, payload_len);
    r.ident = id;
    r.emit(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on a veth between two namespaces, Ethernet header removed.

    /// `ping -s 8 10.77.0.2` from 10.77.0.1: DF, TTL 64, ICMP echo
    /// request id 0x5a22 seq 1.
    static PING: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x45, 0x92, 0x40, 0x00, 0x40, 0x01, 0xe0, 0xaa, 0x0a, 0x4d, 0x00,
        0x01, 0x0a, 0x4d, 0x00, 0x02, 0x08, 0x00, 0x91, 0xcc, 0x5a, 0x22, 0x00, 0x01, 0x00, 0x01,
        0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    ];

    /// `ping -R`: a 60-byte header whose options are NOP and Record Route
    /// (type 7, length 39, pointer 8, first slot 10.77.0.1).
    static PING_RR: [u8; 124] = [
        0x4f, 0x00, 0x00, 0x7c, 0x45, 0x94, 0x40, 0x00, 0x40, 0x01, 0xa3, 0xf3, 0x0a, 0x4d, 0x00,
        0x01, 0x0a, 0x4d, 0x00, 0x02, 0x01, 0x07, 0x27, 0x08, 0x0a, 0x4d, 0x00, 0x01, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x08, 0x00, 0x0f, 0x15, 0x5a, 0x23, 0x00, 0x01, 0xdc, 0x9b, 0x06, 0x6b, 0x00, 0x00, 0x00,
        0x00, 0xe9, 0xec, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
        0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    /// The last fragment of `ping -s 1600` on a 1500-byte MTU: offset
    /// 1480, MF clear, DF clear, 128 bytes of the echo's data.
    static FRAG: [u8; 148] = [
        0x45, 0x00, 0x00, 0x94, 0x45, 0x9b, 0x00, 0xb9, 0x40, 0x01, 0x1f, 0x79, 0x0a, 0x4d, 0x00,
        0x01, 0x0a, 0x4d, 0x00, 0x02, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9,
        0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8,
        0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
        0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6,
        0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
        0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14,
        0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
        0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32,
        0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
    ];

    const A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

    /// Recomputes the header checksum after a test changed a field.
    fn refill(b: &mut [u8]) {
        Packet::new_unchecked(b).fill_checksum();
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PING[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.dscp_ecn()), (4, 20, 0));
        assert_eq!((p.total_len(), p.ident()), (36, 0x4592));
        assert!(p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(
            (p.ttl(), p.protocol(), p.checksum()),
            (64, PROTO_ICMP, 0xe0aa)
        );
        assert_eq!((p.src_addr(), p.dst_addr()), (A, B));
        assert!(p.verify_checksum());
        assert!(p.options().is_empty());
        assert_eq!(p.payload(), &PING[20..]);

        let p = Packet::new_checked(&PING_RR[..]).unwrap();
        assert_eq!((p.header_len(), p.total_len()), (60, 124));
        assert_eq!(&p.options()[..8], &[1, 7, 39, 8, 10, 77, 0, 1]);
        assert_eq!(p.payload().len(), 64);
        assert!(p.verify_checksum());

        let p = Packet::new_checked(&FRAG[..]).unwrap();
        assert!(!p.dont_frag() && !p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.verify_checksum());
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 36];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_and_header_len(20);
        p.set_dscp_ecn(0);
        p.set_total_len(36);
        p.set_ident(0x4592);
        p.set_frag(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(PROTO_ICMP);
        p.set_src_addr(A);
        p.set_dst_addr(B);
        p.payload_mut().copy_from_slice(&PING[20..]);
        p.fill_checksum();
        assert_eq!(b, PING);
    }

    #[test]
    fn parse_then_emit_is_byte_identical() {
        for fixture in [&PING[..], &PING_RR[..], &FRAG[..]] {
            let r = Repr::parse(fixture).unwrap();
            assert_eq!(r.buffer_len(), fixture.len());
            let mut out = vec![0u8; r.buffer_len()];
            out[r.payload.clone()].copy_from_slice(&fixture[r.payload.clone()]);
            r.emit(&mut out);
            assert_eq!(out, fixture);
        }
        let r = Repr::parse(&PING_RR).unwrap();
        assert_eq!((r.options.len(), r.payload.clone()), (40, 60..124));
        let f = Repr::parse(&FRAG).unwrap();
        assert!(f.is_fragment() && !Repr::parse(&PING).unwrap().is_fragment());
        assert_eq!((f.frag_offset, f.ident), (1480, 0x459b));
        // The short form writes the same header.
        let mut out = [0u8; 20];
        emit_header(&mut out, A, B, PROTO_ICMP, 16, 0x4592);
        assert_eq!(out, PING[..20]);
    }

    #[test]
    fn every_prefix_is_refused() {
        for fixture in [&PING[..], &PING_RR[..], &FRAG[..]] {
            for n in 0..fixture.len() {
                assert_eq!(
                    Repr::parse(&fixture[..n]),
                    Err(DropReason::Truncated),
                    "{n}"
                );
            }
        }
    }

    #[test]
    fn what_cannot_be_right_is_named() {
        let mut bad = PING;
        bad[11] ^= 1;
        assert_eq!(Repr::parse(&bad), Err(DropReason::BadChecksum));
        let mut v6 = PING;
        v6[0] = 0x65;
        assert_eq!(Repr::parse(&v6), Err(DropReason::UnsupportedVersion));
        let mut short_ihl = PING;
        short_ihl[0] = 0x44;
        assert_eq!(Repr::parse(&short_ihl), Err(DropReason::BadHeaderLength));
        let mut short_total = PING;
        short_total[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Repr::parse(&short_total), Err(DropReason::BadLength));
        // Record Route claiming 41 bytes in a 40-byte option area.
        let mut overrun = PING_RR;
        overrun[22] = 41;
        refill(&mut overrun);
        assert_eq!(Repr::parse(&overrun), Err(DropReason::BadOption));
        let mut zero_len = PING_RR;
        zero_len[22] = 0;
        refill(&mut zero_len);
        assert_eq!(Repr::parse(&zero_len), Err(DropReason::BadOption));
        // Link padding after the total length is not payload.
        let mut padded = PING.to_vec();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(Repr::parse(&padded).unwrap().payload, 20..36);
    }

    fn options() -> impl Strategy<Value = Vec<u8>> {
        // NOPs and one TLV option, padded with EOL to a multiple of 4.
        (
            0usize..4,
            proptest::option::of((2u8..=255, proptest::collection::vec(any::<u8>(), 0..30))),
        )
            .prop_map(|(nops, tlv)| {
                let mut o = vec![option::NOP; nops];
                if let Some((kind, data)) = tlv {
                    let kind = kind.max(2);
                    o.push(kind);
                    o.push(data.len() as u8 + 2);
                    o.extend_from_slice(&data);
                }
                o.resize((o.len() + 3) & !3, option::EOL);
                o
            })
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), protocol in any::<u8>(), ttl in any::<u8>(),
            dscp_ecn in any::<u8>(), ident in any::<u16>(), dont_frag in any::<bool>(),
            more_frags in any::<bool>(), frag_units in 0u16..0x2000, options in options(),
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let header_len = HEADER_LEN + options.len();
            let r = Repr {
                src: src.into(), dst: dst.into(), protocol, ttl, dscp_ecn, ident, dont_frag, more_frags,
                frag_offset: frag_units * 8, options: &options,
                payload: header_len..header_len + payload.len(),
            };
            let mut b = vec![0u8; r.buffer_len()];
            b[header_len..].copy_from_slice(&payload);
            r.emit(&mut b);
            let back = Repr::parse(&b).unwrap();
            prop_assert_eq!(&back, &r);
            prop_assert_eq!(&b[back.payload], &payload[..]);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.options(), p.payload(), p.verify_checksum());
            }
            let _ = Repr::parse(&bytes);
        }
    }
}
