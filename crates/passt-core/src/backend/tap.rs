//! pasta mode's guest link: a tap device inside the namespace, opened by
//! the namespace agent (`IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`,
//! non-blocking). One read is one frame and one write is one frame, each
//! behind a virtio-net header (`vnet`). Like a NIC, the tap drops what it
//! cannot take: a frame the kernel refuses (queue full) is counted and
//! dropped, and the guest's TCP recovers it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::txqueue::TxQueue;
use super::vnet;

/// Largest frame: the tap MTU (65520) plus Ethernet and virtio-net
/// headers, rounded up.
const FRAME_MAX: usize = 65536 + 256;
/// Frames read per `receive` call before yielding to other descriptors.
const MAX_READS: usize = 128;

pub struct Tap {
    fd: OwnedFd,
    buf: Box<[u8]>,
}

impl Tap {
    pub fn new(fd: OwnedFd) -> Self {
        Tap {
            fd,
            buf: vec![0; FRAME_MAX].into_boxed_slice(),
        }
    }

    /// Reads available frames, calling `frame` for each with what its
    /// virtio-net header says (the caller drops `Unsupported` ones).
    pub fn receive(&mut self, mut frame: impl FnMut(&[u8], vnet::Rx)) -> io::Result<()> {
        for _ in 0..MAX_READS {
            match nix::unistd::read(self.fd.as_raw_fd(), &mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) if n < vnet::LEN => frame(&[], vnet::Rx::Unsupported),
                Ok(n) => frame(&self.buf[vnet::LEN..n], vnet::parse(&self.buf[..vnet::LEN])),
                Err(nix::errno::Errno::EAGAIN) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes each queued frame; returns how many were dropped.
    pub fn send(&mut self, q: &TxQueue) -> io::Result<usize> {
        let mut dropped = 0;
        for f in q.records() {
            match nix::unistd::write(self.fd.as_raw_fd(), f) {
                Ok(_) => {}
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::ENOBUFS) => dropped += 1,
                // The interface is down or the frame is malformed for the
                // kernel: drop this one, keep going.
                Err(nix::errno::Errno::EIO | nix::errno::Errno::EINVAL) => dropped += 1,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(dropped)
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
