//! Raw socket creation with numeric arguments, as the namespace agent
//! receives them.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// The address family of IPv6 (`v6`) or IPv4 sockets.
pub fn family(v6: bool) -> i32 {
    if v6 {
        libc::AF_INET6
    } else {
        libc::AF_INET
    }
}

pub fn socket(domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; close-on-exec so the command never inherits it.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
