//! pasta's splice path: a TCP connection between the namespace and the
//! host's loopback carried as two sockets joined by `splice(2)`, with no
//! tap, no Ethernet and no copy through user space.
//!
//! A connection accepted on a `-T` listener in the namespace (side 0) is
//! joined to a non-blocking connect to the host's loopback (side 1); one
//! from the host's loopback to a `-t` port, to a connect to the
//! namespace's loopback, from a socket the agent made there. Each
//! direction has a pipe: bytes read from side `d` go into `pipes[d]` and
//! from there out of the other side. Side 0's data waits in its socket
//! until side 1 is connected; a refused connect resets side 0.
//!
//! Readiness is level-triggered, so interest must follow what could make
//! progress, or an idle flow would wake the loop forever: a side is read
//! while it has not reached EOF and its pipe has room, and written while
//! the other direction's pipe holds bytes it would not take. EOF from one
//! side becomes `shutdown(SHUT_WR)` on the other once its pipe is empty; a
//! flow ends when both directions are shut, or on an error either side,
//! which resets both (`SO_LINGER` 0).
//!
//! Invariants: `pending[d]` is the number of bytes in `pipes[d]`; a slot's
//! generation (7 bits, in the epoll token next to the side) changes when
//! it is reused, so stale events for a closed flow are ignored.

use std::io;
use std::os::fd::AsFd;

use std::time::Instant;

use super::record::{End, Meta, Recorder};
use crate::slab::Slab;
use crate::sys::pipe::{splice, Moved, Pipe};
use crate::sys::tcp::TcpSocket;

/// Splices per direction per event: a bound on one flow's share of a
/// round (each moves up to `CHUNK`).
const ROUNDS: usize = 8;

/// Most bytes one splice moves. Smaller steps than the pipe's megabyte
/// let the receiving side start on the first bytes while the rest are
/// read: a download through `-T` went from 0.97x to 1.18x of Debian
/// pasta's (netbench, 6 interleaved rounds; uploads unchanged), for
/// about 0.45 of a core instead of 0.17, as pasta spends.
const CHUNK: usize = 128 << 10;

/// Empty pipes kept for new flows.
const SPARE_PIPES: usize = 64;

/// Most concurrent spliced connections; more are refused.
pub const MAX_FLOWS: usize = 16384;

/// What epoll should watch a side for. A side with no interest is taken
/// out of epoll altogether: hang-ups are reported whatever the interest,
/// and a half-closed side waiting for the other would wake the loop for
/// nothing until the flow ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub fn none(self) -> bool {
        !self.read && !self.write
    }
}

struct Conn {
    sides: [TcpSocket; 2],
    pipes: [Pipe; 2],
    pending: [usize; 2],
    /// Side 1 finished connecting.
    connected: bool,
    /// Side `d` reached EOF.
    eof: [bool; 2],
    /// Side `d` was shut for writing (the other one's EOF passed on).
    shut: [bool; 2],
    /// What each side is registered for now.
    watched: [Interest; 2],
    /// Addresses and bytes, for flow records; `guest` is the side in the
    /// namespace (its bytes count as from the guest).
    meta: Meta,
    guest: usize,
}

/// What the engine must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing (the flow goes on, registrations are right).
    None,
    /// Re-register the sides given, (was, now): add, modify or delete.
    Watch([Option<(Interest, Interest)>; 2]),
    /// The flow ended and its sockets are closed.
    Closed,
}

pub struct SpliceFlows {
    /// Generations in 7 bits: the token's side byte holds one more.
    slots: Slab<Conn>,
    /// Empty pipes of closed flows, for the next ones: a pipe and its
    /// resizing cost three syscalls, a short connection needs two.
    spare: Vec<Pipe>,
    /// Connections reset after an error (for the stats).
    pub resets: u64,
    /// Opened and ended flows, for whoever listens.
    pub rec: Recorder,
}

impl Default for SpliceFlows {
    fn default() -> Self {
        Self::new()
    }
}

impl SpliceFlows {
    pub fn new() -> Self {
        SpliceFlows {
            slots: Slab::with_gen_mask(0x7f),
            spare: Vec::new(),
            resets: 0,
            rec: Recorder::default(),
        }
    }

    /// Bytes of all flows, ended and live: [from, to the guest].
    pub fn bytes(&self) -> [u64; 2] {
        self.rec.bytes(self.slots.values().map(|c| &c.meta))
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Joins `accepted` to `out`, a connection in progress. Returns the
    /// slot and generation to register side 1 under, for writability
    /// (connect completion); side 0 is registered once connected. On
    /// error the client is reset. `meta` describes the flow; `guest` is
    /// the side in the namespace.
    pub fn open(
        &mut self,
        accepted: TcpSocket,
        out: io::Result<TcpSocket>,
        (meta, guest): (Meta, usize),
    ) -> io::Result<(usize, u8)> {
        let out = match out {
            Ok(s) if self.slots.len() < MAX_FLOWS => s,
            Ok(_) => {
                accepted.set_reset_on_close();
                return Err(io::Error::from_raw_os_error(libc::EMFILE));
            }
            Err(e) => {
                accepted.set_reset_on_close();
                return Err(e);
            }
        };
        let mut pipe = || self.spare.pop().map_or_else(Pipe::new, Ok);
        let pipes = [pipe()?, pipe()?];
        let conn = Conn {
            sides: [accepted, out],
            pipes,
            pending: [0; 2],
            connected: false,
            eof: [false; 2],
            shut: [false; 2],
            watched: [
                Interest::default(),
                Interest {
                    read: false,
                    write: true,
                },
            ],
            meta,
            guest,
        };
        self.rec.open(&conn.meta);
        Ok(self.slots.insert(conn))
    }

    /// Side `s` of flow `index` (for registration).
    pub fn socket(&self, index: usize, gen: u8, s: usize) -> Option<&TcpSocket> {
        self.get(index, gen).map(|c| &c.sides[s])
    }

    /// What side `s` of a new flow is registered for.
    pub fn watched(&self, index: usize, gen: u8, s: usize) -> Option<Interest> {
        self.get(index, gen).map(|c| c.watched[s])
    }

    fn get(&self, index: usize, gen: u8) -> Option<&Conn> {
        self.slots.checked(index, gen)
    }

    /// Handles readiness of side `s`: readable moves its data on,
    /// writable lets the other side's pipe drain into it; `error` (an
    /// EPOLLERR/EPOLLHUP report) tries both.
    pub fn event(
        &mut self,
        index: usize,
        gen: u8,
        s: usize,
        (readable, writable, error): (bool, bool, bool),
    ) -> Change {
        let Some(conn) = self.slots.checked_mut(index, gen) else {
            return Change::None;
        };
        match conn.pump(s, readable, writable, error) {
            Ok(true) => {
                self.close(index, false);
                Change::Closed
            }
            Ok(false) => {
                let want = [conn.wanted(0), conn.wanted(1)];
                let mut change = [None, None];
                for side in 0..2 {
                    if want[side] != conn.watched[side] {
                        change[side] = Some((conn.watched[side], want[side]));
                        conn.watched[side] = want[side];
                    }
                }
                if change == [None, None] {
                    Change::None
                } else {
                    Change::Watch(change)
                }
            }
            Err(_) => {
                self.close(index, true);
                Change::Closed
            }
        }
    }

    fn close(&mut self, index: usize, reset: bool) {
        self.close_as(index, if reset { End::Reset } else { End::Closed }, reset);
    }

    fn close_as(&mut self, index: usize, end: End, reset: bool) {
        if let Some(c) = self.slots.remove(index) {
            self.rec.end(&c.meta, end, Instant::now());
            if reset {
                self.resets += 1;
                for s in &c.sides {
                    s.set_reset_on_close();
                }
            }
            // Only empty pipes are kept: bytes left in one belong to this
            // flow alone.
            for (pipe, pending) in c.pipes.into_iter().zip(c.pending) {
                if pending == 0 && self.spare.len() < SPARE_PIPES {
                    self.spare.push(pipe);
                }
            }
        }
    }

    /// Drops every flow (engine shutdown).
    pub fn clear(&mut self) {
        for i in 0..self.slots.bound() {
            self.close_as(i, End::Stopped, true);
        }
    }

    /// Ends every flow as the engine stops: recorded as stopped, the
    /// sockets closed as they are.
    pub fn finish(&mut self) {
        for i in 0..self.slots.bound() {
            self.close_as(i, End::Stopped, false);
        }
    }
}

impl Conn {
    /// Moves data; `Ok(true)` when the flow is finished.
    fn pump(&mut self, s: usize, readable: bool, writable: bool, error: bool) -> io::Result<bool> {
        // Only the directions this event concerns: on a 1-byte exchange
        // the other one would be an empty splice, a syscall for nothing.
        let mut both = error;
        if !self.connected {
            if s == 0 && !error {
                return Ok(false); // side 0's data waits in its socket
            }
            if let Some(e) = self.sides[1].take_error()? {
                return Err(e);
            }
            if s == 1 && !error {
                self.connected = true;
                both = true;
            } else {
                // An error on side 0 before we connected, or a hang-up
                // with no error code on side 1: nothing to carry.
                return Err(io::Error::from_raw_os_error(libc::ECONNRESET));
            }
        }
        let mut moved = false;
        if both || readable {
            moved |= self.direction(s)?;
        }
        if both || writable {
            moved |= self.direction(1 - s)?;
        }
        if self.shut == [true, true] {
            return Ok(true);
        }
        if error && !moved {
            // A side reported an error or a hang-up and nothing could be
            // moved: what the socket says is the reason, if it says.
            let e = self.sides[s].take_error()?;
            return Err(e.unwrap_or_else(|| io::Error::from_raw_os_error(libc::ECONNRESET)));
        }
        Ok(false)
    }

    /// One direction: side `d` → `pipes[d]` → side `1 - d`. Whether
    /// anything changed (bytes moved, EOF seen or passed on).
    fn direction(&mut self, d: usize) -> io::Result<bool> {
        let (from, to) = (&self.sides[d], &self.sides[1 - d]);
        let pipe = &self.pipes[d];
        let mut moved = false;
        // A read shorter than asked emptied the socket: another would
        // only say so (epoll is level-triggered, more data or the EOF
        // comes back as an event).
        let mut drained = false;
        for _ in 0..ROUNDS {
            let mut progress = false;
            if !self.eof[d] && !drained && self.pending[d] < pipe.capacity {
                let room = (pipe.capacity - self.pending[d]).min(CHUNK);
                match splice(from.as_fd(), pipe.write.as_fd(), room)? {
                    Moved::Bytes(n) => {
                        self.pending[d] += n;
                        drained = n < room;
                        progress = true;
                    }
                    Moved::Eof => {
                        self.eof[d] = true;
                        progress = true;
                    }
                    Moved::WouldBlock => {}
                }
            }
            if self.pending[d] > 0 {
                let len = self.pending[d].min(CHUNK);
                if let Moved::Bytes(n) = splice(pipe.read.as_fd(), to.as_fd(), len)? {
                    self.pending[d] -= n;
                    if d == self.guest {
                        self.meta.from_guest(n);
                    } else {
                        self.meta.to_guest(n);
                    }
                    progress = true;
                }
            }
            moved |= progress;
            if !progress {
                break;
            }
        }
        if self.eof[d] && self.pending[d] == 0 && !self.shut[1 - d] {
            // The last direction to finish needs no shutdown: the flow
            // closes now (both sockets read to their end, so closing
            // sends the FIN, not a reset).
            if !self.shut[d] {
                to.shutdown_write()?;
            }
            self.shut[1 - d] = true;
            moved = true;
        }
        Ok(moved)
    }

    /// What side `s` should be watched for now.
    fn wanted(&self, s: usize) -> Interest {
        if !self.connected {
            return Interest {
                read: false,
                write: s == 1,
            };
        }
        Interest {
            read: !self.eof[s] && self.pending[s] < self.pipes[s].capacity,
            write: self.pending[1 - s] > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    /// Flow bookkeeping for a test flow (side 0 counts as the guest).
    fn meta() -> (Meta, usize) {
        let a: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let info = crate::flow::record::FlowInfo {
            proto: crate::flow::record::Proto::Tcp,
            direction: crate::flow::record::Direction::Outbound,
            src: a,
            dst: a,
        };
        (Meta::new(info, (a, a), Instant::now()), 0)
    }

    /// A flow between a client (side 0, accepted from `front`) and a
    /// server accepted from `back`; events are delivered by polling every
    /// side, as a level-triggered loop would.
    struct Rig {
        flows: SpliceFlows,
        index: usize,
        gen: u8,
    }

    impl Rig {
        fn spin(&mut self, until: impl Fn(&SpliceFlows) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !until(&self.flows) {
                assert!(Instant::now() < deadline, "no progress");
                for s in 0..2 {
                    self.flows
                        .event(self.index, self.gen, s, (true, true, false));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn pair() -> (TcpStream, TcpSocket) {
        let l = crate::sys::tcp::TcpListener::bind("127.0.0.1:0".parse().unwrap());
        let l = l.unwrap();
        let addr = l.local_addr();
        let client = TcpStream::connect(addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some((s, _)) = l.accept().unwrap() {
                return (client, s);
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn carries_both_ways_and_half_closes() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut client, accepted) = pair();
        let mut flows = SpliceFlows::new();
        let (index, gen) = flows
            .open(
                accepted,
                TcpSocket::connect(server.local_addr().unwrap()),
                meta(),
            )
            .unwrap();
        let (mut srv, _) = server.accept().unwrap();
        let mut rig = Rig { flows, index, gen };
        let up: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sender = {
            let up = up.clone();
            let mut c = client.try_clone().unwrap();
            std::thread::spawn(move || {
                c.write_all(&up).unwrap();
                c.shutdown(std::net::Shutdown::Write).unwrap();
            })
        };
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            srv.read_to_end(&mut got).unwrap();
            srv.write_all(b"thanks").unwrap();
            drop(srv);
            got
        });
        rig.spin(|f| f.is_empty());
        sender.join().unwrap();
        assert_eq!(reader.join().unwrap(), up);
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"thanks");
        // Its two pipes, empty, wait for the next flow.
        assert_eq!(rig.flows.spare.len(), 2);
        let (_c2, accepted) = pair();
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        rig.flows
            .open(accepted, TcpSocket::connect(target), meta())
            .unwrap();
        assert_eq!(rig.flows.spare.len(), 0);
    }

    #[test]
    fn a_refused_connect_resets_the_client() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = closed.local_addr().unwrap();
        drop(closed);
        let (mut client, accepted) = pair();
        let mut flows = SpliceFlows::new();
        let (index, gen) = flows
            .open(accepted, TcpSocket::connect(target), meta())
            .unwrap();
        let mut rig = Rig { flows, index, gen };
        rig.spin(|f| f.is_empty());
        assert_eq!(rig.flows.resets, 1);
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let e = client.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn interest_follows_the_pipes() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let (_client, accepted) = pair();
        let mut flows = SpliceFlows::new();
        let (index, gen) = flows
            .open(
                accepted,
                TcpSocket::connect(server.local_addr().unwrap()),
                meta(),
            )
            .unwrap();
        let (_srv, _) = server.accept().unwrap();
        let before = flows.watched(index, gen, 1).unwrap();
        assert!(before.write && !before.read);
        // Connected: both sides read, neither needs writability.
        let mut change = Change::None;
        let deadline = Instant::now() + Duration::from_secs(2);
        while change == Change::None {
            change = flows.event(index, gen, 1, (false, true, false));
            assert!(Instant::now() < deadline);
        }
        let both = Interest {
            read: true,
            write: false,
        };
        assert_eq!(flows.watched(index, gen, 0), Some(both));
        assert_eq!(flows.watched(index, gen, 1), Some(both));
        // A stale generation is ignored.
        assert_eq!(
            flows.event(index, gen ^ 1, 0, (false, false, true)),
            Change::None
        );
        assert_eq!(flows.len(), 1);
    }
}
