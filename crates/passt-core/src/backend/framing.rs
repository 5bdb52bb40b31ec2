//! qemu's stream framing (`-netdev stream`, `-net socket`): every Ethernet
//! frame (no FCS) travels behind its length as a 32-bit big-endian
//! integer. A read may hold many frames and may end anywhere, even inside
//! a length prefix, so the receive side carries the unfinished tail over
//! to the next read.
//!
//! Invariants of `StreamRx`: `buf[start..end]` holds bytes received and not
//! yet consumed, always beginning at a length prefix; `start <= end <=
//! buf.len()`; the buffer is allocated once. A length larger than
//! `MAX_FRAME` means the peer and we disagree on where frames start: that
//! stream can never be read again, and the caller must reset it.

use std::ops::Range;

/// Length prefix size.
pub const PREFIX: usize = 4;
/// Largest frame accepted: the largest IP packet (65535 bytes) plus an
/// Ethernet header, rounded up to what qemu may send with a VLAN tag.
pub const MAX_FRAME: usize = 65535 + 18;

/// A length prefix no frame can have: the stream is out of sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadLength(pub u32);

/// Receive buffer for one stream connection.
pub struct StreamRx {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl StreamRx {
    /// `capacity` bounds how much one read can take; it must hold at least
    /// one largest frame with its prefix.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(PREFIX + MAX_FRAME);
        StreamRx {
            buf: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Where the next read should write. Moves an unfinished frame to the
    /// front first, so there is always room to complete it.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Records that a read put `n` bytes into `spare()`.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next complete frame, if one is buffered. `Err` means the stream
    /// is desynchronised; the caller must drop the connection.
    pub fn next_frame(&mut self) -> Option<Result<Range<usize>, BadLength>> {
        let avail = self.end - self.start;
        if avail < PREFIX {
            return None;
        }
        let p = self.start;
        let len = u32::from_be_bytes([
            self.buf[p],
            self.buf[p + 1],
            self.buf[p + 2],
            self.buf[p + 3],
        ]);
        if len as usize > MAX_FRAME {
            return Some(Err(BadLength(len)));
        }
        let total = PREFIX + len as usize;
        if avail < total {
            return None;
        }
        self.start += total;
        Some(Ok(p + PREFIX..p + total))
    }

    /// The bytes of a frame returned by `next_frame`, valid until the next
    /// call to `spare`.
    pub fn frame(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Forgets everything buffered (a new connection starts clean).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

/// The prefix qemu expects in front of a frame of `len` bytes.
pub fn prefix(len: usize) -> [u8; PREFIX] {
    (len as u32).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            out.extend_from_slice(&prefix(f.len()));
            out.extend_from_slice(f);
        }
        out
    }

    /// Feeds `bytes` in reads of `chunk` bytes, collecting the frames.
    fn feed(rx: &mut StreamRx, mut bytes: &[u8], chunk: usize) -> Result<Vec<Vec<u8>>, BadLength> {
        let mut got = Vec::new();
        while !bytes.is_empty() {
            let spare = rx.spare();
            let n = chunk.min(spare.len()).min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            rx.filled(n);
            bytes = &bytes[n..];
            while let Some(r) = rx.next_frame() {
                got.push(rx.frame(r?).to_vec());
            }
        }
        Ok(got)
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let a = vec![0xaa; 60];
        let b = vec![0xbb; 1514];
        let c = vec![0xcc; MAX_FRAME];
        let bytes = stream(&[&a, &b, &c, &a]);
        for chunk in [1, 3, 4, 5, 63, 64, 1000, 65536, bytes.len()] {
            let mut rx = StreamRx::new(0);
            let got = feed(&mut rx, &bytes, chunk).unwrap();
            assert_eq!(
                got,
                vec![a.clone(), b.clone(), c.clone(), a.clone()],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn oversized_length_desynchronises() {
        let mut bytes = stream(&[&[1u8; 20]]);
        bytes.extend_from_slice(&((MAX_FRAME as u32) + 1).to_be_bytes());
        bytes.extend_from_slice(&[0; 8]);
        let mut rx = StreamRx::new(0);
        assert_eq!(
            feed(&mut rx, &bytes, 7),
            Err(BadLength(MAX_FRAME as u32 + 1))
        );
    }

    #[test]
    fn empty_frames_are_frames() {
        // Zero-length frames are framed correctly; the L2 parser drops them.
        let bytes = stream(&[&[], &[7u8; 3]]);
        let mut rx = StreamRx::new(0);
        assert_eq!(
            feed(&mut rx, &bytes, 2).unwrap(),
            vec![vec![], vec![7u8; 3]]
        );
    }

    #[test]
    fn clear_forgets_a_partial_frame() {
        let mut rx = StreamRx::new(0);
        feed(&mut rx, &stream(&[&[1u8; 100]])[..50], 50).unwrap();
        rx.clear();
        let got = feed(&mut rx, &stream(&[&[2u8; 10]]), 100).unwrap();
        assert_eq!(got, vec![vec![2u8; 10]]);
    }
}
