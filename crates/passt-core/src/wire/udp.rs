//! UDP datagrams (RFC 768).
//!
//! The checksum covers the pseudo-header. Over IPv4 a zero checksum means
//! "none computed" and is accepted; over IPv6 it is mandatory (RFC 8200
//! §8.1) and zero is refused. A computed checksum of zero is sent as
//! 0xffff, its other representation.
//!
//! Invariant of a checked view: `8 <= len() <= buffer length`; bytes
//! after `len()` (an IP payload longer than the datagram) are ignored.
//! Ports are not judged here: port zero is the frame parser's concern.

use std::net::IpAddr;

use super::checksum;
use super::{read_u16, write_u16, DropReason};

pub const PROTO_UDP: u8 = 17;

mod field {
    use std::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const PAYLOAD: usize = 8;
}

pub const HEADER_LEN: usize = field::PAYLOAD;

/// A view of a UDP datagram.
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
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN {
            return Err(DropReason::BadLength);
        }
        if field_len > len {
            return Err(DropReason::Truncated);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Header and payload, in bytes.
    pub fn len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..usize::from(self.len())]
    }

    /// True if the checksum verifies, or is absent where that is allowed.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::upper_layer(src, dst, PROTO_UDP, datagram) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::SRC_PORT], v);
    }

    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::DST_PORT], v);
    }

    pub fn set_len(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], v);
    }

    pub fn set_checksum(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[field::PAYLOAD..end]
    }

    /// Computes and stores the checksum over `len()` bytes (set it first).
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        let c = match checksum::upper_layer(src, dst, PROTO_UDP, datagram) {
            0 => 0xffff,
            c => c,
        };
        self.set_checksum(c);
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

/// A UDP datagram: ports and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses the datagram `buf` sent from `src` to `dst`.
    pub fn parse<B: AsRef<[u8]> + ?Sized>(
        buf: &'a B,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<Repr<'a>, DropReason> {
        Self::parse_with(buf, src, dst, true)
    }

    /// As `parse`, with the checksum verified only if `verify`.
    pub fn parse_with<B: AsRef<[u8]> + ?Sized>(
        buf: &'a B,
        src: IpAddr,
        dst: IpAddr,
        verify: bool,
    ) -> Result<Repr<'a>, DropReason> {
        let b = buf.as_ref();
        let p = Packet::new_checked(b)?;
        if verify && !p.verify_checksum(src, dst) {
            return Err(DropReason::BadChecksum);
        }
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload: &b[HEADER_LEN..usize::from(p.len())],
        })
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes header, payload and checksum into `buf[..buffer_len()]`.
    pub fn emit<B: AsMut<[u8]> + ?Sized>(&self, buf: &mut B, src: IpAddr, dst: IpAddr) {
        let b = buf.as_mut();
        b[HEADER_LEN..self.buffer_len()].copy_from_slice(self.payload);
        emit(
            b,
            src,
            dst,
            self.src_port,
            self.dst_port,
            self.payload.len(),
        );
    }
}

/// Writes the UDP header in front of the `payload_len` bytes already at
/// `b[8..]`, checksum included: the form for a payload received straight
/// into the frame buffer.
pub fn emit(
    b: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    payload_len: usize,
) {
    header(b, src_port, dst_port, payload_len).fill_checksum(src, dst);
}

/// As `emit`, with the checksum left for the device to complete
/// (`checksum::partial`): the payload is not summed.
pub fn emit_offload(
    b: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    payload_len: usize,
) {
    let len = HEADER_LEN + payload_len;
    header(b, src_port, dst_port, payload_len)
        .set_checksum(checksum::partial(src, dst, PROTO_UDP, len));
}

/// The header's ports and length, the checksum left to the caller.
fn header(b: &mut [u8], src_port: u16, dst_port: u16, payload_len: usize) -> Packet<&mut [u8]> {
    let mut p = Packet::new_unchecked(b);
    p.set_src_port(src_port);
    p.set_dst_port(dst_port);
    p.set_len((HEADER_LEN + payload_len) as u16);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on a veth between two namespaces (IP header removed).

    /// "hello" from 10.77.0.1:40000 to 10.77.0.2:9999.
    static UDP4: [u8; 13] = [
        0x9c, 0x40, 0x27, 0x0f, 0x00, 0x0d, 0xe4, 0x15, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
    ];

    /// "hello6" from [fd77::1]:40001 to [fd77::2]:9999.
    static UDP6: [u8; 14] = [
        0x9c, 0x41, 0x27, 0x0f, 0x00, 0x0e, 0xfd, 0x86, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x36,
    ];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fixtures() -> [(&'static [u8], IpAddr, IpAddr); 2] {
        [
            (&UDP4, ip("10.77.0.1"), ip("10.77.0.2")),
            (&UDP6, ip("fd77::1"), ip("fd77::2")),
        ]
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&UDP4[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.len(), p.checksum()),
            (40000, 9999, 13, 0xe415)
        );
        assert_eq!(p.payload(), b"hello");
        assert!(p.verify_checksum(ip("10.77.0.1"), ip("10.77.0.2")));
        let p = Packet::new_checked(&UDP6[..]).unwrap();
        assert_eq!((p.src_port(), p.payload()), (40001, &b"hello6"[..]));
        assert!(p.verify_checksum(ip("fd77::1"), ip("fd77::2")));
    }

    #[test]
    fn construct() {
        let mut b = [0xa5u8; 13];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(40000);
        p.set_dst_port(9999);
        p.set_len(13);
        p.payload_mut().copy_from_slice(b"hello");
        p.fill_checksum(ip("10.77.0.1"), ip("10.77.0.2"));
        assert_eq!(b, UDP4);
    }

    #[test]
    fn parse_then_emit_is_byte_identical() {
        for (fixture, s, d) in fixtures() {
            let r = Repr::parse(fixture, s, d).unwrap();
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out, s, d);
            assert_eq!(out, fixture);
            // The in-place form gives the same bytes.
            let mut in_place = fixture.to_vec();
            in_place[..8].fill(0);
            emit(&mut in_place, s, d, r.src_port, r.dst_port, r.payload.len());
            assert_eq!(in_place, fixture);
        }
    }

    #[test]
    fn truncated_and_corrupted() {
        for (fixture, s, d) in fixtures() {
            for n in 0..fixture.len() {
                assert_eq!(
                    Repr::parse(&fixture[..n], s, d),
                    Err(DropReason::Truncated),
                    "{n}"
                );
            }
            let mut bad = fixture.to_vec();
            bad[9] ^= 1;
            assert_eq!(Repr::parse(&bad, s, d), Err(DropReason::BadChecksum));
            let mut short = fixture.to_vec();
            short[5] = 7;
            assert_eq!(Repr::parse(&short, s, d), Err(DropReason::BadLength));
        }
        // An IP payload longer than the datagram: the rest is not ours.
        let mut long = UDP4.to_vec();
        long.extend_from_slice(b"xyz");
        let r = Repr::parse(&long, ip("10.77.0.1"), ip("10.77.0.2")).unwrap();
        assert_eq!(r.payload, b"hello");
    }

    #[test]
    fn zero_checksum_only_over_ipv4() {
        let mut none = UDP4;
        none[6..8].fill(0);
        assert!(Repr::parse(&none, ip("10.77.0.1"), ip("10.77.0.2")).is_ok());
        let mut none6 = UDP6;
        none6[6..8].fill(0);
        assert_eq!(
            Repr::parse(&none6, ip("fd77::1"), ip("fd77::2")),
            Err(DropReason::BadChecksum)
        );
    }

    #[test]
    fn a_zero_sum_is_sent_as_ffff() {
        // Choose the payload so that the checksum computes to zero.
        let (s, d) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let mut b = [0u8; 10];
        emit(&mut b, s, d, 1, 2, 2);
        let c = u16::from_be_bytes([b[6], b[7]]);
        // Adding the checksum's value as payload makes the new sum 0xffff,
        // whose complement is zero.
        b[8..10].copy_from_slice(&c.to_be_bytes());
        emit(&mut b, s, d, 1, 2, 2);
        assert_eq!(u16::from_be_bytes([b[6], b[7]]), 0xffff);
        assert!(Repr::parse(&b, s, d).is_ok());
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            src_port in any::<u16>(), dst_port in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>(),
        ) {
            let (s, d) = if v6 { (ip("fd00::2"), ip("fd00::1")) } else { (ip("192.0.2.2"), ip("192.0.2.1")) };
            let r = Repr { src_port, dst_port, payload: &payload };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut b, s, d);
            prop_assert_eq!(Repr::parse(&b, s, d).unwrap(), r);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = p.payload();
            }
            let _ = Repr::parse(&bytes, ip("10.0.0.1"), ip("10.0.0.2"));
            let _ = Repr::parse(&bytes, ip("fd00::1"), ip("fd00::2"));
        }
    }
}
