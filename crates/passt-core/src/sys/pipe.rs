//! Pipes and `splice(2)`: the splice path moves a connection's bytes from
//! one socket into a pipe and from the pipe into the other socket without
//! copying them through user space.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The pipe capacity we ask for: larger than the default 64 KiB so that a
/// round moves a useful amount; refused beyond the user's pipe budget, in
/// which case the default stays.
const PIPE_SIZE: i32 = 1 << 20;

pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    /// What the kernel granted.
    pub capacity: usize,
}

impl Pipe {
    pub fn new() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both are new descriptors nobody else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor we own, integer arguments.
        let granted = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        let capacity = if granted > 0 {
            granted as usize
        } else {
            // SAFETY: as above.
            let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
            usize::try_from(size).unwrap_or(65536)
        };
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }
}

/// What one splice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    Bytes(usize),
    /// The source socket reached end of file.
    Eof,
    /// Nothing to take, or no room to put it.
    WouldBlock,
}

/// Moves up to `len` bytes from `from` to `to`, one of which must be a
/// pipe, without blocking.
pub fn splice(from: BorrowedFd, to: BorrowedFd, len: usize) -> io::Result<Moved> {
    // SAFETY: plain syscall on two borrowed descriptors, null offsets
    // (both are streams).
    let n = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    match n {
        0 => Ok(Moved::Eof),
        n if n > 0 => Ok(Moved::Bytes(n as usize)),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                Ok(Moved::WouldBlock)
            } else {
                Err(e)
            }
        }
    }
}

impl AsFd for Pipe {
    /// The write end (what a source splices into).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn bytes_go_through_a_pipe_between_two_sockets() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a2, _) = l.accept().unwrap();
        let b = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut b2, _) = l.accept().unwrap();
        // SPLICE_F_NONBLOCK covers the pipe only: the sockets must be
        // non-blocking themselves, as the engine's are.
        a2.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let p = Pipe::new().unwrap();
        assert!(p.capacity >= 4096);
        assert_eq!(
            splice(a2.as_fd(), p.write.as_fd(), 100).unwrap(),
            Moved::WouldBlock
        );
        a.write_all(b"spliced").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            splice(a2.as_fd(), p.write.as_fd(), 100).unwrap(),
            Moved::Bytes(7)
        );
        assert_eq!(
            splice(p.read.as_fd(), b.as_fd(), 7).unwrap(),
            Moved::Bytes(7)
        );
        let mut got = [0u8; 7];
        b2.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"spliced");
        drop(a);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            splice(a2.as_fd(), p.write.as_fd(), 100).unwrap(),
            Moved::Eof
        );
    }
}
