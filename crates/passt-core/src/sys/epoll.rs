//! epoll instance. Registrations carry a caller-chosen u64 (the engine's
//! packed token), so an event never needs a syscall to be classified.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{
    epoll_create1, epoll_ctl, epoll_wait, EpollCreateFlags, EpollEvent, EpollFlags, EpollOp,
};

pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Self> {
        Ok(Epoll {
            fd: super::owned(epoll_create1(EpollCreateFlags::EPOLL_CLOEXEC))?,
        })
    }

    /// Registers `fd` for readability, tagged with `data`.
    pub fn add_readable(&self, fd: impl AsFd, data: u64) -> io::Result<()> {
        self.ctl(EpollOp::EpollCtlAdd, fd, EpollFlags::EPOLLIN, data)
    }

    /// Changes whether `fd` is also watched for writability.
    pub fn set_writable(&self, fd: impl AsFd, data: u64, writable: bool) -> io::Result<()> {
        let mut flags = EpollFlags::EPOLLIN;
        if writable {
            flags |= EpollFlags::EPOLLOUT;
        }
        self.ctl(EpollOp::EpollCtlMod, fd, flags, data)
    }

    /// Registers a stream socket edge-triggered: one event per arrival of
    /// data (or FIN), writability only if `writable`. Data a TCP flow
    /// leaves queued (sent to the guest, not yet acknowledged) would keep a
    /// level-triggered registration firing; the flow is pushed by the
    /// guest's ACKs and the timer instead.
    pub fn watch_stream(
        &self,
        fd: impl AsFd,
        data: u64,
        writable: bool,
        add: bool,
    ) -> io::Result<()> {
        let mut flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        if writable {
            flags |= EpollFlags::EPOLLOUT;
        }
        let op = if add {
            EpollOp::EpollCtlAdd
        } else {
            EpollOp::EpollCtlMod
        };
        self.ctl(op, fd, flags, data)
    }

    /// Registers (`add`) or re-registers `fd` level-triggered for what is
    /// asked; errors and hang-ups are reported either way.
    pub fn watch_level(
        &self,
        fd: impl AsFd,
        data: u64,
        read: bool,
        write: bool,
        add: bool,
    ) -> io::Result<()> {
        let mut flags = EpollFlags::empty();
        if read {
            flags |= EpollFlags::EPOLLIN;
        }
        if write {
            flags |= EpollFlags::EPOLLOUT;
        }
        let op = if add {
            EpollOp::EpollCtlAdd
        } else {
            EpollOp::EpollCtlMod
        };
        self.ctl(op, fd, flags, data)
    }

    pub fn delete(&self, fd: impl AsFd) -> io::Result<()> {
        epoll_ctl(
            self.fd.as_raw_fd(),
            EpollOp::EpollCtlDel,
            fd.as_fd().as_raw_fd(),
            None,
        )
        .map_err(io::Error::from)
    }

    fn ctl(&self, op: EpollOp, fd: impl AsFd, flags: EpollFlags, data: u64) -> io::Result<()> {
        let mut ev = EpollEvent::new(flags, data);
        epoll_ctl(self.fd.as_raw_fd(), op, fd.as_fd().as_raw_fd(), &mut ev).map_err(io::Error::from)
    }

    /// Waits for events; `None` blocks indefinitely. An interrupted wait
    /// returns no events rather than an error: the loop just goes round.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as isize);
        events.len = 0;
        match epoll_wait(self.fd.as_raw_fd(), &mut events.buf, ms) {
            Ok(n) => {
                events.len = n;
                Ok(())
            }
            Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A reusable buffer of ready events, allocated once.
pub struct Events {
    buf: Vec<EpollEvent>,
    len: usize,
}

impl Events {
    pub fn with_capacity(n: usize) -> Self {
        Events {
            buf: vec![EpollEvent::empty(); n.max(1)],
            len: 0,
        }
    }

    /// (data, readable, writable, error-or-hangup) for each ready event.
    pub fn iter(&self) -> impl Iterator<Item = (u64, bool, bool, bool)> + '_ {
        self.buf[..self.len].iter().map(|e| {
            let f = e.events();
            (
                e.data(),
                f.contains(EpollFlags::EPOLLIN),
                f.contains(EpollFlags::EPOLLOUT),
                f.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP),
            )
        })
    }
}
