//! Every system call the engine makes goes through this module: it is the
//! only place with `unsafe` code. Each wrapper owns its file descriptor as
//! an `OwnedFd`, so dropping the wrapper closes it; the engine relies on
//! that to leave no descriptor behind when it stops.
#![allow(unsafe_code)]

mod epoll;
mod eventfd;
pub mod fdpass;
pub mod ns;
pub mod ping;
pub mod pipe;
pub mod process;
pub mod socket;
pub mod tcp;
mod timerfd;
pub mod tun;
pub mod udp;

pub use epoll::{Epoll, Events};
pub use eventfd::EventFd;
pub use timerfd::IntervalTimer;

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Reads the 8-byte counter of an eventfd or timerfd (0 if not readable).
fn read_counter(fd: RawFd) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    match nix::unistd::read(fd, &mut buf) {
        Ok(_) => Ok(u64::from_ne_bytes(buf)),
        Err(nix::errno::Errno::EAGAIN) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Takes ownership of a descriptor a nix call just returned.
fn owned(result: nix::Result<RawFd>) -> io::Result<OwnedFd> {
    let fd = result.map_err(io::Error::from)?;
    // SAFETY: the call succeeded, so `fd` is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
