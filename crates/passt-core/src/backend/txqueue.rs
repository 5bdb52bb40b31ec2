//! Frames waiting to go to the guest, collected while a batch of guest
//! frames or socket events is handled and then written in as few system
//! calls as the backend allows. Storage is allocated once and reused.
//!
//! Each frame is stored behind room for qemu's 4-byte length prefix, so
//! the stream backend sends the whole queue as one contiguous buffer and
//! the tap backend skips the prefix.

use std::ops::Range;

use super::framing::{prefix, PREFIX};

pub struct TxQueue {
    buf: Vec<u8>,
    /// Ranges of whole records (prefix + frame) in `buf`.
    frames: Vec<Range<usize>>,
    limit: usize,
}

impl TxQueue {
    /// A queue holding at most `bytes` of frames (a bound on buffering,
    /// not on frame size: one frame is always accepted into an empty queue).
    pub fn new(bytes: usize) -> Self {
        TxQueue {
            buf: Vec::with_capacity(bytes),
            frames: Vec::with_capacity(1024),
            limit: bytes,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Appends a frame of `len` bytes written by `fill`; `false` (and
    /// nothing queued) if the queue is full: the caller counts a drop.
    pub fn push(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        if !self.frames.is_empty() && self.buf.len() + PREFIX + len > self.limit {
            return false;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&prefix(len));
        self.buf.resize(start + PREFIX + len, 0);
        fill(&mut self.buf[start + PREFIX..]);
        self.frames.push(start..self.buf.len());
        true
    }

    /// Copies a finished frame in.
    pub fn push_frame(&mut self, frame: &[u8]) -> bool {
        self.push(frame.len(), |b| b.copy_from_slice(frame))
    }

    /// The frames, without prefixes.
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.frames
            .iter()
            .map(|r| &self.buf[r.start + PREFIX..r.end])
    }

    /// All records with their prefixes, back to back (qemu's wire format).
    pub fn stream_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_stream_views_agree() {
        let mut q = TxQueue::new(1000);
        assert!(q.push_frame(&[1, 2, 3]));
        assert!(q.push(2, |b| b.copy_from_slice(&[9, 9])));
        assert_eq!(
            q.frames().collect::<Vec<_>>(),
            vec![&[1, 2, 3][..], &[9, 9][..]]
        );
        assert_eq!(q.stream_bytes(), &[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 2, 9, 9]);
        q.clear();
        assert!(q.is_empty());
    }

    #[test]
    fn full_queue_refuses_but_never_a_first_frame() {
        let mut q = TxQueue::new(10);
        assert!(q.push_frame(&[0; 64]), "a lone frame always fits");
        assert!(!q.push_frame(&[0; 1]));
        assert_eq!(q.len(), 1);
    }
}
