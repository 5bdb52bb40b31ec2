//! IPv6 headers (RFC 8200) and the walk over extension headers to the
//! upper-layer protocol. Hop-by-Hop, Routing and Destination Options are
//! skipped; a Fragment header refuses the packet (`Fragment`). The walk is
//! bounded: a chain longer than `MAX_EXT` headers is `Malformed`.

use std::net::Ipv6Addr;
use std::ops::Range;

use super::{be16, DropReason};

pub const HEADER_LEN: usize = 40;
pub const NEXT_HOP_BY_HOP: u8 = 0;
pub const NEXT_TCP: u8 = 6;
pub const NEXT_UDP: u8 = 17;
pub const NEXT_ROUTING: u8 = 43;
pub const NEXT_FRAGMENT: u8 = 44;
pub const NEXT_ICMPV6: u8 = 58;
pub const NEXT_NONE: u8 = 59;
pub const NEXT_DEST_OPTS: u8 = 60;
const MAX_EXT: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// The upper-layer protocol after any extension headers.
    pub next_header: u8,
    pub hop_limit: u8,
    /// The upper-layer packet in the parsed buffer.
    pub payload: Range<usize>,
}

fn addr(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

impl Repr {
    pub fn parse(b: &[u8]) -> Result<Self, DropReason> {
        if b.len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(DropReason::Unsupported);
        }
        let end = HEADER_LEN + usize::from(be16(b, 4));
        if b.len() < end {
            return Err(DropReason::Truncated);
        }
        let mut next = b[6];
        let mut at = HEADER_LEN;
        for _ in 0..=MAX_EXT {
            match next {
                NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_DEST_OPTS => {
                    if at + 8 > end {
                        return Err(DropReason::Truncated);
                    }
                    let len = (usize::from(b[at + 1]) + 1) * 8;
                    next = b[at];
                    at += len;
                    if at > end {
                        return Err(DropReason::Truncated);
                    }
                }
                NEXT_FRAGMENT => return Err(DropReason::Fragment),
                _ => {
                    return Ok(Repr {
                        src: addr(b, 8),
                        dst: addr(b, 24),
                        next_header: next,
                        hop_limit: b[7],
                        payload: at..end,
                    })
                }
            }
        }
        Err(DropReason::Malformed)
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
    b[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    b[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
    b[6] = next;
    b[7] = hop_limit;
    b[8..24].copy_from_slice(&src.octets());
    b[24..40].copy_from_slice(&dst.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An MLDv2 report as Linux sends when an interface comes up:
    /// :: -> ff02::16 with a Hop-by-Hop header (Router Alert) before ICMPv6.
    const MLD: [u8; 76] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x01, // len 36, next HBH, hop limit 1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // src ::
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16, // dst ff02::16
        0x3a, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01,
        0x00, // HBH: next ICMPv6, router alert, PadN
        0x8f, 0x00, 0x6d, 0x0d, 0x00, 0x00, 0x00, 0x01, // MLDv2 report, 1 record
        0x04, 0x00, 0x00, 0x00, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x12, 0x34,
        0x56,
    ];

    #[test]
    fn walks_the_hop_by_hop_header() {
        let r = Repr::parse(&MLD).unwrap();
        assert_eq!(r.next_header, NEXT_ICMPV6);
        assert_eq!(r.payload, 48..76);
        assert_eq!(r.dst, "ff02::16".parse::<Ipv6Addr>().unwrap());
        assert_eq!(r.hop_limit, 1);
    }

    #[test]
    fn emit_then_parse() {
        let mut b = [0u8; 48];
        let (s, d): (Ipv6Addr, Ipv6Addr) = ("fe80::1".parse().unwrap(), "fd00::2".parse().unwrap());
        emit_header(&mut b, s, d, NEXT_UDP, 8, 255);
        let r = Repr::parse(&b).unwrap();
        assert_eq!(
            (r.src, r.dst, r.next_header, r.payload),
            (s, d, NEXT_UDP, 40..48)
        );
    }

    #[test]
    fn refuses_fragments_loops_and_truncation() {
        for n in 0..MLD.len() {
            assert!(Repr::parse(&MLD[..n]).is_err(), "prefix {n}");
        }
        let mut frag = MLD;
        frag[6] = NEXT_FRAGMENT;
        assert_eq!(Repr::parse(&frag), Err(DropReason::Fragment));
        // A chain of destination-options headers longer than we walk.
        let mut chain = vec![0x60, 0, 0, 0, 0, 80, NEXT_DEST_OPTS, 64];
        chain.extend_from_slice(&[0; 32]);
        for _ in 0..10 {
            chain.extend_from_slice(&[NEXT_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(Repr::parse(&chain), Err(DropReason::Malformed));
        let mut over = MLD;
        over[41] = 9; // HBH length beyond the packet
        assert_eq!(Repr::parse(&over), Err(DropReason::Truncated));
    }
}
