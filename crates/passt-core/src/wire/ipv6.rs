//! IPv6 headers (RFC 8200) and the walk over extension headers to the
//! upper-layer protocol.
//!
//! The walk knows Hop-by-Hop Options, Routing, Fragment and Destination
//! Options; anything else is the upper layer (including No Next Header,
//! ESP and AH, which the frame parser then treats as "other"). It is
//! bounded: at most `MAX_EXT` headers, each at least 8 bytes and inside
//! the payload length, so the loop ends whatever the guest sends.
//! Options inside Hop-by-Hop and Destination Options headers are walked
//! too: one that runs past its header, or that is unknown and says
//! "discard" in its two high bits (RFC 8200 §4.2), refuses the packet.
//! A Routing header with segments left asks us to route, which we don't.
//!
//! Extension headers are kept as found (`ExtHeaders`, slices into the
//! buffer, no allocation) and re-emitted as found. Fragments are parsed
//! and flagged (`Repr::fragment`); refusing them is the frame parser's
//! decision.

use std::fmt;
use std::net::Ipv6Addr;
use std::ops::Range;

use super::{read_u16, read_u32, write_u16, write_u32, DropReason};

pub const NEXT_HOP_BY_HOP: u8 = 0;
pub const NEXT_TCP: u8 = 6;
pub const NEXT_UDP: u8 = 17;
pub const NEXT_ROUTING: u8 = 43;
pub const NEXT_FRAGMENT: u8 = 44;
pub const NEXT_ICMPV6: u8 = 58;
pub const NEXT_NONE: u8 = 59;
pub const NEXT_DEST_OPTS: u8 = 60;

/// Most extension headers we walk before giving up on a packet.
pub const MAX_EXT: usize = 8;
pub const DEFAULT_HOP_LIMIT: u8 = 64;

mod option {
    pub const PAD1: u8 = 0;
    pub const PADN: u8 = 1;
    pub const ROUTER_ALERT: u8 = 5;
}

mod field {
    use std::ops::Range;

    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

pub const HEADER_LEN: usize = field::DST_ADDR.end;

fn addr_at(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(b);
    Ipv6Addr::from(o)
}

/// A view of an IPv6 packet's fixed header and payload.
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
        if len < HEADER_LEN || len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(DropReason::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn ver_tc_flow(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::VER_TC_FLOW])
    }

    pub fn version(&self) -> u8 {
        (self.ver_tc_flow() >> 28) as u8
    }

    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// Bytes after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        addr_at(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        addr_at(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// Extension headers and upper layer, link padding excluded.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Version 6 with a traffic class and a (20-bit) flow label.
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = 6 << 28 | u32::from(traffic_class) << 20 | (flow_label & 0x000f_ffff);
        write_u32(&mut self.buffer.as_mut()[field::VER_TC_FLOW], v);
    }

    pub fn set_payload_len(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], v);
    }

    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = v;
    }

    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
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

/// What a Fragment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// In bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

impl Fragment {
    /// RFC 6946: offset 0 without more fragments is a whole packet that
    /// merely carries the header (an "atomic fragment").
    pub fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// One extension header: its type and its bytes after the Next Header
/// and Hdr Ext Len (or, for Fragment, Reserved) octets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader<'a> {
    pub kind: u8,
    pub data: &'a [u8],
}

impl ExtHeader<'_> {
    /// Bytes on the wire.
    pub fn wire_len(&self) -> usize {
        2 + self.data.len()
    }

    pub fn fragment(&self) -> Option<Fragment> {
        if self.kind != NEXT_FRAGMENT || self.data.len() != 6 {
            return None;
        }
        let off_flags = read_u16(&self.data[0..2]);
        Some(Fragment {
            offset: off_flags & !7,
            more: off_flags & 1 != 0,
            ident: read_u32(&self.data[2..6]),
        })
    }
}

impl fmt::Debug for ExtHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExtHeader({}, {} bytes)", self.kind, self.wire_len())
    }
}

fn is_extension(kind: u8) -> bool {
    matches!(
        kind,
        NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_FRAGMENT | NEXT_DEST_OPTS
    )
}

/// Length of the extension header of type `kind` at the start of `b`, if
/// `b` holds it whole.
fn ext_len(kind: u8, b: &[u8]) -> Option<usize> {
    let len = match kind {
        NEXT_FRAGMENT => 8,
        _ => (usize::from(*b.get(1)?) + 1) * 8,
    };
    (len <= b.len()).then_some(len)
}

/// Walks the options of a Hop-by-Hop or Destination Options header.
/// The header is at most 2 KiB, so the loop is bounded.
fn check_tlv_options(mut o: &[u8]) -> Result<(), DropReason> {
    while let Some(&kind) = o.first() {
        if kind == option::PAD1 {
            o = &o[1..];
            continue;
        }
        let len = 2 + usize::from(*o.get(1).ok_or(DropReason::BadOption)?);
        if len > o.len() {
            return Err(DropReason::BadOption);
        }
        // The two high bits of an unknown option's type say what to do:
        // 00 skip it, anything else discard the packet.
        let known = kind == option::PADN || kind == option::ROUTER_ALERT;
        if !known && kind >> 6 != 0 {
            return Err(DropReason::BadOption);
        }
        o = &o[len..];
    }
    Ok(())
}

/// Walks the extension headers at the start of `b`, the first of type
/// `first`, checking each one. Returns their total length and the type
/// of what follows them (the upper layer).
fn walk(first: u8, b: &[u8]) -> Result<(usize, u8), DropReason> {
    let (mut kind, mut at, mut count) = (first, 0, 0);
    while is_extension(kind) {
        if count == MAX_EXT || (kind == NEXT_HOP_BY_HOP && count != 0) {
            return Err(DropReason::ExtHeaderChain);
        }
        // Every extension header is at least 8 bytes.
        let rest = &b[at..];
        if rest.len() < 8 {
            return Err(DropReason::Truncated);
        }
        let len = ext_len(kind, rest).ok_or(DropReason::Truncated)?;
        let header = &rest[..len];
        match kind {
            NEXT_HOP_BY_HOP | NEXT_DEST_OPTS => check_tlv_options(&header[2..])?,
            NEXT_ROUTING if header[3] != 0 => return Err(DropReason::Unsupported),
            _ => {}
        }
        kind = header[0];
        at += len;
        count += 1;
    }
    Ok((at, kind))
}

/// The chain of extension headers as found on the wire: the type of the
/// first one and the bytes of all of them. Checked when made, walked
/// again (cheaply, at most `MAX_EXT` steps) when iterated; a slice, so
/// that a parsed header stays small and nothing is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtHeaders<'a> {
    first: u8,
    bytes: &'a [u8],
}

impl<'a> ExtHeaders<'a> {
    /// No extension headers.
    pub fn none() -> Self {
        Self::default()
    }

    /// A chain starting with a header of type `first` that fills `bytes`
    /// exactly, with the checks `Repr::parse` applies. The Next Header of
    /// the last one is rewritten on emit to the `Repr`'s upper layer.
    pub fn new(first: u8, bytes: &'a [u8]) -> Result<Self, DropReason> {
        if bytes.is_empty() {
            return Ok(Self::none());
        }
        if !is_extension(first) {
            return Err(DropReason::BadLength);
        }
        let (len, _) = walk(first, bytes)?;
        if len != bytes.len() {
            return Err(DropReason::BadLength);
        }
        Ok(ExtHeaders { first, bytes })
    }

    pub fn iter(&self) -> ExtIter<'a> {
        ExtIter {
            kind: self.first,
            rest: self.bytes,
        }
    }

    /// Type of the first header (meaningless when there is none).
    pub fn first(&self) -> u8 {
        self.first
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes the chain takes on the wire.
    pub fn buffer_len(&self) -> usize {
        self.bytes.len()
    }

    /// The first Fragment header's contents, if any.
    pub fn fragment(&self) -> Option<Fragment> {
        self.iter().find_map(|h| h.fragment())
    }
}

/// The headers of an `ExtHeaders`, in order.
#[derive(Debug, Clone)]
pub struct ExtIter<'a> {
    kind: u8,
    rest: &'a [u8],
}

impl<'a> Iterator for ExtIter<'a> {
    type Item = ExtHeader<'a>;

    fn next(&mut self) -> Option<ExtHeader<'a>> {
        let len = ext_len(self.kind, self.rest)?;
        let header = &self.rest[..len];
        let item = ExtHeader {
            kind: self.kind,
            data: &header[2..],
        };
        self.kind = header[0];
        self.rest = &self.rest[len..];
        Some(item)
    }
}

/// An IPv6 header with its extension headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// The upper-layer protocol, after any extension headers.
    pub next_header: u8,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
    pub ext: ExtHeaders<'a>,
    /// Where the upper-layer packet is in the parsed buffer. Emitting
    /// uses only its length: it always follows the extension headers.
    pub payload: Range<usize>,
}

impl Repr<'static> {
    /// The header we originate: no extension headers, hop limit 64.
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload_len: usize) -> Self {
        Repr {
            src,
            dst,
            next_header,
            hop_limit: DEFAULT_HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
            ext: ExtHeaders::none(),
            payload: HEADER_LEN..HEADER_LEN + payload_len,
        }
    }
}

impl<'a> Repr<'a> {
    pub fn parse<B: AsRef<[u8]> + ?Sized>(buf: &'a B) -> Result<Repr<'a>, DropReason> {
        let b = buf.as_ref();
        match b.first() {
            None => return Err(DropReason::Truncated),
            Some(v) if v >> 4 != 6 => return Err(DropReason::UnsupportedVersion),
            Some(_) => {}
        }
        let p = Packet::new_checked(b)?;
        let end = HEADER_LEN + usize::from(p.payload_len());
        let first = p.next_header();
        let (len, next) = walk(first, &b[HEADER_LEN..end])?;
        let at = HEADER_LEN + len;
        let ext = match len {
            0 => ExtHeaders::none(),
            _ => ExtHeaders {
                first,
                bytes: &b[HEADER_LEN..at],
            },
        };
        Ok(Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: next,
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
            ext,
            payload: at..end,
        })
    }

    pub fn fragment(&self) -> Option<Fragment> {
        self.ext.fragment()
    }

    /// True for a fragment of a larger packet (not an atomic fragment).
    pub fn is_fragment(&self) -> bool {
        self.fragment().is_some_and(|f| !f.is_atomic())
    }

    /// Fixed header and extension headers.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.ext.buffer_len()
    }

    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }

    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len()
    }

    /// Writes the fixed header and the extension headers, chained, into
    /// `buf[..header_len()]`. The upper-layer packet is the caller's.
    pub fn emit<B: AsMut<[u8]> + ?Sized>(&self, buf: &mut B) {
        let buf = buf.as_mut();
        let mut p = Packet::new_unchecked(&mut *buf);
        p.set_version_tc_flow(self.traffic_class, self.flow_label);
        p.set_payload_len((self.ext.buffer_len() + self.payload_len()) as u16);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        if self.ext.is_empty() {
            p.set_next_header(self.next_header);
            return;
        }
        p.set_next_header(self.ext.first());
        let end = HEADER_LEN + self.ext.buffer_len();
        buf[HEADER_LEN..end].copy_from_slice(self.ext.as_bytes());
        // The last header names the upper layer, which may have changed.
        let mut last = HEADER_LEN;
        for h in self.ext.iter() {
            if last + h.wire_len() == end {
                break;
            }
            last += h.wire_len();
        }
        buf[last] = self.next_header;
    }
}

/// Writes a 40-byte header (no extension headers).
pub fn emit_header(
    b: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    payload_len: usize,
    hop_limit: u8,
) {
    let mut r = Repr::new(src, dst, next, payload_len);
    r.hop_limit = hop_limit;
    r.emit(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on a veth between two namespaces, Ethernet header removed.

    /// An MLDv2 report Linux sent as the link came up: fe80::bb:ff:fe00:2
    /// -> ff02::16, hop limit 1, a Hop-by-Hop header (Router Alert, PadN)
    /// before ICMPv6.
    static MLD: [u8; 76] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x01, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xbb, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x02, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x3a, 0x00, 0x05, 0x02, 0x00,
        0x00, 0x01, 0x00, 0x8f, 0x00, 0x71, 0x4a, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00,
        0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00,
        0x02,
    ];

    /// `ping -6 -s 8 fd77::2` from fd77::1: flow label 0x6b0e4, echo
    /// request id 0x5a24 seq 1.
    static PING6: [u8; 56] = [
        0x60, 0x06, 0xb0, 0xe4, 0x00, 0x10, 0x3a, 0x40, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x80, 0x00, 0x1e, 0x8d, 0x5a,
        0x24, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    ];

    /// The last fragment of `ping -6 -s 1600`: a Fragment header (offset
    /// 1448, M clear, ident 0xe250e3a7) before 160 bytes of ICMPv6.
    static FRAG6: [u8; 208] = [
        0x60, 0x06, 0xb0, 0xe4, 0x00, 0xa8, 0x2c, 0x40, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x77, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x3a, 0x00, 0x05, 0xa8, 0xe2,
        0x50, 0xe3, 0xa7, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
        0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
        0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9,
        0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8,
        0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
        0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6,
        0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
        0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14,
        0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
        0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32,
        0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
    ];

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PING6[..]).unwrap();
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0, 0x6b0e4)
        );
        assert_eq!(
            (p.payload_len(), p.next_header(), p.hop_limit()),
            (16, NEXT_ICMPV6, 64)
        );
        assert_eq!((p.src_addr(), p.dst_addr()), (ip("fd77::1"), ip("fd77::2")));
        assert_eq!(p.payload(), &PING6[40..]);

        let m = Packet::new_checked(&MLD[..]).unwrap();
        assert_eq!((m.next_header(), m.hop_limit()), (NEXT_HOP_BY_HOP, 1));
        assert_eq!(m.src_addr(), ip("fe80::bb:ff:fe00:2"));
        assert_eq!(m.dst_addr(), ip("ff02::16"));
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 56];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0, 0x6b0e4);
        p.set_payload_len(16);
        p.set_next_header(NEXT_ICMPV6);
        p.set_hop_limit(64);
        p.set_src_addr(ip("fd77::1"));
        p.set_dst_addr(ip("fd77::2"));
        p.payload_mut().copy_from_slice(&PING6[40..]);
        assert_eq!(b, PING6);
    }

    #[test]
    fn walks_the_hop_by_hop_and_fragment_headers() {
        let r = Repr::parse(&MLD).unwrap();
        assert_eq!(r.next_header, NEXT_ICMPV6);
        assert_eq!(r.payload, 48..76);
        assert_eq!(r.ext.len(), 1);
        let hbh = r.ext.iter().next().unwrap();
        assert_eq!(hbh.kind, NEXT_HOP_BY_HOP);
        assert_eq!(hbh.data, &[5, 2, 0, 0, 1, 0], "Router Alert (MLD), PadN");
        assert!(!r.is_fragment() && r.fragment().is_none());

        let f = Repr::parse(&FRAG6).unwrap();
        assert_eq!((f.next_header, f.payload.clone()), (NEXT_ICMPV6, 48..208));
        let frag = f.fragment().unwrap();
        assert_eq!(
            (frag.offset, frag.more, frag.ident),
            (1448, false, 0xe250_e3a7)
        );
        assert!(f.is_fragment() && !frag.is_atomic());

        let p = Repr::parse(&PING6).unwrap();
        assert!(p.ext.is_empty());
        assert_eq!((p.payload.clone(), p.flow_label), (40..56, 0x6b0e4));
    }

    #[test]
    fn parse_then_emit_is_byte_identical() {
        for fixture in [&MLD[..], &PING6[..], &FRAG6[..]] {
            let r = Repr::parse(fixture).unwrap();
            assert_eq!(r.buffer_len(), fixture.len());
            let mut out = vec![0u8; r.buffer_len()];
            out[r.payload.clone()].copy_from_slice(&fixture[r.payload.clone()]);
            r.emit(&mut out);
            assert_eq!(out, fixture);
        }
        let mut out = [0u8; 40];
        emit_header(&mut out, ip("fd77::1"), ip("fd77::2"), NEXT_ICMPV6, 16, 64);
        assert_eq!(out[8..], PING6[8..40]);
    }

    #[test]
    fn every_prefix_is_refused() {
        for fixture in [&MLD[..], &PING6[..], &FRAG6[..]] {
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
        let mut v4 = PING6;
        v4[0] = 0x45;
        assert_eq!(Repr::parse(&v4), Err(DropReason::UnsupportedVersion));
        // Hop-by-Hop header longer than the payload.
        let mut over = MLD;
        over[41] = 9;
        assert_eq!(Repr::parse(&over), Err(DropReason::Truncated));
        // Router Alert's length running past its header.
        let mut opt = MLD;
        opt[43] = 7;
        assert_eq!(Repr::parse(&opt), Err(DropReason::BadOption));
        // An unknown option that says "discard" (type 0x9e, bits 10).
        let mut discard = MLD;
        discard[42] = 0x9e;
        assert_eq!(Repr::parse(&discard), Err(DropReason::BadOption));
        // The same option with "skip" bits is skipped.
        let mut skip = MLD;
        skip[42] = 0x1e;
        assert!(Repr::parse(&skip).is_ok());
        // Link padding is not payload.
        let mut padded = PING6.to_vec();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(Repr::parse(&padded).unwrap().payload, 40..56);
    }

    /// A packet with `headers` (type, length in bytes) chained before
    /// `payload_len` bytes of UDP.
    fn chain(headers: &[(u8, usize)], payload_len: usize) -> Vec<u8> {
        let ext: usize = headers.iter().map(|h| h.1).sum();
        let mut b = vec![0u8; HEADER_LEN + ext + payload_len];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&((ext + payload_len) as u16).to_be_bytes());
        b[6] = headers.first().map_or(NEXT_UDP, |h| h.0);
        let mut at = HEADER_LEN;
        for (i, &(_, len)) in headers.iter().enumerate() {
            b[at] = headers.get(i + 1).map_or(NEXT_UDP, |h| h.0);
            b[at + 1] = (len / 8 - 1) as u8;
            at += len;
        }
        b
    }

    #[test]
    fn extension_header_chains() {
        // Destination Options, Routing (segments left 0), Fragment: walked.
        let ok = chain(
            &[(NEXT_DEST_OPTS, 16), (NEXT_ROUTING, 8), (NEXT_FRAGMENT, 8)],
            8,
        );
        let r = Repr::parse(&ok).unwrap();
        assert_eq!(
            (r.next_header, r.payload.clone(), r.ext.len()),
            (NEXT_UDP, 72..80, 3)
        );
        assert!(r.fragment().unwrap().is_atomic() && !r.is_fragment());
        // Eight headers are walked, a ninth is one too many.
        let eight = chain(&[(NEXT_DEST_OPTS, 8); MAX_EXT], 0);
        assert_eq!(Repr::parse(&eight).unwrap().ext.len(), MAX_EXT);
        let nine = chain(&[(NEXT_DEST_OPTS, 8); MAX_EXT + 1], 0);
        assert_eq!(Repr::parse(&nine), Err(DropReason::ExtHeaderChain));
        // Hop-by-Hop only comes first.
        let late = chain(&[(NEXT_DEST_OPTS, 8), (NEXT_HOP_BY_HOP, 8)], 0);
        assert_eq!(Repr::parse(&late), Err(DropReason::ExtHeaderChain));
        // A Routing header with segments left asks us to route.
        let mut route = chain(&[(NEXT_ROUTING, 24)], 0);
        route[43] = 1;
        assert_eq!(Repr::parse(&route), Err(DropReason::Unsupported));
        // No Next Header ends the walk: nothing follows.
        let mut none = chain(&[(NEXT_DEST_OPTS, 8)], 0);
        none[40] = NEXT_NONE;
        assert_eq!(Repr::parse(&none).unwrap().next_header, NEXT_NONE);
    }

    #[test]
    fn ext_headers_are_checked_when_made() {
        let one = [NEXT_UDP, 0, 1, 4, 0, 0, 0, 0];
        let e = ExtHeaders::new(NEXT_DEST_OPTS, &one).unwrap();
        assert_eq!((e.len(), e.buffer_len(), e.first()), (1, 8, NEXT_DEST_OPTS));
        assert_eq!(ExtHeaders::new(NEXT_TCP, &one), Err(DropReason::BadLength));
        assert_eq!(
            ExtHeaders::new(NEXT_DEST_OPTS, &one[..5]),
            Err(DropReason::Truncated)
        );
        let mut long = one.to_vec();
        long.push(0);
        assert_eq!(
            ExtHeaders::new(NEXT_DEST_OPTS, &long),
            Err(DropReason::BadLength)
        );
        let mut hbh_late = one.to_vec();
        hbh_late[0] = NEXT_HOP_BY_HOP;
        hbh_late.extend_from_slice(&one);
        assert_eq!(
            ExtHeaders::new(NEXT_DEST_OPTS, &hbh_late),
            Err(DropReason::ExtHeaderChain)
        );
        assert!(ExtHeaders::new(NEXT_DEST_OPTS, &[]).unwrap().is_empty());
    }

    /// Extension headers that parse: Hop-by-Hop first if at all, options
    /// that may be skipped, no segments left, any fragment fields.
    fn ext_chain() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
        let header = prop_oneof![
            (0u8..0x40, 0usize..3).prop_map(|(kind, units)| {
                // One skippable option, then PadN to the end.
                let mut d = vec![kind.max(2), 0];
                let total = 6 + 8 * units;
                let room = total - 2;
                let len = (room / 2) as u8;
                d[1] = len;
                d.resize(2 + usize::from(len), 0xab);
                let pad = total - d.len();
                match pad {
                    0 => {}
                    1 => d.push(0),
                    n => {
                        d.push(1);
                        d.push((n - 2) as u8);
                        d.resize(total, 0);
                    }
                }
                (NEXT_DEST_OPTS, d)
            }),
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 4..5)).prop_map(|(t, rest)| {
                let mut d = vec![t, 0];
                d.extend_from_slice(&rest);
                (NEXT_ROUTING, d)
            }),
            any::<[u8; 6]>().prop_map(|d| (NEXT_FRAGMENT, d.to_vec())),
        ];
        (any::<bool>(), proptest::collection::vec(header, 0..MAX_EXT)).prop_map(|(hbh, mut v)| {
            if hbh && !v.is_empty() && v[0].0 == NEXT_DEST_OPTS {
                v[0].0 = NEXT_HOP_BY_HOP;
            }
            v
        })
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), next_header in any::<u8>(),
            hop_limit in any::<u8>(), traffic_class in any::<u8>(), flow_label in 0u32..0x10_0000,
            headers in ext_chain(), payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            // The upper layer must not look like an extension header.
            prop_assume!(!matches!(next_header, 0 | 43 | 44 | 60));
            let mut bytes = Vec::new();
            for (i, (_, data)) in headers.iter().enumerate() {
                bytes.push(headers.get(i + 1).map_or(next_header, |h| h.0));
                let units = (2 + data.len()) / 8 - 1;
                bytes.push(if headers[i].0 == NEXT_FRAGMENT { 0 } else { units as u8 });
                bytes.extend_from_slice(data);
            }
            let first = headers.first().map_or(0, |h| h.0);
            let ext = ExtHeaders::new(first, &bytes).unwrap();
            prop_assert_eq!(ext.len(), headers.len());
            let start = HEADER_LEN + ext.buffer_len();
            let r = Repr {
                src: src.into(), dst: dst.into(), next_header, hop_limit, traffic_class, flow_label,
                ext, payload: start..start + payload.len(),
            };
            let mut b = vec![0u8; r.buffer_len()];
            b[start..].copy_from_slice(&payload);
            r.emit(&mut b);
            let back = Repr::parse(&b).unwrap();
            prop_assert_eq!(&back, &r);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = p.payload();
            }
            let _ = Repr::parse(&bytes);
            let mut b = bytes.clone();
            if b.len() >= 6 {
                // Plausible headers get the walk exercised.
                b[0] = 0x60;
                let n = (b.len().saturating_sub(HEADER_LEN)) as u16;
                b[4..6].copy_from_slice(&n.to_be_bytes());
                let _ = Repr::parse(&b);
            }
        }
    }
}
