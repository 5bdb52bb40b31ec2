//! Process descriptors: a pidfd becomes readable when the process exits,
//! so a child's exit can be waited for in the same poll as sockets.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Takes ownership of descriptor `fd` inherited from the parent process.
///
/// Returns an error if `fd` is not open.
pub fn inherited(fd: i32) -> io::Result<OwnedFd> {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)?;
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    // SAFETY: the descriptor is open and nothing else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Spawns `cmd` with `fd` installed as descriptor `target` in the child
/// (and without close-on-exec there), and our standard input, output and
/// error inherited even if they are marked close-on-exec (Node marks them).
pub fn spawn_with_fd(
    cmd: &mut std::process::Command,
    fd: &OwnedFd,
    target: i32,
) -> io::Result<std::process::Child> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let src = fd.as_raw_fd();
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe calls (dup2, fcntl), with no allocation.
    unsafe {
        cmd.pre_exec(move || {
            for std_fd in 0..=2 {
                let flags = libc::fcntl(std_fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(std_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                }
            }
            if src == target {
                let flags = libc::fcntl(target, libc::F_GETFD);
                if flags < 0 || libc::fcntl(target, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(src, target) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
    cmd.spawn()
}

/// The soft limit on open descriptors (`RLIMIT_NOFILE`).
pub fn descriptor_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}
