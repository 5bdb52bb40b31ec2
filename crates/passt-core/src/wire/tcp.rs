//! TCP segments (RFC 9293) and the options the translation layer reads
//! and writes: MSS, window scale (RFC 7323), SACK-permitted and SACK
//! blocks (RFC 2018), timestamps (RFC 7323). Unknown options are skipped
//! by their length; an option running past the header is `Malformed`.

use std::net::IpAddr;

use super::checksum;
use super::{be16, be32, DropReason};

pub const HEADER_LEN: usize = 20;
const PROTO_TCP: u8 = 6;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;

mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERM: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// The options we understand, as found in (or to be put in) a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// Up to four SACK blocks (left, right edge); `sack_len` are in use.
    pub sack: [(u32, u32); 4],
    pub sack_len: u8,
    /// (TSval, TSecr)
    pub timestamp: Option<(u32, u32)>,
}

impl Options {
    pub fn parse(mut b: &[u8]) -> Result<Self, DropReason> {
        let mut o = Options::default();
        while let Some(&k) = b.first() {
            match k {
                kind::EOL => break,
                kind::NOP => {
                    b = &b[1..];
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*b.get(1).ok_or(DropReason::Malformed)?);
            if len < 2 || len > b.len() {
                return Err(DropReason::Malformed);
            }
            let v = &b[2..len];
            match (k, v.len()) {
                (kind::MSS, 2) => o.mss = Some(be16(v, 0)),
                (kind::WSCALE, 1) => o.wscale = Some(v[0].min(14)),
                (kind::SACK_PERM, 0) => o.sack_permitted = true,
                (kind::SACK, n) if n % 8 == 0 && n <= 32 => {
                    o.sack_len = (n / 8) as u8;
                    for (i, blk) in v.chunks_exact(8).enumerate() {
                        o.sack[i] = (be32(blk, 0), be32(blk, 4));
                    }
                }
                (kind::TIMESTAMP, 8) => o.timestamp = Some((be32(v, 0), be32(v, 4))),
                (kind::MSS | kind::WSCALE | kind::SACK_PERM | kind::SACK | kind::TIMESTAMP, _) => {
                    return Err(DropReason::Malformed)
                }
                _ => {}
            }
            b = &b[len..];
        }
        Ok(o)
    }

    /// Most option bytes a header holds (data offset 15 words).
    pub const MAX_LEN: usize = 40;

    /// Layout as Linux writes it, so a SYN re-emits byte for byte: MSS;
    /// SACK-permitted + timestamps (12) or NOP NOP + timestamps (12);
    /// NOP + window scale (4); NOP NOP + SACK-permitted without
    /// timestamps (4).
    fn fixed_len(&self) -> usize {
        self.mss.map_or(0, |_| 4)
            + self.timestamp.map_or(0, |_| 12)
            + self.wscale.map_or(0, |_| 4)
            + if self.sack_permitted && self.timestamp.is_none() {
                4
            } else {
                0
            }
    }

    /// SACK blocks emitted: as many of `sack_len` as fit in the header.
    fn sack_blocks(&self) -> usize {
        let room = Self::MAX_LEN.saturating_sub(self.fixed_len() + 4) / 8;
        usize::from(self.sack_len).min(room)
    }

    /// Bytes these options take, padded to a multiple of 4 (at most 40).
    pub fn buffer_len(&self) -> usize {
        match self.sack_blocks() {
            0 => self.fixed_len(),
            n => self.fixed_len() + 4 + 8 * n, // NOP NOP + 2 + blocks
        }
    }

    pub fn emit(&self, b: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            b[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            put(&[kind::MSS, 4, m[0], m[1]]);
        }
        if let Some((val, ecr)) = self.timestamp {
            if self.sack_permitted {
                put(&[kind::SACK_PERM, 2, kind::TIMESTAMP, 10]);
            } else {
                put(&[kind::NOP, kind::NOP, kind::TIMESTAMP, 10]);
            }
            put(&val.to_be_bytes());
            put(&ecr.to_be_bytes());
        }
        if let Some(ws) = self.wscale {
            put(&[kind::NOP, kind::WSCALE, 3, ws]);
        }
        if self.sack_permitted && self.timestamp.is_none() {
            put(&[kind::NOP, kind::NOP, kind::SACK_PERM, 2]);
        }
        let blocks = self.sack_blocks();
        if blocks > 0 {
            put(&[kind::NOP, kind::NOP, kind::SACK, 2 + 8 * blocks as u8]);
            for (l, r) in &self.sack[..blocks] {
                put(&l.to_be_bytes());
                put(&r.to_be_bytes());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Options,
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses segment `b` from `src` to `dst`, verifying the checksum.
    pub fn parse(b: &'a [u8], src: IpAddr, dst: IpAddr) -> Result<Self, DropReason> {
        if b.len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let off = usize::from(b[12] >> 4) * 4;
        if off < HEADER_LEN {
            return Err(DropReason::Malformed);
        }
        if off > b.len() {
            return Err(DropReason::Truncated);
        }
        if checksum::upper_layer(src, dst, PROTO_TCP, b) != 0 {
            return Err(DropReason::BadChecksum);
        }
        Ok(Repr {
            src_port: be16(b, 0),
            dst_port: be16(b, 2),
            seq: be32(b, 4),
            ack: be32(b, 8),
            flags: b[13],
            window: be16(b, 14),
            options: Options::parse(&b[HEADER_LEN..off])?,
            payload: &b[off..],
        })
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.buffer_len()
    }

    /// Writes header and options into `b`, whose payload (`payload.len()`
    /// bytes after the header) is already in place, then the checksum.
    pub fn emit(&self, b: &mut [u8], src: IpAddr, dst: IpAddr) {
        let hl = self.header_len();
        b[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        b[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        b[4..8].copy_from_slice(&self.seq.to_be_bytes());
        b[8..12].copy_from_slice(&self.ack.to_be_bytes());
        b[12] = ((hl / 4) as u8) << 4;
        b[13] = self.flags;
        b[14..16].copy_from_slice(&self.window.to_be_bytes());
        b[16..20].copy_from_slice(&[0, 0, 0, 0]);
        self.options.emit(&mut b[HEADER_LEN..hl]);
        let total = hl + self.payload.len();
        let c = checksum::upper_layer(src, dst, PROTO_TCP, &b[..total]);
        b[16..18].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Options of a Linux SYN: MSS 65480, SACK-permitted, timestamps,
    /// NOP, window scale 7.
    const SYN_OPTIONS: [u8; 20] = [
        0x02, 0x04, 0xff, 0xc8, 0x04, 0x02, 0x08, 0x0a, 0x9d, 0x5b, 0x3e, 0x11, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    #[test]
    fn parses_linux_syn_options() {
        let o = Options::parse(&SYN_OPTIONS).unwrap();
        let mut out = [0u8; 20];
        o.emit(&mut out);
        assert_eq!(out, SYN_OPTIONS, "re-emitted in Linux's layout");
        assert_eq!(o.mss, Some(65480));
        assert!(o.sack_permitted);
        assert_eq!(o.timestamp, Some((0x9d5b_3e11, 0)));
        assert_eq!(o.wscale, Some(7));
    }

    #[test]
    fn malformed_options() {
        assert_eq!(Options::parse(&[2, 4, 0xff]), Err(DropReason::Malformed));
        assert_eq!(Options::parse(&[2, 1]), Err(DropReason::Malformed));
        assert_eq!(Options::parse(&[2, 3, 0]), Err(DropReason::Malformed));
        assert_eq!(Options::parse(&[99]), Err(DropReason::Malformed));
        assert!(
            Options::parse(&[99, 3, 0, 0]).is_ok(),
            "unknown options are skipped"
        );
        assert!(
            Options::parse(&[0, 0xde, 0xad]).is_ok(),
            "nothing after EOL is read"
        );
    }

    fn segment(repr: &Repr, s: IpAddr, d: IpAddr) -> Vec<u8> {
        let mut b = vec![0u8; repr.header_len() + repr.payload.len()];
        b[repr.header_len()..].copy_from_slice(repr.payload);
        repr.emit(&mut b, s, d);
        b
    }

    #[test]
    fn checksums_and_truncation() {
        let (s, d) = (ip("192.0.2.2"), ip("192.0.2.1"));
        let r = Repr {
            src_port: 40000,
            dst_port: 80,
            seq: 1,
            ack: 0,
            flags: SYN,
            window: 64240,
            options: Options::parse(&SYN_OPTIONS).unwrap(),
            payload: &[],
        };
        let b = segment(&r, s, d);
        assert_eq!(Repr::parse(&b, s, d).unwrap(), r);
        assert_eq!(
            Repr::parse(&b, d, ip("192.0.2.9")),
            Err(DropReason::BadChecksum)
        );
        for n in 0..b.len() {
            assert!(Repr::parse(&b[..n], s, d).is_err(), "prefix {n}");
        }
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            src_port in any::<u16>(), dst_port in any::<u16>(), seq in any::<u32>(),
            ack in any::<u32>(), flags in any::<u8>(), window in any::<u16>(),
            mss in proptest::option::of(any::<u16>()), wscale in proptest::option::of(0u8..=14),
            sack_permitted in any::<bool>(), ts in proptest::option::of(any::<(u32, u32)>()),
            sack in proptest::collection::vec(any::<(u32, u32)>(), 0..=3),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            v6 in any::<bool>(),
        ) {
            let (s, d) = if v6 { (ip("fd00::2"), ip("fd00::1")) } else { (ip("192.0.2.2"), ip("192.0.2.1")) };
            let mut options = Options { mss, wscale, sack_permitted, timestamp: ts, ..Options::default() };
            for (i, blk) in sack.iter().enumerate() {
                options.sack[i] = *blk;
            }
            options.sack_len = sack.len() as u8;
            let r = Repr { src_port, dst_port, seq, ack, flags, window, options, payload: &payload };
            let b = segment(&r, s, d);
            let back = Repr::parse(&b, s, d).unwrap();
            prop_assert!(r.options.buffer_len() <= Options::MAX_LEN);
            // SACK blocks that did not fit are left out, the rest survive.
            let kept = usize::from(back.options.sack_len);
            prop_assert_eq!(&back.options.sack[..kept], &r.options.sack[..kept]);
            let mut expect = r;
            expect.options.sack_len = back.options.sack_len;
            expect.options.sack = back.options.sack;
            prop_assert_eq!(back, expect);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Repr::parse(&bytes, ip("192.0.2.2"), ip("192.0.2.1"));
            let _ = Options::parse(&bytes);
        }
    }
}
