//! An in-memory `FlowSocket` for the flow logic's unit tests: a send
//! buffer of settable capacity, a receive queue with `SO_PEEK_OFF`
//! semantics, an EOF flag, a connect result the test sets, and flags for
//! what the flow did to it (shutdown, reset on close).
//!
//! `FakeSocket` is a handle: the flow owns one, the test keeps a clone and
//! looks at or changes the same state.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use super::socket::FlowSocket;
use crate::sys::tcp::Read;

/// The state behind a `FakeSocket`, open to the test.
#[derive(Debug)]
pub struct State {
    /// Where `connect` was asked to go (None for an accepted socket).
    pub dst: Option<SocketAddr>,
    /// The connect result `take_error` reports (once).
    pub connect_error: Option<i32>,
    /// Received from the host peer, not yet discarded.
    pub rx: VecDeque<u8>,
    /// Where the next peek starts, from the head of `rx`.
    pub peek_off: usize,
    /// The host peer closed its side (after everything in `rx`).
    pub eof: bool,
    /// Taken from the flow and not yet read by the host peer.
    pub tx: Vec<u8>,
    /// Read by the host peer (`drain`), in order.
    pub delivered: Vec<u8>,
    /// Most bytes `tx` holds: `send` takes only what fits.
    pub capacity: usize,
    pub shut_wr: bool,
    pub reset_on_close: bool,
    /// Every `discard` request, in order.
    pub discards: Vec<usize>,
}

impl Default for State {
    fn default() -> Self {
        State {
            dst: None,
            connect_error: None,
            rx: VecDeque::new(),
            peek_off: 0,
            eof: false,
            tx: Vec::new(),
            delivered: Vec::new(),
            capacity: 1 << 20,
            shut_wr: false,
            reset_on_close: false,
            discards: Vec::new(),
        }
    }
}

#[derive(Clone, Default)]
pub struct FakeSocket(Rc<RefCell<State>>);

thread_local! {
    /// Sockets `connect` made, newest last (tests run one per thread).
    static CONNECTED: RefCell<Vec<FakeSocket>> = const { RefCell::new(Vec::new()) };
    /// Whether the next `connect` fails at once.
    static REFUSE_NEXT: Cell<bool> = const { Cell::new(false) };
}

impl FakeSocket {
    pub fn new() -> Self {
        FakeSocket::default()
    }

    /// The socket the flow logic's latest `connect` made.
    pub fn last_connected() -> Option<FakeSocket> {
        CONNECTED.with(|c| c.borrow().last().cloned())
    }

    pub fn connected_count() -> usize {
        CONNECTED.with(|c| c.borrow().len())
    }

    /// Makes the next `connect` fail before any event (no route, say).
    pub fn refuse_next_connect() {
        REFUSE_NEXT.with(|r| r.set(true));
    }

    pub fn state(&self) -> std::cell::RefMut<'_, State> {
        self.0.borrow_mut()
    }

    /// The host peer sends `data`.
    pub fn host_sends(&self, data: &[u8]) {
        self.state().rx.extend(data);
    }

    /// The host peer reads up to `n` bytes of what the flow sent.
    pub fn drain(&self, n: usize) {
        let mut s = self.state();
        let n = n.min(s.tx.len());
        let taken: Vec<u8> = s.tx.drain(..n).collect();
        s.delivered.extend(taken);
    }

    /// Everything the flow sent, read or not.
    pub fn all_sent(&self) -> Vec<u8> {
        let s = self.state();
        let mut all = s.delivered.clone();
        all.extend(&s.tx);
        all
    }
}

impl FlowSocket for FakeSocket {
    fn connect(dst: SocketAddr) -> io::Result<Self> {
        if REFUSE_NEXT.with(|r| r.replace(false)) {
            return Err(io::Error::from_raw_os_error(libc::ENETUNREACH));
        }
        let s = FakeSocket::new();
        s.state().dst = Some(dst);
        CONNECTED.with(|c| c.borrow_mut().push(s.clone()));
        Ok(s)
    }

    fn connect_from(dst: SocketAddr, _src: SocketAddr) -> io::Result<Self> {
        Self::connect(dst)
    }

    fn local(&self) -> Option<SocketAddr> {
        None
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self
            .state()
            .connect_error
            .take()
            .map(io::Error::from_raw_os_error))
    }

    fn set_peek_offset(&self, off: u32) -> io::Result<()> {
        self.state().peek_off = off as usize;
        Ok(())
    }

    fn peek(&self, buf: &mut [u8]) -> io::Result<Read> {
        let mut s = self.state();
        let avail = s.rx.len().saturating_sub(s.peek_off);
        if avail == 0 {
            return Ok(if s.eof { Read::Eof } else { Read::WouldBlock });
        }
        let n = avail.min(buf.len());
        let start = s.peek_off;
        for (b, x) in buf.iter_mut().zip(s.rx.range(start..start + n)) {
            *b = *x;
        }
        s.peek_off += n;
        Ok(Read::Data(n))
    }

    fn discard(&self, n: usize) -> io::Result<usize> {
        let mut s = self.state();
        s.discards.push(n);
        let n = n.min(s.rx.len());
        s.rx.drain(..n);
        // As the kernel does: the peek offset counts from the head.
        s.peek_off = s.peek_off.saturating_sub(n);
        Ok(n)
    }

    fn send(&self, data: &[u8]) -> io::Result<usize> {
        let mut s = self.state();
        if s.shut_wr {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        let n = data.len().min(s.capacity.saturating_sub(s.tx.len()));
        s.tx.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.state().shut_wr = true;
        Ok(())
    }

    fn set_reset_on_close(&self) {
        self.state().reset_on_close = true;
    }

    fn send_space(&self) -> io::Result<u32> {
        let s = self.state();
        Ok(s.capacity.saturating_sub(s.tx.len()) as u32)
    }
}
