//! IPv4 headers (RFC 791). Options are accepted and skipped; fragments
//! are refused (`DropReason::Fragment`): we gave the guest the MTU, and
//! reassembly is not worth a buffer per flow.

use std::net::Ipv4Addr;
use std::ops::Range;

use super::checksum;
use super::{be16, DropReason};

pub const HEADER_LEN: usize = 20;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    /// Where the payload is in the parsed buffer (after options, up to
    /// the total length: link padding is excluded).
    pub payload: Range<usize>,
}

impl Repr {
    pub fn parse(b: &[u8]) -> Result<Self, DropReason> {
        if b.len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(DropReason::Unsupported);
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        let total = usize::from(be16(b, 2));
        if ihl < HEADER_LEN || total < ihl {
            return Err(DropReason::Malformed);
        }
        if b.len() < total {
            return Err(DropReason::Truncated);
        }
        if checksum::checksum(&b[..ihl]) != 0 {
            return Err(DropReason::BadChecksum);
        }
        let frag = be16(b, 6);
        if frag & FLAG_MF != 0 || frag & OFFSET_MASK != 0 {
            return Err(DropReason::Fragment);
        }
        Ok(Repr {
            src: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
            dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
            protocol: b[9],
            ttl: b[8],
            payload: ihl..total,
        })
    }
}

/// Writes a 20-byte header (no options, DF set) for `payload_len` bytes
/// of payload, checksum included.
pub fn emit_header(
    b: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
    id: u16,
) {
    let total = (HEADER_LEN + payload_len) as u16;
    b[0] = 0x45;
    b[1] = 0;
    b[2..4].copy_from_slice(&total.to_be_bytes());
    b[4..6].copy_from_slice(&id.to_be_bytes());
    b[6..8].copy_from_slice(&FLAG_DF.to_be_bytes());
    b[8] = 64;
    b[9] = protocol;
    b[10..12].copy_from_slice(&[0, 0]);
    b[12..16].copy_from_slice(&src.octets());
    b[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&b[..HEADER_LEN]);
    b[10..12].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// IPv4 header + ICMP echo request 192.0.2.2 -> 192.0.2.1 (id 0x0a0b,
    /// seq 1, 8 bytes of data), as Linux's ping sends it.
    pub const PING: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x3c, 0x1d, 0x40, 0x00, 0x40, 0x01, 0x7a, 0xb8, 0xc0, 0x00, 0x02,
        0x02, 0xc0, 0x00, 0x02, 0x01, // IPv4
        0x08, 0x00, 0x5c, 0x5e, 0x0a, 0x0b, 0x00, 0x01, // ICMP echo
        0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    ];

    #[test]
    fn parses_a_real_header() {
        let r = Repr::parse(&PING).unwrap();
        assert_eq!(r.src, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(r.dst, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            (r.protocol, r.ttl, r.payload.clone()),
            (PROTO_ICMP, 64, 20..36)
        );
    }

    #[test]
    fn emit_reproduces_it() {
        let mut b = [0u8; 20];
        emit_header(
            &mut b,
            Ipv4Addr::new(192, 0, 2, 2),
            Ipv4Addr::new(192, 0, 2, 1),
            PROTO_ICMP,
            16,
            0x3c1d,
        );
        assert_eq!(b, PING[..20]);
    }

    #[test]
    fn refuses_what_cannot_be_right() {
        for n in 0..PING.len() {
            assert!(Repr::parse(&PING[..n]).is_err(), "prefix {n}");
        }
        let mut bad = PING;
        bad[11] ^= 1;
        assert_eq!(Repr::parse(&bad), Err(DropReason::BadChecksum));
        let mut frag = PING;
        frag[6] = 0x20; // MF
        frag[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&frag[..20]);
        frag[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(Repr::parse(&frag), Err(DropReason::Fragment));
        let mut v6 = PING;
        v6[0] = 0x65;
        assert_eq!(Repr::parse(&v6), Err(DropReason::Unsupported));
        let mut short_ihl = PING;
        short_ihl[0] = 0x44;
        assert_eq!(Repr::parse(&short_ihl), Err(DropReason::Malformed));
        // Link padding after the total length is not payload.
        let mut padded = PING.to_vec();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(Repr::parse(&padded).unwrap().payload, 20..36);
    }
}
