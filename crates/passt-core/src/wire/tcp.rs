//! TCP segments (RFC 9293): ports, sequence and acknowledgement numbers,
//! data offset, flags, window, checksum (over the pseudo-header), urgent
//! pointer, options (`options`), payload.
//!
//! Owns the format only; there is no TCP state here. Invariant of a
//! checked view: `20 <= header_len() <= buffer length`, so `options()`
//! and `payload()` never panic. The payload runs to the end of the
//! buffer: the IP layer has already cut it to the IP payload length.
//! The four bits between the data offset and the flags (reserved, and
//! AE of RFC 9768) are read as zero and written as zero.

use std::net::IpAddr;

use super::checksum;
use super::{read_u16, read_u32, write_u16, write_u32, DropReason};

mod options;
pub use options::{kind, Options, OptionsIter, SackBlocks, TcpOption};

pub const PROTO_TCP: u8 = 6;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

mod field {
    use std::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// The fixed header; options may follow, up to 40 bytes.
pub const HEADER_LEN: usize = field::URGENT.end;
pub const MAX_HEADER_LEN: usize = HEADER_LEN + options::MAX_LEN;

/// A view of a TCP segment.
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
        let header = self.header_len();
        if header < HEADER_LEN {
            return Err(DropReason::BadHeaderLength);
        }
        if header > len {
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

    pub fn seq_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    pub fn ack_number(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::ACK_NUM])
    }

    /// Data offset in bytes (the field counts 32-bit words).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The flag byte: `FIN`, `SYN`, ... `CWR`.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn fin(&self) -> bool {
        self.flags() & FIN != 0
    }

    pub fn syn(&self) -> bool {
        self.flags() & SYN != 0
    }

    pub fn rst(&self) -> bool {
        self.flags() & RST != 0
    }

    pub fn psh(&self) -> bool {
        self.flags() & PSH != 0
    }

    pub fn ack(&self) -> bool {
        self.flags() & ACK != 0
    }

    pub fn urg(&self) -> bool {
        self.flags() & URG != 0
    }

    pub fn window_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    pub fn urgent_at(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::URGENT])
    }

    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    pub fn options_iter(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.options())
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Sequence space the segment takes: its data, plus one for SYN and
    /// one for FIN.
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }

    /// Checksum over the pseudo-header and the whole buffer (size it to
    /// the segment).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        checksum::upper_layer(src, dst, PROTO_TCP, self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::SRC_PORT], v);
    }

    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::DST_PORT], v);
    }

    pub fn set_seq_number(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::SEQ_NUM], v);
    }

    pub fn set_ack_number(&mut self, v: u32) {
        write_u32(&mut self.buffer.as_mut()[field::ACK_NUM], v);
    }

    /// Sets the data offset (a multiple of 4, 20 to 60), reserved bits 0.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    pub fn set_window_len(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::WIN_SIZE], v);
    }

    pub fn set_checksum(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], v);
    }

    pub fn set_urgent_at(&mut self, v: u16) {
        write_u16(&mut self.buffer.as_mut()[field::URGENT], v);
    }

    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let c = checksum::upper_layer(src, dst, PROTO_TCP, self.buffer.as_ref());
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

/// A TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Meaningful when `flags` has `ACK`; carried as found either way.
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Options,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses segment `buf` from `src` to `dst`, verifying the checksum
    /// and the options.
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
        let header_len = p.header_len();
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq_number(),
            ack: p.ack_number(),
            flags: p.flags(),
            window: p.window_len(),
            options: Options::parse(&b[HEADER_LEN..header_len])?,
            payload: &b[header_len..],
        })
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.buffer_len()
    }

    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Sequence space taken: data, plus one each for SYN and FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len() + usize::from(self.flags & SYN != 0) + usize::from(self.flags & FIN != 0)
    }

    /// Writes header, options, payload and checksum into
    /// `buf[..buffer_len()]`.
    pub fn emit<B: AsMut<[u8]> + ?Sized>(&self, buf: &mut B, src: IpAddr, dst: IpAddr) {
        let b = &mut buf.as_mut()[..self.buffer_len()];
        b[self.header_len()..].copy_from_slice(self.payload);
        self.emit_header(b, self.payload.len(), src, dst);
    }

    /// Writes header, options and checksum around `payload_len` bytes
    /// already in place after the header (data peeked from a socket
    /// straight into the frame): `buf` is `header_len() + payload_len`
    /// bytes or longer. `self.payload` is not used.
    pub fn emit_header<B: AsMut<[u8]> + ?Sized>(
        &self,
        buf: &mut B,
        payload_len: usize,
        src: IpAddr,
        dst: IpAddr,
    ) {
        let mut p = self.emit_fields(buf, payload_len);
        p.fill_checksum(src, dst);
    }

    /// As `emit_header`, with the checksum left for the device to
    /// complete (`checksum::partial`): the payload is not summed.
    pub fn emit_header_offload<B: AsMut<[u8]> + ?Sized>(
        &self,
        buf: &mut B,
        payload_len: usize,
        src: IpAddr,
        dst: IpAddr,
    ) {
        let len = self.header_len() + payload_len;
        let mut p = self.emit_fields(buf, payload_len);
        p.set_checksum(checksum::partial(src, dst, PROTO_TCP, len));
    }

    fn emit_fields<'b, B: AsMut<[u8]> + ?Sized>(
        &self,
        buf: &'b mut B,
        payload_len: usize,
    ) -> Packet<&'b mut [u8]> {
        let header_len = self.header_len();
        let mut p = Packet::new_unchecked(&mut buf.as_mut()[..header_len + payload_len]);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq);
        p.set_ack_number(self.ack);
        p.set_header_len(header_len);
        p.set_flags(self.flags);
        p.set_window_len(self.window);
        // URG is not used by anything we mirror (RFC 6093 advises
        // against it): the pointer is read through the view, written 0.
        p.set_urgent_at(0);
        self.options.emit(p.options_mut());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on a veth between two namespaces (IP header removed).

    /// 10.77.0.1:43802 -> 10.77.0.2:8000 SYN, seq 3301202663, window
    /// 64240; MSS 1460, SACK-permitted, timestamps, NOP, wscale 10.
    static SYN_SEG: [u8; 40] = [
        0xab, 0x1a, 0x1f, 0x40, 0xc4, 0xc4, 0x5a, 0xe7, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0x6f, 0x15, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x4b, 0x20,
        0x94, 0x33, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];

    /// The SYN-ACK to `SYN_SEG`.
    static SYN_ACK_SEG: [u8; 40] = [
        0x1f, 0x40, 0xab, 0x1a, 0x56, 0x80, 0xbd, 0x8c, 0xc4, 0xc4, 0x5a, 0xe8, 0xa0, 0x12, 0xfe,
        0x88, 0x6a, 0x84, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x71, 0x19,
        0x7b, 0xc1, 0x4b, 0x20, 0x94, 0x33, 0x01, 0x03, 0x03, 0x0a,
    ];

    /// 10.77.0.2:8003 -> 10.77.0.1:36892 PSH|ACK carrying "hi\n", with
    /// NOP NOP timestamps.
    static PSH_SEG: [u8; 35] = [
        0x1f, 0x43, 0x90, 0x1c, 0x19, 0x68, 0x25, 0x7f, 0x02, 0xa9, 0xa1, 0xb8, 0x80, 0x18, 0x00,
        0x40, 0x18, 0xa3, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0xf2, 0xad, 0x68, 0x3c, 0x05, 0xda,
        0xe3, 0x5c, 0x68, 0x69, 0x0a,
    ];

    /// The RST 10.77.0.1 answered it with: no options, no ACK.
    static RST_SEG: [u8; 20] = [
        0x90, 0x1c, 0x1f, 0x43, 0x02, 0xa9, 0xa1, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x50, 0x04, 0x00,
        0x00, 0x47, 0x83, 0x00, 0x00,
    ];

    /// [fd77::1]:49886 -> [fd77::2]:8001 SYN, MSS 1440.
    static SYN6_SEG: [u8; 40] = [
        0xc2, 0xde, 0x1f, 0x41, 0xd6, 0x0f, 0x78, 0xb7, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfd,
        0x20, 0xc4, 0xa3, 0x00, 0x00, 0x02, 0x04, 0x05, 0xa0, 0x04, 0x02, 0x08, 0x0a, 0xfa, 0x06,
        0x60, 0x6c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn fixtures() -> [(&'static [u8], IpAddr, IpAddr); 5] {
        let (a, b) = (ip("10.77.0.1"), ip("10.77.0.2"));
        [
            (&SYN_SEG, a, b),
            (&SYN_ACK_SEG, b, a),
            (&PSH_SEG, b, a),
            (&RST_SEG, a, b),
            (&SYN6_SEG, ip("fd77::1"), ip("fd77::2")),
        ]
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&SYN_SEG[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (43802, 8000));
        assert_eq!((p.seq_number(), p.ack_number()), (3_301_202_663, 0));
        assert_eq!(
            (p.header_len(), p.flags(), p.window_len()),
            (40, SYN, 64240)
        );
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.psh() && !p.urg());
        assert_eq!(
            (p.checksum(), p.urgent_at(), p.segment_len()),
            (0x6f15, 0, 1)
        );
        assert_eq!(
            p.options_iter().next(),
            Some(Ok(TcpOption::MaxSegmentSize(1460)))
        );
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(ip("10.77.0.1"), ip("10.77.0.2")));

        let p = Packet::new_checked(&PSH_SEG[..]).unwrap();
        assert!(p.psh() && p.ack());
        assert_eq!(
            (p.ack_number(), p.window_len(), p.payload()),
            (0x02a9_a1b8, 64, &b"hi\n"[..])
        );
        let p = Packet::new_checked(&RST_SEG[..]).unwrap();
        assert!(p.rst() && p.options().is_empty() && p.segment_len() == 0);
    }

    #[test]
    fn construct() {
        let (s, d) = (ip("10.77.0.2"), ip("10.77.0.1"));
        let mut b = [0xa5u8; 35];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(8003);
        p.set_dst_port(36892);
        p.set_seq_number(0x1968_257f);
        p.set_ack_number(0x02a9_a1b8);
        p.set_header_len(32);
        p.set_flags(PSH | ACK);
        p.set_window_len(64);
        p.set_urgent_at(0);
        p.options_mut().copy_from_slice(&PSH_SEG[20..32]);
        p.payload_mut().copy_from_slice(b"hi\n");
        p.fill_checksum(s, d);
        assert_eq!(b, PSH_SEG);
    }

    #[test]
    fn parse_then_emit_is_byte_identical() {
        for (fixture, s, d) in fixtures() {
            let r = Repr::parse(fixture, s, d).unwrap();
            assert_eq!(r.buffer_len(), fixture.len());
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out, s, d);
            assert_eq!(out, fixture);
            // Around a payload already in place: the same bytes.
            let mut in_place = fixture.to_vec();
            in_place[..r.header_len()].fill(0);
            r.emit_header(&mut in_place, r.payload.len(), s, d);
            assert_eq!(in_place, fixture);
        }
        let syn = Repr::parse(&SYN6_SEG, ip("fd77::1"), ip("fd77::2")).unwrap();
        assert_eq!(syn.options.mss, Some(1440));
        let psh = Repr::parse(&PSH_SEG, ip("10.77.0.2"), ip("10.77.0.1")).unwrap();
        assert_eq!(psh.options.timestamp, Some((0xf2ad_683c, 0x05da_e35c)));
        assert_eq!((psh.payload, psh.segment_len()), (&b"hi\n"[..], 3));
    }

    #[test]
    fn truncated_and_corrupted() {
        for (fixture, s, d) in fixtures() {
            for n in 0..fixture.len() {
                assert!(Repr::parse(&fixture[..n], s, d).is_err(), "{n}");
            }
            for n in 0..HEADER_LEN {
                assert_eq!(Repr::parse(&fixture[..n], s, d), Err(DropReason::Truncated));
            }
            assert_eq!(
                Repr::parse(fixture, s, ip("10.0.0.9")),
                Err(DropReason::BadChecksum)
            );
        }
        let (s, d) = (ip("10.77.0.1"), ip("10.77.0.2"));
        let mut small = RST_SEG;
        small[12] = 0x40;
        assert_eq!(Repr::parse(&small, s, d), Err(DropReason::BadHeaderLength));
        // MSS with a length of 5, checksum recomputed: the option is bad.
        let mut opt = SYN_SEG;
        opt[21] = 5;
        Packet::new_unchecked(&mut opt[..]).fill_checksum(s, d);
        assert_eq!(Repr::parse(&opt, s, d), Err(DropReason::BadOption));
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            src_port in any::<u16>(), dst_port in any::<u16>(), seq in any::<u32>(),
            ack in any::<u32>(), flags in any::<u8>(), window in any::<u16>(),
            mss in proptest::option::of(any::<u16>()), wscale in proptest::option::of(0u8..=14),
            sack_permitted in any::<bool>(), ts in proptest::option::of(any::<(u32, u32)>()),
            sack in proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            v6 in any::<bool>(),
        ) {
            let (s, d) = if v6 { (ip("fd00::2"), ip("fd00::1")) } else { (ip("192.0.2.2"), ip("192.0.2.1")) };
            let mut options = Options { mss, wscale, sack_permitted, timestamp: ts, ..Options::default() };
            options.set_sack(sack.iter().copied());
            let r = Repr { src_port, dst_port, seq, ack, flags, window, options, payload: &payload };
            prop_assert!(r.header_len() <= MAX_HEADER_LEN);
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut b, s, d);
            let back = Repr::parse(&b, s, d).unwrap();
            // SACK blocks that did not fit are left out, the rest survive.
            let kept = back.options.sack_blocks().len();
            prop_assert_eq!(back.options.sack_blocks(), &r.options.sack_blocks()[..kept]);
            let mut expect = r;
            expect.options.set_sack(back.options.sack_blocks().iter().copied());
            prop_assert_eq!(back, expect);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.options(), p.payload(), p.segment_len());
                for _ in p.options_iter() {}
            }
            let _ = Repr::parse(&bytes, ip("192.0.2.2"), ip("192.0.2.1"));
        }
    }
}
