//! Frames waiting to go to the guest, collected while a batch of guest
//! frames or socket events is handled and then written in as few system
//! calls as the backend allows. Storage is allocated once and reused.
//!
//! Each frame is stored behind the header its backend wants: qemu's
//! 4-byte length prefix, so the stream backend sends the whole queue as
//! one contiguous buffer, or the tap's virtio-net header, so each record
//! is one write.

use std::ops::Range;

use super::framing::{prefix, PREFIX};
use super::vnet;

/// The header in front of each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// qemu's stream: a 4-byte big-endian length.
    Length,
    /// pasta's tap: a virtio-net header (checksum offload).
    Vnet,
}

pub struct TxQueue {
    buf: Vec<u8>,
    /// Ranges of whole records (header + frame) in `buf`.
    frames: Vec<Range<usize>>,
    limit: usize,
    header: Header,
    /// Checksums completed here even where the header could leave them.
    no_offload: bool,
}

impl TxQueue {
    /// A queue holding at most `bytes` of frames (a bound on buffering,
    /// not on frame size: one frame is always accepted into an empty queue).
    pub fn new(bytes: usize) -> Self {
        TxQueue {
            buf: Vec::with_capacity(bytes),
            frames: Vec::with_capacity(1024),
            limit: bytes,
            header: Header::Length,
            no_offload: false,
        }
    }

    /// Chooses the header (before anything is queued).
    pub fn set_header(&mut self, header: Header) {
        debug_assert!(self.is_empty());
        self.header = header;
    }

    /// Whether frames may leave their checksums to the device, where the
    /// header can say so (on unless told otherwise).
    pub fn set_checksum_offload(&mut self, on: bool) {
        self.no_offload = !on;
    }

    /// Whether a frame may leave its TCP/UDP checksum to the device
    /// (`push_partial`).
    pub fn offloads_checksum(&self) -> bool {
        self.header == Header::Vnet && !self.no_offload
    }

    fn head(&self) -> usize {
        match self.header {
            Header::Length => PREFIX,
            Header::Vnet => vnet::LEN,
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
        self.push_with(len, None, fill)
    }

    /// As `push`, for a frame whose checksum (of the layer starting at
    /// byte `start`, stored at `start + offset`) holds the pseudo-header
    /// sum only, for the device to complete. Only when
    /// `offloads_checksum`.
    pub fn push_partial(
        &mut self,
        len: usize,
        csum: (u16, u16),
        fill: impl FnOnce(&mut [u8]),
    ) -> bool {
        debug_assert!(self.offloads_checksum());
        self.push_with(len, Some(csum), fill)
    }

    fn push_with(
        &mut self,
        len: usize,
        csum: Option<(u16, u16)>,
        fill: impl FnOnce(&mut [u8]),
    ) -> bool {
        let head = self.head();
        if !self.frames.is_empty() && self.buf.len() + head + len > self.limit {
            return false;
        }
        let start = self.buf.len();
        self.buf.resize(start + head + len, 0);
        match self.header {
            Header::Length => self.buf[start..start + head].copy_from_slice(&prefix(len)),
            Header::Vnet => vnet::emit(&mut self.buf[start..start + head], csum),
        }
        fill(&mut self.buf[start + head..]);
        self.frames.push(start..self.buf.len());
        true
    }

    /// Copies a finished frame in.
    pub fn push_frame(&mut self, frame: &[u8]) -> bool {
        self.push(frame.len(), |b| b.copy_from_slice(frame))
    }

    /// The frames, without headers.
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let head = self.head();
        self.frames
            .iter()
            .map(move |r| &self.buf[r.start + head..r.end])
    }

    /// Each frame with its header (one tap write each).
    pub fn records(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.frames.iter().map(|r| &self.buf[r.clone()])
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
    fn vnet_records_carry_the_checksum_request() {
        let mut q = TxQueue::new(1000);
        q.set_header(Header::Vnet);
        assert!(q.push_frame(&[1, 2]));
        assert!(q.push_partial(3, (34, 16), |b| b.copy_from_slice(&[7, 8, 9])));
        assert_eq!(
            q.frames().collect::<Vec<_>>(),
            vec![&[1, 2][..], &[7, 8, 9][..]]
        );
        let r: Vec<_> = q.records().collect();
        assert_eq!(r[0], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(r[1], &[1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 7, 8, 9]);
    }

    #[test]
    fn full_queue_refuses_but_never_a_first_frame() {
        let mut q = TxQueue::new(10);
        assert!(q.push_frame(&[0; 64]), "a lone frame always fits");
        assert!(!q.push_frame(&[0; 1]));
        assert_eq!(q.len(), 1);
    }
}
