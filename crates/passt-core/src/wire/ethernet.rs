//! Ethernet II frames, as qemu's socket and a tap deliver them: no
//! preamble, no FCS, no minimum length (short frames are not padded on
//! those links, and padding, when present, is the IP layer's to ignore).
//!
//! Owns the 14-byte header only. An 802.1Q or 802.1ad tag is just an
//! EtherType we do not handle: the guest's link is ours and untagged.
//! A length field (EtherType < 0x0600, 802.3) is reported as found.

use super::{read_u16, write_u16, DropReason};

/// A MAC address. A plain array rather than a newtype: the services and
/// the L2 dispatcher already pass `[u8; 6]` around; the helpers below
/// give it meaning.
pub type MacAddr = [u8; 6];

pub const BROADCAST: MacAddr = [0xff; 6];

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;

mod field {
    use std::ops::Range;

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: usize = 14;
}

pub const HEADER_LEN: usize = field::PAYLOAD;

/// True for group addresses (multicast, broadcast): the I/G bit.
pub fn is_multicast(mac: MacAddr) -> bool {
    mac[0] & 1 == 1
}

pub fn is_broadcast(mac: MacAddr) -> bool {
    mac == BROADCAST
}

/// True for addresses a single station may have as its own.
pub fn is_unicast(mac: MacAddr) -> bool {
    !is_multicast(mac)
}

/// `aa:bb:cc:dd:ee:ff`, for logs and reports.
pub fn format_mac(mac: MacAddr) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(17);
    for (i, b) in mac.iter().enumerate() {
        let sep = if i == 0 { "" } else { ":" };
        let _ = write!(s, "{sep}{b:02x}");
    }
    s
}

fn mac_at(b: &[u8]) -> MacAddr {
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// A view of an Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// The view, if the buffer holds a whole header.
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

    pub fn dst_addr(&self) -> MacAddr {
        mac_at(&self.buffer.as_ref()[field::DESTINATION])
    }

    pub fn src_addr(&self) -> MacAddr {
        mac_at(&self.buffer.as_ref()[field::SOURCE])
    }

    pub fn ethertype(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ETHERTYPE])
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_dst_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&mac);
    }

    pub fn set_src_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&mac);
    }

    pub fn set_ethertype(&mut self, ethertype: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ETHERTYPE], ethertype);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
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

/// An Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
}

impl Repr {
    /// Every header is a valid one: only its length can be wrong.
    pub fn parse<B: AsRef<[u8]> + ?Sized>(buf: &B) -> Result<Repr, DropReason> {
        let p = Packet::new_checked(buf.as_ref())?;
        Ok(Repr {
            dst: p.dst_addr(),
            src: p.src_addr(),
            ethertype: p.ethertype(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into `buf[..14]`; the payload is the caller's.
    pub fn emit<B: AsMut<[u8]> + ?Sized>(&self, buf: &mut B) {
        let mut p = Packet::new_unchecked(buf.as_mut());
        p.set_dst_addr(self.dst);
        p.set_src_addr(self.src);
        p.set_ethertype(self.ethertype);
    }
}

/// A parsed header and its payload, in one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Frame<'a>, DropReason> {
        let r = Repr::parse(b)?;
        Ok(Frame {
            dst: r.dst,
            src: r.src,
            ethertype: r.ethertype,
            payload: &b[HEADER_LEN..],
        })
    }
}

/// Writes an Ethernet header into `b[..14]` (`Repr::emit` in one call).
pub fn emit_header(b: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) {
    Repr {
        dst,
        src,
        ethertype,
    }
    .emit(b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ARP who-has 10.77.0.2 tell 10.77.0.1, broadcast by Linux from
    /// 02:aa:00:00:00:01 (captured on a veth).
    static ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0xaa, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x4d,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x4d, 0x00, 0x02,
    ];

    /// The header of an MLDv2 report from 02:bb:00:00:00:02 to the IPv6
    /// multicast MAC 33:33:00:00:00:16 (captured on a veth).
    static MLD_HEADER: [u8; 14] = [
        0x33, 0x33, 0x00, 0x00, 0x00, 0x16, 0x02, 0xbb, 0x00, 0x00, 0x00, 0x02, 0x86, 0xdd,
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&ARP_REQUEST[..]).unwrap();
        assert_eq!(p.dst_addr(), BROADCAST);
        assert_eq!(p.src_addr(), [0x02, 0xaa, 0, 0, 0, 1]);
        assert_eq!(p.ethertype(), ETHERTYPE_ARP);
        assert_eq!(p.payload(), &ARP_REQUEST[14..]);
        let m = Packet::new_checked(&MLD_HEADER[..]).unwrap();
        assert_eq!(m.ethertype(), ETHERTYPE_IPV6);
        assert!(m.payload().is_empty());
        assert!(is_multicast(m.dst_addr()) && !is_broadcast(m.dst_addr()));
        assert!(is_unicast(m.src_addr()));
    }

    #[test]
    fn construct() {
        let mut b = [0u8; 42];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_dst_addr(BROADCAST);
        p.set_src_addr([0x02, 0xaa, 0, 0, 0, 1]);
        p.set_ethertype(ETHERTYPE_ARP);
        p.payload_mut().copy_from_slice(&ARP_REQUEST[14..]);
        assert_eq!(b, ARP_REQUEST);
    }

    #[test]
    fn parse_then_emit_is_byte_identical() {
        for fixture in [&ARP_REQUEST[..], &MLD_HEADER[..]] {
            let r = Repr::parse(fixture).unwrap();
            let mut out = fixture.to_vec();
            out[..HEADER_LEN].fill(0);
            r.emit(&mut out);
            assert_eq!(out, fixture);
            assert_eq!(r.buffer_len(), HEADER_LEN);
        }
        let f = Frame::parse(&ARP_REQUEST).unwrap();
        let mut out = [0u8; 14];
        emit_header(&mut out, f.dst, f.src, f.ethertype);
        assert_eq!(out, ARP_REQUEST[..14]);
    }

    #[test]
    fn every_prefix_shorter_than_a_header_is_truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&ARP_REQUEST[..n]).err(),
                Some(DropReason::Truncated)
            );
            assert_eq!(Repr::parse(&ARP_REQUEST[..n]), Err(DropReason::Truncated));
        }
    }

    #[test]
    fn format() {
        assert_eq!(format_mac([0x02, 0xaa, 0, 0, 0, 1]), "02:aa:00:00:00:01");
        assert_eq!(format_mac(BROADCAST), "ff:ff:ff:ff:ff:ff");
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(dst in any::<MacAddr>(), src in any::<MacAddr>(), ethertype in any::<u16>()) {
            let r = Repr { dst, src, ethertype };
            let mut b = [0u8; HEADER_LEN];
            r.emit(&mut b);
            prop_assert_eq!(Repr::parse(&b).unwrap(), r);
        }
    }
}
