//! A family-independent summary of an ICMP or ICMPv6 message, for the
//! dispatcher: type, code, checksum verified, and for echo messages the
//! identifier and sequence number. `icmpv4` and `icmpv6` own the formats
//! and their typed `Repr`s; this is what `frame::L4::Icmp` carries, so
//! that one match arm serves both families.

use std::net::IpAddr;

use super::checksum;
use super::{icmpv4, icmpv6, read_u16, DropReason};

pub const HEADER_LEN: usize = 8;
pub const V4_ECHO_REPLY: u8 = icmpv4::ECHO_REPLY;
pub const V4_DEST_UNREACHABLE: u8 = icmpv4::DST_UNREACHABLE;
pub const V4_ECHO_REQUEST: u8 = icmpv4::ECHO_REQUEST;
pub const V6_DEST_UNREACHABLE: u8 = icmpv6::DST_UNREACHABLE;
pub const V6_ECHO_REQUEST: u8 = icmpv6::ECHO_REQUEST;
pub const V6_ECHO_REPLY: u8 = icmpv6::ECHO_REPLY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub kind: u8,
    pub code: u8,
    /// Identifier and sequence number: bytes 4..8, meaningful for echo
    /// messages.
    pub id: u16,
    pub seq: u16,
}

impl Repr {
    /// Parses `msg` (the whole message) and verifies its checksum: ICMPv4
    /// when `addrs` is `None`, ICMPv6 from `addrs.0` to `addrs.1`
    /// otherwise (its checksum covers the pseudo-header).
    pub fn parse(msg: &[u8], addrs: Option<(IpAddr, IpAddr)>) -> Result<Self, DropReason> {
        if msg.len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let ok = match addrs {
            None => checksum::checksum(msg) == 0,
            Some((s, d)) => checksum::upper_layer(s, d, icmpv6::PROTO_ICMPV6, msg) == 0,
        };
        if !ok {
            return Err(DropReason::BadChecksum);
        }
        Ok(Repr {
            kind: msg[0],
            code: msg[1],
            id: read_u16(&msg[4..6]),
            seq: read_u16(&msg[6..8]),
        })
    }
}

/// Fills in the checksum of the ICMPv4 message `msg` (all of it).
pub fn fill_checksum_v4(msg: &mut [u8]) {
    icmpv4::Packet::new_unchecked(msg).fill_checksum();
}

/// Fills in the checksum of the ICMPv6 message `msg` from `src` to `dst`.
/// Addresses of the wrong family are taken as IPv4-mapped, as the
/// checksum module does, rather than panicking.
pub fn fill_checksum_v6(msg: &mut [u8], src: IpAddr, dst: IpAddr) {
    msg[2..4].copy_from_slice(&[0, 0]);
    let c = checksum::upper_layer(src, dst, icmpv6::PROTO_ICMPV6, msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ping -s 8` 10.77.0.1 -> 10.77.0.2, captured on a veth.
    static ECHO: [u8; 16] = [
        0x08, 0x00, 0x91, 0xcc, 0x5a, 0x22, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];

    #[test]
    fn echo_request_from_a_real_ping() {
        let r = Repr::parse(&ECHO, None).unwrap();
        assert_eq!(
            (r.kind, r.code, r.id, r.seq),
            (V4_ECHO_REQUEST, 0, 0x5a22, 1)
        );
        let mut copy = ECHO.to_vec();
        fill_checksum_v4(&mut copy);
        assert_eq!(copy, ECHO, "our checksum equals the sender's");
        copy[9] ^= 0xff;
        assert_eq!(Repr::parse(&copy, None), Err(DropReason::BadChecksum));
        for n in 0..HEADER_LEN {
            assert_eq!(Repr::parse(&ECHO[..n], None), Err(DropReason::Truncated));
        }
    }

    #[test]
    fn icmpv6_checksum_covers_the_pseudo_header() {
        let (s, d): (IpAddr, IpAddr) = ("fd00::2".parse().unwrap(), "fd00::1".parse().unwrap());
        let mut msg = vec![V6_ECHO_REQUEST, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3];
        fill_checksum_v6(&mut msg, s, d);
        assert_eq!(Repr::parse(&msg, Some((s, d))).unwrap().id, 7);
        assert!(
            Repr::parse(&msg, Some((d, s))).is_ok(),
            "the sum is symmetric"
        );
        let other: IpAddr = "fd00::3".parse().unwrap();
        assert_eq!(
            Repr::parse(&msg, Some((s, other))),
            Err(DropReason::BadChecksum)
        );
    }
}
