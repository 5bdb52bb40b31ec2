//! pasta's UDP splice path: datagrams between a loopback client on one
//! side (the namespace or the host) and a loopback server on the other,
//! socket to socket, no tap.
//!
//! A listener (the engine's: a `-U` socket in the namespace, or a `-u`
//! socket on the host whose client is on the host's loopback) receives a
//! client's datagrams; each client gets a flow, a socket on the other side
//! connected to the server, made by the caller (in the namespace through
//! the agent, or on the host). Datagrams go out the flow's socket;
//! replies read from it go back from the listener to the client, a batch
//! at a time (`recvmmsg` in, `sendmmsg` out).
//!
//! Invariants: flows are keyed by (listener key, client); a slot's
//! generation changes when its flow goes, so a stale epoll token (index,
//! generation) never reaches a successor. A flow idle for `TIMEOUT` is
//! closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::record::{End, Meta, Recorder};
use crate::slab::Slab;
use crate::sys::udp::UdpSocket;

/// As for the other UDP flows.
pub const TIMEOUT: Duration = super::udp::TIMEOUT;
/// Most concurrent spliced UDP flows; more clients are dropped.
pub const MAX_FLOWS: usize = 4096;

/// Which listener a flow answers through: the caller's numbering (it
/// tells its listener tables apart with it).
pub type ListenerKey = u32;

struct Flow {
    listener: ListenerKey,
    client: SocketAddr,
    sock: UdpSocket,
    last: Instant,
    /// For flow records; `client_is_guest`: the client is in the
    /// namespace (`-U`), so its datagrams count as from the guest.
    meta: Meta,
    client_is_guest: bool,
}

#[derive(Default)]
pub struct UdpSpliceFlows {
    slots: Slab<Flow>,
    by_key: HashMap<(ListenerKey, SocketAddr), usize>,
    /// Opened and ended flows, for whoever listens.
    pub rec: Recorder,
}

impl UdpSpliceFlows {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The flow of `client` on `listener`, if there is one (its last use
    /// becomes `now`).
    pub fn find(
        &mut self,
        listener: ListenerKey,
        client: SocketAddr,
        now: Instant,
    ) -> Option<(usize, u8)> {
        let &index = self.by_key.get(&(listener, client))?;
        self.slots.get_mut(index)?.last = now;
        Some((index, self.slots.gen(index)))
    }

    /// Starts the flow of `client` on `listener` with `sock`, connected to
    /// the server; `None` when the table is full.
    /// Whether `client` of listener `listener` has a flow.
    pub fn has(&self, listener: ListenerKey, client: SocketAddr) -> bool {
        self.by_key.contains_key(&(listener, client))
    }

    pub fn insert(
        &mut self,
        listener: ListenerKey,
        client: SocketAddr,
        sock: UdpSocket,
        (meta, client_is_guest): (Meta, bool),
        now: Instant,
    ) -> Option<(usize, u8)> {
        if self.len() >= MAX_FLOWS {
            return None;
        }
        self.rec.open(&meta);
        let flow = Flow {
            listener,
            client,
            sock,
            last: now,
            meta,
            client_is_guest,
        };
        let (index, gen) = self.slots.insert(flow);
        self.by_key.insert((listener, client), index);
        Some((index, gen))
    }

    /// Flow (index, gen)'s socket, and where its replies go: (listener,
    /// client). Marks it used at `now`.
    pub fn get(
        &mut self,
        index: usize,
        gen: u8,
        now: Instant,
    ) -> Option<(&UdpSocket, ListenerKey, SocketAddr)> {
        let flow = self.slots.checked_mut(index, gen)?;
        flow.last = now;
        Some((&flow.sock, flow.listener, flow.client))
    }

    /// Flow (index, gen)'s socket, for registration.
    pub fn socket(&self, index: usize, gen: u8) -> Option<&UdpSocket> {
        self.slots.checked(index, gen).map(|f| &f.sock)
    }

    /// Counts `n` payload bytes on flow `index`, from its client
    /// (`from_client`) or from its server.
    pub fn count(&mut self, index: usize, n: usize, from_client: bool) {
        if let Some(f) = self.slots.get_mut(index) {
            if from_client == f.client_is_guest {
                f.meta.from_guest(n);
            } else {
                f.meta.to_guest(n);
            }
        }
    }

    /// Bytes of all flows, ended and live: [from, to the guest].
    pub fn bytes(&self) -> [u64; 2] {
        self.rec.bytes(self.slots.values().map(|f| &f.meta))
    }

    fn remove(&mut self, index: usize, end: End, now: Instant) {
        if let Some(f) = self.slots.remove(index) {
            self.rec.end(&f.meta, end, now);
            self.by_key.remove(&(f.listener, f.client));
        }
    }

    /// Closes the flows idle for `TIMEOUT`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let old = self.slots.select(|f| now.duration_since(f.last) >= TIMEOUT);
        for &i in &old {
            self.remove(i, End::Timeout, now);
        }
        old.len()
    }

    /// Closes the flows answering through `listener` (it is going);
    /// returns how many.
    pub fn close_listener(&mut self, listener: ListenerKey) -> usize {
        let now = Instant::now();
        let gone = self.slots.select(|f| f.listener == listener);
        for &i in &gone {
            self.remove(i, End::Stopped, now);
        }
        gone.len()
    }

    pub fn clear(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.bound() {
            self.remove(i, End::Stopped, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock() -> UdpSocket {
        UdpSocket::open(false).unwrap()
    }

    fn meta(a: SocketAddr) -> (Meta, bool) {
        let info = crate::flow::record::FlowInfo {
            proto: crate::flow::record::Proto::Udp,
            direction: crate::flow::record::Direction::Outbound,
            src: a,
            dst: a,
        };
        (Meta::new(info, (a, a), Instant::now()), true)
    }

    #[test]
    fn flows_are_per_listener_and_client_and_expire() {
        let mut f = UdpSpliceFlows::new();
        let t0 = Instant::now();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        assert_eq!(f.find(1, a, t0), None);
        let (ia, ga) = f.insert(1, a, sock(), meta(a), t0).unwrap();
        let (ib, _) = f.insert(2, a, sock(), meta(a), t0).unwrap();
        assert_ne!(ia, ib);
        assert_eq!(f.find(1, a, t0), Some((ia, ga)));
        assert_eq!(f.find(1, b, t0), None);
        let (_, l, c) = f.get(ia, ga, t0).unwrap();
        assert_eq!((l, c), (1, a));
        // One stays busy, the other goes idle.
        let later = t0 + TIMEOUT;
        f.find(2, a, later);
        assert_eq!(f.expire(later), 1);
        assert!(f.get(ia, ga, later).is_none(), "expired");
        assert!(f.socket(ib, f.slots.gen(ib)).is_some());
        // A reused slot has a new generation.
        let (ic, gc) = f.insert(3, b, sock(), meta(b), later).unwrap();
        assert_eq!(ic, ia);
        assert_ne!(gc, ga);
        f.clear();
        assert!(f.is_empty());
    }

    #[test]
    fn closing_a_listener_ends_only_its_flows() {
        let mut f = UdpSpliceFlows::new();
        f.rec.on_end = true;
        let t0 = Instant::now();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        f.insert(1, a, sock(), meta(a), t0).unwrap();
        f.insert(1, b, sock(), meta(b), t0).unwrap();
        let (ic, gc) = f.insert(2, a, sock(), meta(a), t0).unwrap();
        assert_eq!(f.close_listener(1), 2);
        assert!(!f.has(1, a) && !f.has(1, b));
        assert!(f.get(ic, gc, t0).is_some(), "listener 2's flow stays");
        assert_eq!(f.rec.ended.len(), 2);
        assert_eq!(f.close_listener(1), 0);
    }
}
