//! TCP options (RFC 9293 §3.1): an iterator over what a header carries,
//! and `Options`, the set the translation layer reads and writes: MSS,
//! window scale (RFC 7323 §2), SACK-permitted and SACK blocks (RFC 2018),
//! timestamps (RFC 7323 §3).
//!
//! The walk is bounded by the 40 bytes a header can hold. EOL ends it;
//! NOP is one byte; every other option has a length of at least 2 that
//! stays inside the header, or the whole header is refused (`BadOption`).
//! An option we know with the wrong length is refused too (RFC 9293
//! says to treat such a segment as invalid); one we don't know is
//! skipped by its length.

use crate::wire::{read_u16, read_u32, DropReason};

/// Option kinds.
pub mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERM: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// Most option bytes a header holds (data offset 15 words).
pub const MAX_LEN: usize = 40;
/// RFC 7323 §2.3: a larger shift is taken as 14.
pub const MAX_WSCALE: u8 = 14;
pub const MAX_SACK_BLOCKS: usize = 4;

/// SACK blocks as found in an option: (left edge, right edge) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBlocks<'a>(&'a [u8]);

impl Iterator for SackBlocks<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        if self.0.len() < 8 {
            return None;
        }
        let block = (read_u32(&self.0[0..4]), read_u32(&self.0[4..8]));
        self.0 = &self.0[8..];
        Some(block)
    }
}

/// One option, as the iterator finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    MaxSegmentSize(u16),
    /// The shift as sent (not yet limited to 14).
    WindowScale(u8),
    SackPermitted,
    /// One to four blocks.
    Sack(SackBlocks<'a>),
    Timestamp {
        tsval: u32,
        tsecr: u32,
    },
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Walks the options area of a header. After an error or EOL it ends.
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    rest: &'a [u8],
}

impl<'a> OptionsIter<'a> {
    pub fn new(options: &'a [u8]) -> Self {
        OptionsIter { rest: options }
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<TcpOption<'a>, DropReason>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.rest;
        let &k = b.first()?;
        match k {
            kind::EOL => {
                self.rest = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            kind::NOP => {
                self.rest = &b[1..];
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        self.rest = &[];
        let len = match b.get(1) {
            Some(&len) if len >= 2 && usize::from(len) <= b.len() => usize::from(len),
            _ => return Some(Err(DropReason::BadOption)),
        };
        let data = &b[2..len];
        let option = match (k, data.len()) {
            (kind::MSS, 2) => TcpOption::MaxSegmentSize(read_u16(data)),
            (kind::WSCALE, 1) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERM, 0) => TcpOption::SackPermitted,
            (kind::SACK, n) if n % 8 == 0 && (8..=32).contains(&n) => {
                TcpOption::Sack(SackBlocks(data))
            }
            (kind::TIMESTAMP, 8) => TcpOption::Timestamp {
                tsval: read_u32(&data[0..4]),
                tsecr: read_u32(&data[4..8]),
            },
            (kind::MSS | kind::WSCALE | kind::SACK_PERM | kind::SACK | kind::TIMESTAMP, _) => {
                return Some(Err(DropReason::BadOption))
            }
            _ => TcpOption::Unknown { kind: k, data },
        };
        self.rest = &b[len..];
        Some(Ok(option))
    }
}

/// The options we understand, as found in (or to be put in) a header.
/// Two values are equal if they say the same: SACK slots past
/// `sack_len` don't count.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub mss: Option<u16>,
    /// At most `MAX_WSCALE`.
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// SACK blocks (left, right edge); the first `sack_len` are in use.
    pub sack: [(u32, u32); MAX_SACK_BLOCKS],
    pub sack_len: u8,
    /// (TSval, TSecr)
    pub timestamp: Option<(u32, u32)>,
}

impl PartialEq for Options {
    fn eq(&self, other: &Options) -> bool {
        (self.mss, self.wscale, self.sack_permitted, self.timestamp)
            == (
                other.mss,
                other.wscale,
                other.sack_permitted,
                other.timestamp,
            )
            && self.sack_blocks() == other.sack_blocks()
    }
}

impl Eq for Options {}

impl Options {
    /// Most option bytes a header holds.
    pub const MAX_LEN: usize = MAX_LEN;

    /// Reads the options area of a header. A repeated option counts as
    /// its last occurrence; unknown ones are skipped.
    pub fn parse(b: &[u8]) -> Result<Options, DropReason> {
        let mut o = Options::default();
        for option in OptionsIter::new(b) {
            match option? {
                TcpOption::MaxSegmentSize(mss) => o.mss = Some(mss),
                TcpOption::WindowScale(ws) => o.wscale = Some(ws.min(MAX_WSCALE)),
                TcpOption::SackPermitted => o.sack_permitted = true,
                TcpOption::Sack(blocks) => o.set_sack(blocks),
                TcpOption::Timestamp { tsval, tsecr } => o.timestamp = Some((tsval, tsecr)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        Ok(o)
    }

    /// Replaces the SACK blocks with up to four of `blocks`.
    pub fn set_sack(&mut self, blocks: impl IntoIterator<Item = (u32, u32)>) {
        let mut n = 0;
        for b in blocks.into_iter().take(MAX_SACK_BLOCKS) {
            self.sack[n] = b;
            n += 1;
        }
        self.sack_len = n as u8;
    }

    pub fn sack_blocks(&self) -> &[(u32, u32)] {
        &self.sack[..usize::from(self.sack_len).min(MAX_SACK_BLOCKS)]
    }

    /// Bytes of everything but the SACK blocks, in the layout Linux
    /// writes, so that a Linux SYN re-emits byte for byte: MSS (4);
    /// SACK-permitted + timestamps or NOP NOP + timestamps (12); NOP +
    /// window scale (4); NOP NOP + SACK-permitted without timestamps (4).
    fn fixed_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.timestamp.is_some() {
            n += 12;
        }
        if self.wscale.is_some() {
            n += 4;
        }
        if self.sack_permitted && self.timestamp.is_none() {
            n += 4;
        }
        n
    }

    /// SACK blocks emitted: as many as fit in the header after the rest
    /// (NOP NOP, kind, length, then 8 bytes a block).
    fn sack_blocks_emitted(&self) -> usize {
        let room = MAX_LEN.saturating_sub(self.fixed_len() + 4) / 8;
        self.sack_blocks().len().min(room)
    }

    /// Bytes these options take: a multiple of 4, at most 40.
    pub fn buffer_len(&self) -> usize {
        match self.sack_blocks_emitted() {
            0 => self.fixed_len(),
            n => self.fixed_len() + 4 + 8 * n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buffer_len() == 0
    }

    /// Writes the options into `b[..buffer_len()]`.
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
        if let Some((tsval, tsecr)) = self.timestamp {
            if self.sack_permitted {
                put(&[kind::SACK_PERM, 2, kind::TIMESTAMP, 10]);
            } else {
                put(&[kind::NOP, kind::NOP, kind::TIMESTAMP, 10]);
            }
            put(&tsval.to_be_bytes());
            put(&tsecr.to_be_bytes());
        }
        if let Some(ws) = self.wscale {
            put(&[kind::NOP, kind::WSCALE, 3, ws]);
        }
        if self.sack_permitted && self.timestamp.is_none() {
            put(&[kind::NOP, kind::NOP, kind::SACK_PERM, 2]);
        }
        let n = self.sack_blocks_emitted();
        if n > 0 {
            put(&[kind::NOP, kind::NOP, kind::SACK, 2 + 8 * n as u8]);
            for (left, right) in &self.sack[..n] {
                put(&left.to_be_bytes());
                put(&right.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Options of a Linux SYN captured on a veth: MSS 1460, SACK-permitted,
    /// timestamps (TSval 0x4b209433), NOP, window scale 10.
    static SYN_OPTIONS: [u8; 20] = [
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x4b, 0x20, 0x94, 0x33, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x0a,
    ];

    /// NOP NOP SACK with two blocks, as Linux lays out a SACK after
    /// NOP NOP timestamps.
    static SACK_OPTIONS: [u8; 32] = [
        0x01, 0x01, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x09, 0x01, 0x01, 0x05,
        0x12, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00,
        0x40, 0x00,
    ];

    #[test]
    fn iterates_a_linux_syn() {
        let all: Vec<_> = OptionsIter::new(&SYN_OPTIONS).map(Result::unwrap).collect();
        assert_eq!(
            all,
            [
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamp {
                    tsval: 0x4b20_9433,
                    tsecr: 0
                },
                TcpOption::NoOperation,
                TcpOption::WindowScale(10),
            ]
        );
        let o = Options::parse(&SYN_OPTIONS).unwrap();
        assert_eq!(
            (o.mss, o.wscale, o.sack_permitted),
            (Some(1460), Some(10), true)
        );
        assert_eq!(o.timestamp, Some((0x4b20_9433, 0)));
        let mut out = [0u8; 20];
        o.emit(&mut out);
        assert_eq!(out, SYN_OPTIONS, "re-emitted in Linux's layout");
        assert_eq!(o.buffer_len(), 20);
    }

    #[test]
    fn sack_blocks() {
        let o = Options::parse(&SACK_OPTIONS).unwrap();
        assert_eq!(o.sack_blocks(), &[(0x1000, 0x2000), (0x3000, 0x4000)]);
        assert_eq!(o.timestamp, Some((7, 9)));
        let mut out = [0u8; 32];
        o.emit(&mut out);
        assert_eq!(out, SACK_OPTIONS);
        let Some(Ok(TcpOption::Sack(blocks))) = OptionsIter::new(&SACK_OPTIONS[12..]).nth(2) else {
            panic!("no SACK option")
        };
        assert_eq!(blocks.count(), 2);
    }

    #[test]
    fn what_cannot_be_right_is_refused() {
        for bad in [
            &[2, 4, 0xff][..],   // runs past the header
            &[2, 1],             // length under 2
            &[2, 3, 0],          // MSS with the wrong length
            &[3, 4, 0, 0],       // window scale with the wrong length
            &[5, 6, 0, 0, 0, 0], // a SACK block cut short
            &[99],               // no length byte
        ] {
            assert_eq!(Options::parse(bad), Err(DropReason::BadOption), "{bad:?}");
        }
        assert!(
            Options::parse(&[99, 3, 0, 1, 1, 1]).is_ok(),
            "unknown options are skipped"
        );
        assert!(
            Options::parse(&[0, 0xde, 0xad]).is_ok(),
            "nothing after EOL is read"
        );
        assert_eq!(Options::parse(&[3, 3, 200]).unwrap().wscale, Some(14));
        // After an error the iterator ends.
        let mut it = OptionsIter::new(&[2, 9, 1, 1]);
        assert_eq!(it.next(), Some(Err(DropReason::BadOption)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn sack_blocks_that_do_not_fit_are_left_out() {
        let mut o = Options {
            mss: Some(1460),
            timestamp: Some((1, 2)),
            wscale: Some(7),
            ..Options::default()
        };
        o.set_sack([(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]);
        assert_eq!(o.sack_len, 4, "four blocks at most");
        // 4 + 12 + 4 = 20 bytes before SACK: room for two blocks.
        assert_eq!(o.buffer_len(), 40);
        let mut out = [0u8; 40];
        o.emit(&mut out);
        assert_eq!(
            Options::parse(&out).unwrap().sack_blocks(),
            &[(1, 2), (3, 4)]
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..MAX_LEN)) {
            for _ in OptionsIter::new(&bytes) {}
            let _ = Options::parse(&bytes);
        }
    }
}
