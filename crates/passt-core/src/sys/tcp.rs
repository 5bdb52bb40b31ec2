//! TCP socket operations the translation layer needs: non-blocking
//! connect, peeking at received data past what the guest has not yet
//! acknowledged (`SO_PEEK_OFF`), discarding acknowledged data
//! (`MSG_TRUNC`), sending, half-closing, and resetting (`SO_LINGER` 0).

use std::io;

use super::socket::RawAddr;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    connect, getsockopt, recv, send, setsockopt, shutdown, sockopt, MsgFlags, Shutdown, SockaddrIn,
    SockaddrIn6,
};

pub struct TcpSocket {
    fd: OwnedFd,
}

fn sockaddr_connect(fd: i32, addr: SocketAddr) -> nix::Result<()> {
    match addr {
        SocketAddr::V4(a) => connect(fd, &SockaddrIn::from(a)),
        SocketAddr::V6(a) => connect(fd, &SockaddrIn6::from(a)),
    }
}

/// What a non-blocking read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Data(usize),
    /// Nothing now.
    WouldBlock,
    /// The peer closed its side (after all data).
    Eof,
}

impl TcpSocket {
    /// A non-blocking socket connecting to `dst`; completion is signalled
    /// by writability (then check `take_error`).
    pub fn connect(dst: SocketAddr) -> io::Result<Self> {
        let domain = if dst.is_ipv6() {
            libc::AF_INET6
        } else {
            libc::AF_INET
        };
        let fd = super::socket::socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)?;
        Self::connect_on(fd, dst)
    }

    /// As `connect`, from source address `src` (port 0: any).
    pub fn connect_from(dst: SocketAddr, src: SocketAddr) -> io::Result<Self> {
        let domain = if dst.is_ipv6() {
            libc::AF_INET6
        } else {
            libc::AF_INET
        };
        let fd = super::socket::socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)?;
        setsockopt(fd.as_raw_fd(), sockopt::ReuseAddr, &true)?;
        match src {
            SocketAddr::V4(a) => nix::sys::socket::bind(fd.as_raw_fd(), &SockaddrIn::from(a))?,
            SocketAddr::V6(a) => nix::sys::socket::bind(fd.as_raw_fd(), &SockaddrIn6::from(a))?,
        }
        Self::connect_on(fd, dst)
    }

    /// As `connect`, with a non-blocking socket made elsewhere (in pasta's
    /// namespace, by the agent), which connects within its namespace.
    pub fn connect_on(fd: OwnedFd, dst: SocketAddr) -> io::Result<Self> {
        let s = TcpSocket { fd };
        setsockopt(s.raw(), sockopt::TcpNoDelay, &true)?;
        match sockaddr_connect(s.raw(), dst) {
            Ok(()) | Err(Errno::EINPROGRESS) => Ok(s),
            Err(e) => Err(e.into()),
        }
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The pending socket error (connect result), cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let e = getsockopt(self.raw(), sockopt::SocketError)?;
        Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
    }

    /// Where the next MSG_PEEK starts, in bytes from the head of the
    /// receive queue.
    pub fn set_peek_offset(&self, off: u32) -> io::Result<()> {
        let v = off as libc::c_int;
        // SAFETY: valid descriptor, pointer to an int of the right size.
        let r = unsafe {
            libc::setsockopt(
                self.raw(),
                libc::SOL_SOCKET,
                libc::SO_PEEK_OFF,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Copies received, not yet peeked data into `buf` without consuming it.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<Read> {
        match recv(self.raw(), buf, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT) {
            Ok(0) if !buf.is_empty() => Ok(Read::Eof),
            Ok(n) => Ok(Read::Data(n)),
            Err(Errno::EAGAIN) => Ok(Read::WouldBlock),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops `n` bytes from the head of the receive queue (acknowledged
    /// by the guest).
    pub fn discard(&self, n: usize) -> io::Result<usize> {
        let mut done = 0;
        while done < n {
            // SAFETY: with MSG_TRUNC a TCP socket discards without copying;
            // a null buffer is allowed.
            let r = unsafe {
                libc::recv(
                    self.raw(),
                    std::ptr::null_mut(),
                    n - done,
                    libc::MSG_TRUNC | libc::MSG_DONTWAIT,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    break;
                }
                return Err(e);
            }
            if r == 0 {
                break;
            }
            done += r as usize;
        }
        Ok(done)
    }

    /// Sends what the socket takes now; 0 if it takes nothing.
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        match send(
            self.raw(),
            data,
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(n) => Ok(n),
            Err(Errno::EAGAIN) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    pub fn shutdown_write(&self) -> io::Result<()> {
        match shutdown(self.raw(), Shutdown::Write) {
            Ok(()) | Err(Errno::ENOTCONN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes closing send a RST instead of a FIN.
    pub fn set_reset_on_close(&self) {
        let l = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        let _ = setsockopt(self.raw(), sockopt::Linger, &l);
    }

    /// Free space in the send buffer as the kernel counts it (the socket
    /// takes a write while this is positive): SO_MEMINFO's send buffer
    /// size less what is queued, overhead included.
    pub fn send_space(&self) -> io::Result<u32> {
        const SO_MEMINFO: libc::c_int = 55;
        const SNDBUF: usize = 3;
        const WMEM_QUEUED: usize = 5;
        let mut info = [0u32; 16];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: `info` has room for `len` bytes; the kernel writes fewer.
        let r = unsafe {
            libc::getsockopt(
                self.raw(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(info[SNDBUF].saturating_sub(info[WMEM_QUEUED]))
    }

    pub fn local_addr(&self) -> io::Result<IpAddr> {
        self.local_sock().map(|a| a.ip())
    }

    /// The socket's own address and port.
    pub fn local_sock(&self) -> io::Result<SocketAddr> {
        let a: nix::sys::socket::SockaddrStorage = nix::sys::socket::getsockname(self.raw())?;
        a.as_sockaddr_in()
            .map(|a| SocketAddr::new(std::net::Ipv4Addr::from(a.ip()).into(), a.port()))
            .or_else(|| {
                a.as_sockaddr_in6()
                    .map(|a| SocketAddr::new(IpAddr::V6(a.ip()), a.port()))
            })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A listening socket for a forward (`-t`, or `-T` in the namespace).
pub struct TcpListener {
    fd: OwnedFd,
    /// Where it listens, read once: the engine asks on every accept.
    local: SocketAddr,
}

impl TcpListener {
    /// Listens on `addr` (non-blocking, SO_REUSEADDR; IPv6 sockets are
    /// IPv6-only, the IPv4 side has a socket of its own).
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::bind_device(addr, None)
    }

    /// As `bind`, and with a `device`, only for connections arriving
    /// through that interface (`SO_BINDTODEVICE`, which an ordinary user
    /// may set on a socket not yet bound to one).
    pub fn bind_device(addr: SocketAddr, device: Option<&str>) -> io::Result<Self> {
        let domain = if addr.is_ipv6() {
            libc::AF_INET6
        } else {
            libc::AF_INET
        };
        let fd = super::socket::socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)?;
        if let Some(dev) = device {
            setsockopt(fd.as_raw_fd(), sockopt::BindToDevice, &dev.into())?;
        }
        Self::listen_on(fd, addr)
    }

    /// Binds and listens with a socket made elsewhere (in pasta's
    /// namespace, by the agent): it listens in the namespace it was
    /// created in. The socket must be non-blocking.
    pub fn listen_on(fd: OwnedFd, addr: SocketAddr) -> io::Result<Self> {
        let raw = fd.as_raw_fd();
        setsockopt(raw, sockopt::ReuseAddr, &true)?;
        if addr.is_ipv6() {
            setsockopt(raw, sockopt::Ipv6V6Only, &true)?;
        }
        match addr {
            SocketAddr::V4(a) => nix::sys::socket::bind(raw, &SockaddrIn::from(a))?,
            SocketAddr::V6(a) => nix::sys::socket::bind(raw, &SockaddrIn6::from(a))?,
        }
        nix::sys::socket::listen(raw, 1024)?;
        let local = Self::bound(&fd)?;
        Ok(TcpListener { fd, local })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn bound(fd: &OwnedFd) -> io::Result<SocketAddr> {
        let a: nix::sys::socket::SockaddrStorage = nix::sys::socket::getsockname(fd.as_raw_fd())?;
        a.as_sockaddr_in()
            .map(|a| SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::from(a.ip())), a.port()))
            .or_else(|| {
                a.as_sockaddr_in6()
                    .map(|a| SocketAddr::new(IpAddr::V6(a.ip()), a.port()))
            })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
    }

    /// A waiting connection and its peer, if any.
    pub fn accept(&self) -> io::Result<Option<(TcpSocket, SocketAddr)>> {
        let mut peer = RawAddr::empty();
        let mut len = std::mem::size_of::<RawAddr>() as libc::socklen_t;
        // SAFETY: `peer` has room for `len` bytes, which the kernel updates.
        let raw = unsafe {
            libc::accept4(
                self.fd.as_raw_fd(),
                peer.as_mut_ptr(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if raw < 0 {
            return match Errno::last() {
                Errno::EAGAIN | Errno::ECONNABORTED => Ok(None),
                e => Err(e.into()),
            };
        }
        // SAFETY: accept4 returned a new descriptor.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        let s = TcpSocket { fd };
        setsockopt(s.raw(), sockopt::TcpNoDelay, &true)?;
        let peer = peer
            .get(len)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
        Ok(Some((s, peer)))
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
