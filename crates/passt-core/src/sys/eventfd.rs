//! eventfd used as a waker: any thread may signal it, the engine thread
//! drains it from its epoll loop.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::eventfd::{eventfd, EfdFlags};

pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub fn new() -> io::Result<Self> {
        Ok(EventFd {
            fd: super::owned(eventfd(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK))?,
        })
    }

    /// Adds one to the counter. A full counter (EAGAIN) already means
    /// "wake up", so it is not an error.
    pub fn signal(&self) -> io::Result<()> {
        match nix::unistd::write(self.fd.as_raw_fd(), &1u64.to_ne_bytes()) {
            Ok(_) | Err(Errno::EAGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Resets the counter; returns how many signals were pending.
    pub fn drain(&self) -> io::Result<u64> {
        super::read_counter(self.fd.as_raw_fd())
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
