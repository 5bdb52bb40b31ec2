//! ARP (RFC 826) for IPv4 over Ethernet, the only kind on our links.
//!
//! The view exposes the fixed 28-byte Ethernet/IPv4 layout; `new_checked`
//! requires all of it, so a packet announcing other address sizes is
//! still read safely and then refused by `Repr::parse` (`UnsupportedArp`).
//! Trailing bytes (link padding) are ignored.

use std::net::Ipv4Addr;

use super::ethernet::{MacAddr, ETHERTYPE_IPV4};
use super::{read_u16, write_u16, DropReason};

pub const HTYPE_ETHERNET: u16 = 1;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

mod field {
    use std::ops::Range;

    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const LEN: usize = field::TPA.end;

fn ip_at(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn mac_at(b: &[u8]) -> MacAddr {
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// A view of an ARP packet, laid out for Ethernet and IPv4.
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
        if self.buffer.as_ref().len() < LEN {
            return Err(DropReason::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn hardware_type(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::HTYPE])
    }

    pub fn protocol_type(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::PTYPE])
    }

    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    pub fn operation(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::OPER])
    }

    pub fn sender_hardware_addr(&self) -> MacAddr {
        mac_at(&self.buffer.as_ref()[field::SHA])
    }

    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        ip_at(&self.buffer.as_ref()[field::SPA])
    }

    pub fn target_hardware_addr(&self) -> MacAddr {
        mac_at(&self.buffer.as_ref()[field::THA])
    }

    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        ip_at(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_hardware_type(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::HTYPE], v);
    }

    pub fn set_protocol_type(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::PTYPE], v);
    }

    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    pub fn set_operation(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::OPER], v);
    }

    pub fn set_sender_hardware_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac);
    }

    pub fn set_sender_protocol_addr(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    pub fn set_target_hardware_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac);
    }

    pub fn set_target_protocol_addr(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
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

/// An Ethernet/IPv4 ARP request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// `OP_REQUEST` or `OP_REPLY`.
    pub op: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl Repr {
    pub fn parse<B: AsRef<[u8]> + ?Sized>(buf: &B) -> Result<Repr, DropReason> {
        let p = Packet::new_checked(buf.as_ref())?;
        if p.hardware_type() != HTYPE_ETHERNET
            || p.protocol_type() != ETHERTYPE_IPV4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(DropReason::UnsupportedArp);
        }
        // RARP and InARP are other protocols that share the format.
        let op = p.operation();
        if op != OP_REQUEST && op != OP_REPLY {
            return Err(DropReason::UnsupportedArp);
        }
        Ok(Repr {
            op,
            sender_mac: p.sender_hardware_addr(),
            sender_ip: p.sender_protocol_addr(),
            target_mac: p.target_hardware_addr(),
            target_ip: p.target_protocol_addr(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        LEN
    }

    /// Writes the packet into `buf[..28]`.
    pub fn emit<B: AsMut<[u8]> + ?Sized>(&self, buf: &mut B) {
        let mut p = Packet::new_unchecked(buf.as_mut());
        p.set_hardware_type(HTYPE_ETHERNET);
        p.set_protocol_type(ETHERTYPE_IPV4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(self.op);
        p.set_sender_hardware_addr(self.sender_mac);
        p.set_sender_protocol_addr(self.sender_ip);
        p.set_target_hardware_addr(self.target_mac);
        p.set_target_protocol_addr(self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// "who-has 10.77.0.2 tell 10.77.0.1" as Linux sends it (captured on
    /// a veth; the Ethernet header is in ethernet.rs's fixture).
    static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x0a,
        0x4d, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x4d, 0x00, 0x02,
    ];

    /// "10.77.0.2 is-at 02:bb:00:00:00:02", the answer to `REQUEST`.
    static REPLY: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0xbb, 0x00, 0x00, 0x00, 0x02, 0x0a,
        0x4d, 0x00, 0x02, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x4d, 0x00, 0x01,
    ];

    const A: MacAddr = [0x02, 0xaa, 0, 0, 0, 1];
    const B: MacAddr = [0x02, 0xbb, 0, 0, 0, 2];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!((p.hardware_type(), p.protocol_type()), (1, 0x0800));
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sender_hardware_addr(), A);
        assert_eq!(p.sender_protocol_addr(), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(p.target_hardware_addr(), [0; 6]);
        assert_eq!(p.target_protocol_addr(), Ipv4Addr::new(10, 77, 0, 2));
        let r = Packet::new_checked(&REPLY[..]).unwrap();
        assert_eq!(r.operation(), OP_REPLY);
        assert_eq!((r.sender_hardware_addr(), r.target_hardware_addr()), (B, A));
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; LEN];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_hardware_type(1);
        p.set_protocol_type(0x0800);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(OP_REPLY);
        p.set_sender_hardware_addr(B);
        p.set_sender_protocol_addr(Ipv4Addr::new(10, 77, 0, 2));
        p.set_target_hardware_addr(A);
        p.set_target_protocol_addr(Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(b, REPLY);
    }

    #[test]
    fn parse_then_emit_is_byte_identical() {
        for fixture in [REQUEST, REPLY] {
            let r = Repr::parse(&fixture).unwrap();
            let mut out = [0u8; LEN];
            r.emit(&mut out);
            assert_eq!(out, fixture);
            // Through a view, as the engine holds it.
            let p = Packet::new_checked(&fixture[..]).unwrap();
            assert_eq!(Repr::parse(&p), Ok(r));
        }
        // Link padding after the packet is not ours to read.
        let mut padded = REQUEST.to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(Repr::parse(&padded), Repr::parse(&REQUEST));
    }

    #[test]
    fn truncated_and_foreign_packets() {
        for n in 0..LEN {
            assert_eq!(
                Repr::parse(&REQUEST[..n]),
                Err(DropReason::Truncated),
                "{n}"
            );
        }
        for (at, v) in [(1, 6), (3, 0xdd), (4, 8), (5, 16), (7, 3), (7, 8)] {
            let mut other = REQUEST;
            other[at] = v;
            assert_eq!(
                Repr::parse(&other),
                Err(DropReason::UnsupportedArp),
                "byte {at}"
            );
        }
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(op in 1u16..=2, sender_mac in any::<MacAddr>(), sender_ip in any::<[u8; 4]>(),
                                 target_mac in any::<MacAddr>(), target_ip in any::<[u8; 4]>()) {
            let r = Repr { op, sender_mac, sender_ip: sender_ip.into(), target_mac, target_ip: target_ip.into() };
            let mut b = [0u8; LEN];
            r.emit(&mut b);
            prop_assert_eq!(Repr::parse(&b).unwrap(), r);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Repr::parse(&bytes);
        }
    }
}
