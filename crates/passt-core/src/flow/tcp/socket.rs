//! The host socket as the TCP flow logic sees it: the few operations it
//! needs, so that the logic can run over a kernel socket in the engine and
//! over an in-memory one in unit tests. Nothing here may block.

use std::io;
use std::net::SocketAddr;

use crate::sys::tcp::{Read, TcpSocket};

/// A non-blocking, connected (or connecting) stream socket that keeps
/// received data until told to drop it.
pub trait FlowSocket: Sized {
    /// Starts connecting to `dst`; completion shows as writability, then
    /// `take_error` says how it went.
    fn connect(dst: SocketAddr) -> io::Result<Self>;
    /// As `connect`, bound first to `src` (a policy's source address).
    fn connect_from(dst: SocketAddr, src: SocketAddr) -> io::Result<Self>;
    /// The socket's own address, for flow records.
    fn local(&self) -> Option<SocketAddr>;
    /// The pending error (the connect result), cleared.
    fn take_error(&self) -> io::Result<Option<io::Error>>;
    /// Where the next `peek` starts, in bytes from the head of the
    /// receive queue (`SO_PEEK_OFF`).
    fn set_peek_offset(&self, off: u32) -> io::Result<()>;
    /// Copies received data from the peek offset on, without consuming it,
    /// and moves the offset past it.
    fn peek(&self, buf: &mut [u8]) -> io::Result<Read>;
    /// Drops up to `n` bytes from the head of the receive queue.
    fn discard(&self, n: usize) -> io::Result<usize>;
    /// Sends what the socket takes now; 0 if it takes nothing.
    fn send(&self, data: &[u8]) -> io::Result<usize>;
    fn shutdown_write(&self) -> io::Result<()>;
    /// Makes closing send a RST instead of a FIN.
    fn set_reset_on_close(&self);
    /// Free space in the send buffer.
    fn send_space(&self) -> io::Result<u32>;
}

impl FlowSocket for TcpSocket {
    // Peek offsets make MSG_PEEK continue where the last peek ended:
    // flows read through them (the splice path does not).
    fn connect(dst: SocketAddr) -> io::Result<Self> {
        let s = TcpSocket::connect(dst)?;
        s.set_peek_offset(0)?;
        Ok(s)
    }

    fn connect_from(dst: SocketAddr, src: SocketAddr) -> io::Result<Self> {
        let s = TcpSocket::connect_from(dst, src)?;
        s.set_peek_offset(0)?;
        Ok(s)
    }

    fn local(&self) -> Option<SocketAddr> {
        self.local_sock().ok()
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        TcpSocket::take_error(self)
    }

    fn set_peek_offset(&self, off: u32) -> io::Result<()> {
        TcpSocket::set_peek_offset(self, off)
    }

    fn peek(&self, buf: &mut [u8]) -> io::Result<Read> {
        TcpSocket::peek(self, buf)
    }

    fn discard(&self, n: usize) -> io::Result<usize> {
        TcpSocket::discard(self, n)
    }

    fn send(&self, data: &[u8]) -> io::Result<usize> {
        TcpSocket::send(self, data)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        TcpSocket::shutdown_write(self)
    }

    fn set_reset_on_close(&self) {
        TcpSocket::set_reset_on_close(self);
    }

    fn send_space(&self) -> io::Result<u32> {
        TcpSocket::send_space(self)
    }
}
