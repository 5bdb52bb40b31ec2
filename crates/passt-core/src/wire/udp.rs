//! UDP datagrams (RFC 768). Over IPv4 a zero checksum means "none"; over
//! IPv6 it is mandatory (RFC 8200 §8.1), and zero is refused.

use std::net::IpAddr;

use super::checksum;
use super::{be16, DropReason};

pub const HEADER_LEN: usize = 8;
const PROTO_UDP: u8 = 17;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses the datagram `b` sent from `src` to `dst`.
    pub fn parse(b: &'a [u8], src: IpAddr, dst: IpAddr) -> Result<Self, DropReason> {
        if b.len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let len = usize::from(be16(b, 4));
        if len < HEADER_LEN {
            return Err(DropReason::Malformed);
        }
        if len > b.len() {
            return Err(DropReason::Truncated);
        }
        let check = be16(b, 6);
        let verify = check != 0 || src.is_ipv6();
        if verify && checksum::upper_layer(src, dst, PROTO_UDP, &b[..len]) != 0 {
            return Err(DropReason::BadChecksum);
        }
        Ok(Repr {
            src_port: be16(b, 0),
            dst_port: be16(b, 2),
            payload: &b[HEADER_LEN..len],
        })
    }
}

/// Writes the UDP header in front of the `payload_len` bytes already at
/// `b[8..]`, checksum included.
pub fn emit(
    b: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    payload_len: usize,
) {
    let len = HEADER_LEN + payload_len;
    b[0..2].copy_from_slice(&src_port.to_be_bytes());
    b[2..4].copy_from_slice(&dst_port.to_be_bytes());
    b[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    b[6..8].copy_from_slice(&[0, 0]);
    let mut c = checksum::upper_layer(src, dst, PROTO_UDP, &b[..len]);
    if c == 0 {
        c = 0xffff; // zero means "no checksum"; its complement is the same sum
    }
    b[6..8].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn emit_parse_round_trip_both_families() {
        for (s, d) in [("192.0.2.2", "192.0.2.1"), ("fd00::2", "fd00::1")] {
            let mut b = vec![0u8; 8];
            b.extend_from_slice(b"hello");
            emit(&mut b, ip(s), ip(d), 4000, 53, 5);
            let r = Repr::parse(&b, ip(s), ip(d)).unwrap();
            assert_eq!(
                (r.src_port, r.dst_port, r.payload),
                (4000, 53, &b"hello"[..])
            );
            b[9] ^= 1;
            assert_eq!(Repr::parse(&b, ip(s), ip(d)), Err(DropReason::BadChecksum));
        }
    }

    #[test]
    fn zero_checksum_only_over_ipv4() {
        let b = [0x0f, 0xa0, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];
        assert!(Repr::parse(&b, ip("192.0.2.2"), ip("192.0.2.1")).is_ok());
        assert_eq!(
            Repr::parse(&b, ip("fd00::2"), ip("fd00::1")),
            Err(DropReason::BadChecksum)
        );
        let mut short = b;
        short[5] = 7;
        assert_eq!(
            Repr::parse(&short, ip("192.0.2.2"), ip("192.0.2.1")),
            Err(DropReason::Malformed)
        );
        for n in 0..8 {
            assert!(Repr::parse(&b[..n], ip("192.0.2.2"), ip("192.0.2.1")).is_err());
        }
    }
}
