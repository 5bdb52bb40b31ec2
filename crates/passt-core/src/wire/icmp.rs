//! ICMP (RFC 792) and ICMPv6 (RFC 4443) message headers: type, code,
//! checksum, and for echo messages the identifier and sequence number.
//! ICMPv4's checksum covers the message; ICMPv6's adds the pseudo-header.

use std::net::IpAddr;

use super::checksum;
use super::{be16, DropReason};

pub const HEADER_LEN: usize = 8;
pub const V4_ECHO_REPLY: u8 = 0;
pub const V4_DEST_UNREACHABLE: u8 = 3;
pub const V4_ECHO_REQUEST: u8 = 8;
pub const V6_DEST_UNREACHABLE: u8 = 1;
pub const V6_ECHO_REQUEST: u8 = 128;
pub const V6_ECHO_REPLY: u8 = 129;
const PROTO_ICMPV6: u8 = 58;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub kind: u8,
    pub code: u8,
    /// Identifier and sequence number (meaningful for echo messages).
    pub id: u16,
    pub seq: u16,
}

impl Repr {
    /// Parses `msg` (the whole ICMP message) and verifies its checksum;
    /// for ICMPv6 `addrs` gives the IPv6 source and destination.
    pub fn parse(msg: &[u8], addrs: Option<(IpAddr, IpAddr)>) -> Result<Self, DropReason> {
        if msg.len() < 4 {
            return Err(DropReason::Truncated);
        }
        let ok = match addrs {
            None => checksum::checksum(msg) == 0,
            Some((s, d)) => checksum::upper_layer(s, d, PROTO_ICMPV6, msg) == 0,
        };
        if !ok {
            return Err(DropReason::BadChecksum);
        }
        let (id, seq) = if msg.len() >= HEADER_LEN {
            (be16(msg, 4), be16(msg, 6))
        } else {
            (0, 0)
        };
        Ok(Repr {
            kind: msg[0],
            code: msg[1],
            id,
            seq,
        })
    }
}

/// Fills in the checksum of ICMPv4 message `msg` (field zeroed first).
pub fn fill_checksum_v4(msg: &mut [u8]) {
    msg[2..4].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
}

/// Fills in the checksum of ICMPv6 message `msg` from `src` to `dst`.
pub fn fill_checksum_v6(msg: &mut [u8], src: IpAddr, dst: IpAddr) {
    msg[2..4].copy_from_slice(&[0, 0]);
    let c = checksum::upper_layer(src, dst, PROTO_ICMPV6, msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4;

    #[test]
    fn echo_request_from_a_real_ping() {
        let msg = &ipv4::tests::PING[20..];
        let r = Repr::parse(msg, None).unwrap();
        assert_eq!(
            (r.kind, r.code, r.id, r.seq),
            (V4_ECHO_REQUEST, 0, 0x0a0b, 1)
        );
        let mut copy = msg.to_vec();
        fill_checksum_v4(&mut copy);
        assert_eq!(copy, msg, "our checksum equals the sender's");
        copy[9] ^= 0xff;
        assert_eq!(Repr::parse(&copy, None), Err(DropReason::BadChecksum));
        assert_eq!(Repr::parse(&msg[..3], None), Err(DropReason::Truncated));
    }

    #[test]
    fn icmpv6_checksum_covers_the_pseudo_header() {
        let (s, d): (IpAddr, IpAddr) = ("fd00::2".parse().unwrap(), "fd00::1".parse().unwrap());
        let mut msg = vec![V6_ECHO_REQUEST, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3];
        fill_checksum_v6(&mut msg, s, d);
        assert_eq!(Repr::parse(&msg, Some((s, d))).unwrap().id, 7);
        assert_eq!(
            Repr::parse(&msg, Some((d, s))).err(),
            None,
            "the sum is symmetric"
        );
        let other: IpAddr = "fd00::3".parse().unwrap();
        assert_eq!(
            Repr::parse(&msg, Some((s, other))),
            Err(DropReason::BadChecksum)
        );
    }
}
