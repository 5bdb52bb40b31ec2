//! ARP for IPv4 over Ethernet (RFC 826): the only kind there is on our
//! links.

use std::net::Ipv4Addr;

use super::ethernet::MacAddr;
use super::{be16, DropReason};

pub const LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub op: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl Repr {
    pub fn parse(b: &[u8]) -> Result<Self, DropReason> {
        if b.len() < LEN {
            return Err(DropReason::Truncated);
        }
        // Ethernet (1), IPv4 (0x0800), 6-byte and 4-byte addresses.
        if be16(b, 0) != 1 || be16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(DropReason::Unsupported);
        }
        let mac = |at: usize| -> MacAddr {
            [b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]]
        };
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        Ok(Repr {
            op: be16(b, 6),
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    pub fn emit(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 0]);
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "who-has 192.0.2.1 tell 192.0.2.2" from 52:54:00:12:34:56, as the
    /// Linux kernel sends it (captured on a veth).
    pub const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0xc0,
        0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x01,
    ];

    #[test]
    fn round_trip() {
        let r = Repr::parse(&REQUEST).unwrap();
        assert_eq!(r.op, OP_REQUEST);
        assert_eq!(r.sender_ip, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(r.target_ip, Ipv4Addr::new(192, 0, 2, 1));
        let mut out = [0u8; LEN];
        r.emit(&mut out);
        assert_eq!(out, REQUEST);
        for n in 0..LEN {
            assert_eq!(Repr::parse(&REQUEST[..n]), Err(DropReason::Truncated));
        }
        let mut other = REQUEST;
        other[3] = 0xdd;
        assert_eq!(Repr::parse(&other), Err(DropReason::Unsupported));
    }
}
