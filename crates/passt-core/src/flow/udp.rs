//! UDP flows: the guest's datagrams carried over host UDP sockets.
//!
//! A flow is keyed by the guest-side pair (guest addr:port, remote
//! addr:port as the guest sees it), whichever side started it:
//!
//! - Outbound (the guest's first datagram to a remote): a socket of the
//!   remote's family, bound to the guest's source port on the unspecified
//!   address when it can be (peers see the port the guest chose; else the
//!   kernel picks one), connected to the real destination (the gateway
//!   goes to the host's loopback, `GatewayMap`). Replies come from that
//!   socket and appear to come from where the guest sent; ICMP errors for
//!   it come from its error queue as `Unreachable`.
//! - Inbound (`-u` forwards): a client's datagram arrived on a listening
//!   socket the engine owns. The flow has no socket: the guest's replies
//!   go back with `send_to` on that listener, to the real client. Which
//!   listener is the caller's business: `guest_datagram` returns
//!   `Route::Listener { listener, to }` and the caller sends the payload.
//!
//! A flow idle (no datagram either way) for `TIMEOUT` is closed.
//!
//! Invariants: a flow's index is stable while it lives, and the slot's
//! generation changes whenever the flow in it goes, so an epoll token
//! (index, generation) of a closed flow never reaches its successor;
//! `by_key` and `slots` agree; no allocation per datagram once a flow
//! exists (the receive batch is the caller's).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::icmp::GatewayMap;
use super::record::{Direction, End, FlowInfo, Meta, Proto, Recorder};
use crate::slab::Slab;
use crate::sys::udp::{QueuedError, RecvBatch, UdpSocket};

/// Idle time after which a flow is closed. passt's documented UDP flow
/// timeout; the `passt` man page installed here (2023-03) does not state
/// it, so the value is taken as given in the design brief.
pub const TIMEOUT: Duration = Duration::from_secs(180);
/// Most concurrent flows (outbound and inbound); more are refused.
pub const MAX_FLOWS: usize = 4096;
/// Receive batches read per readable event: the engine's epoll is
/// level-triggered, so what is left comes back in the next round, and
/// one busy flow cannot starve the others.
const BATCHES_PER_EVENT: usize = 4;
/// Error-queue messages read per event, for the same reason.
const ERRORS_PER_EVENT: usize = 16;

#[derive(Debug)]
pub enum UdpError {
    TooManyFlows,
    /// No socket could be made (descriptor limit, memory).
    Socket(io::Error),
    /// The host cannot reach the destination (no route, ...).
    Connect(io::Error),
}

/// Where a guest datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// On the socket of flow `index` (generation `gen`). `new`: the flow
    /// was just made; register its socket for reading with (index, gen).
    Socket { index: usize, gen: u8, new: bool },
    /// An inbound flow: send the payload with `UdpSocket::send_to(payload,
    /// to)` on the caller's listener `listener`.
    Listener { listener: usize, to: SocketAddr },
}

/// A datagram for the guest, addressed as the guest must see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: SocketAddr,
    /// The guest's address and port.
    pub dst: SocketAddr,
    pub payload: &'a [u8],
}

/// An ICMP error the host got for a datagram of the guest's, for the
/// caller to turn into an ICMP(v6) error to the guest. Any ICMP error
/// (port unreachable, time exceeded, too big: see type and code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable<'a> {
    pub guest: SocketAddr,
    /// The remote as the guest addressed it.
    pub remote: SocketAddr,
    pub v6: bool,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// Next-hop MTU for "fragmentation needed" / "packet too big".
    pub info: u32,
    /// Who sent the error, as the guest should see it (the gateway for
    /// the host's loopback when the guest addressed the gateway).
    pub offender: Option<IpAddr>,
    /// The start of the offending datagram's UDP payload, as quoted.
    pub original: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    Datagram(Datagram<'a>),
    Unreachable(Unreachable<'a>),
}

/// An inbound forward's listening socket (`-u`) and the guest port its
/// datagrams go to; the engine owns them, flows refer to them by index.
pub struct UdpForward {
    pub sock: UdpSocket,
    pub guest_port: u16,
}

enum Via {
    Socket(UdpSocket),
    Listener { id: usize, client: SocketAddr },
}

struct Flow {
    via: Via,
    /// The guest's address and port.
    guest: SocketAddr,
    /// The remote as the guest sees it.
    remote: SocketAddr,
    /// Where the socket is connected (outbound).
    peer: SocketAddr,
    last: Instant,
    meta: Meta,
}

pub struct UdpFlows {
    slots: Slab<Flow>,
    by_key: HashMap<(SocketAddr, SocketAddr), usize>,
    /// Inbound flows by (listener, client): a client's later datagrams
    /// follow its flow, whatever a policy made of its addresses.
    by_client: HashMap<(usize, SocketAddr), usize>,
    dropped: u64,
    /// Guest datagrams of this round not sent yet: (flow, range in
    /// `pending_data`), sent by `flush` with one `sendmmsg` per run of
    /// the same flow. Both buffers keep their capacity between rounds.
    pending: Vec<(usize, std::ops::Range<usize>)>,
    pending_data: Vec<u8>,
    pub map: GatewayMap,
    /// Opened and ended flows, for whoever listens.
    pub rec: Recorder,
}

/// Guest payload held for a round's `sendmmsg` before it is flushed
/// early (a bound on memory, not a target).
const PENDING_BYTES: usize = 1 << 20;
/// Datagrams per `sendmmsg`.
const SEND_BATCH: usize = 64;

impl UdpFlows {
    pub fn new(map: GatewayMap) -> Self {
        UdpFlows {
            slots: Slab::new(),
            by_key: HashMap::new(),
            by_client: HashMap::new(),
            dropped: 0,
            pending: Vec::new(),
            pending_data: Vec::new(),
            map,
            rec: Recorder::default(),
        }
    }

    /// Whether the guest-side pair has a flow.
    pub fn has(&self, guest: SocketAddr, remote: SocketAddr) -> bool {
        self.by_key.contains_key(&(guest, remote))
    }

    /// Live flows, and the bytes of all flows [from, to the guest].
    pub fn census(&self) -> (u64, [u64; 2]) {
        let bytes = self.rec.bytes(self.slots.values().map(|f| &f.meta));
        (self.by_key.len() as u64, bytes)
    }

    /// Counts a datagram the caller delivered to the guest on flow `index`
    /// (inbound flows, whose datagrams the caller frames).
    pub fn delivered(&mut self, index: usize, n: usize) {
        if let Some(f) = self.slots.get_mut(index) {
            f.meta.to_guest(n);
        }
    }

    /// Sends the datagrams `guest_datagram` queued this round: one
    /// `sendmmsg` per run of datagrams of one flow. A datagram the socket
    /// refuses is dropped and counted.
    pub fn flush(&mut self) {
        let mut i = 0;
        while i < self.pending.len() {
            let index = self.pending[i].0;
            let mut msgs: [(&[u8], Option<SocketAddr>); SEND_BATCH] = [(&[], None); SEND_BATCH];
            let mut n = 0;
            while i < self.pending.len() && self.pending[i].0 == index && n < SEND_BATCH {
                msgs[n] = (&self.pending_data[self.pending[i].1.clone()], None);
                n += 1;
                i += 1;
            }
            // A flow gone since (expired, cleared) loses its datagrams.
            let (_, failed) = match self.slots.get(index) {
                Some(Flow {
                    via: Via::Socket(sock),
                    ..
                }) => sock.send_batch(&msgs[..n]),
                _ => (0, n),
            };
            self.dropped += failed as u64;
        }
        self.pending.clear();
        self.pending_data.clear();
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Guest datagrams the host refused to send on a flow's socket (full
    /// buffer, unreachable network); UDP drops them.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Datagrams dropped since the last call (for the engine's counters).
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// The socket of flow (index, gen), for epoll registration; `None`
    /// for a closed flow, a reused slot or an inbound flow.
    pub fn socket(&self, index: usize, gen: u8) -> Option<&UdpSocket> {
        match &self.slots.checked(index, gen)?.via {
            Via::Socket(s) => Some(s),
            Via::Listener { .. } => None,
        }
    }

    fn insert(&mut self, flow: Flow) -> (usize, u8) {
        let key = (flow.guest, flow.remote);
        self.rec.open(&flow.meta);
        let listener = match flow.via {
            Via::Listener { id, client } => Some((id, client)),
            Via::Socket(_) => None,
        };
        let (index, gen) = self.slots.insert(flow);
        self.by_key.insert(key, index);
        if let Some(by) = listener {
            self.by_client.insert(by, index);
        }
        (index, gen)
    }

    fn remove(&mut self, index: usize, end: End, now: Instant) {
        if let Some(f) = self.slots.remove(index) {
            self.by_key.remove(&(f.guest, f.remote));
            if let Via::Listener { id, client } = f.via {
                if self.by_client.get(&(id, client)) == Some(&index) {
                    self.by_client.remove(&(id, client));
                }
            }
            self.rec.end(&f.meta, end, now);
        }
    }

    /// Finds or makes the flow for a guest datagram from `src` to `dst`
    /// (outbound if new), without sending: for callers that batch sends
    /// themselves (`UdpSocket::send_batch` on `socket(index, gen)`).
    pub fn route(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        now: Instant,
    ) -> Result<Route, UdpError> {
        if let Some(&index) = self.by_key.get(&(src, dst)) {
            let gen = self.slots.gen(index);
            if let Some(flow) = self.slots.get_mut(index) {
                flow.last = now;
                return Ok(match flow.via {
                    Via::Socket(_) => Route::Socket {
                        index,
                        gen,
                        new: false,
                    },
                    Via::Listener { id, client } => Route::Listener {
                        listener: id,
                        to: client,
                    },
                });
            }
        }
        let real = self.map.outbound_sock(dst);
        self.open(src, dst, real, None, now)
    }

    /// Makes the outbound flow of `src` (the guest) to `dst`, its socket
    /// connected to `target` (the mapped destination, or a policy's
    /// rewrite) and bound to `bind`'s address when given, else to `-o`'s
    /// (`GatewayMap::source`).
    pub fn open(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        target: SocketAddr,
        bind: Option<IpAddr>,
        now: Instant,
    ) -> Result<Route, UdpError> {
        if self.len() >= MAX_FLOWS {
            return Err(UdpError::TooManyFlows);
        }
        let v6 = target.is_ipv6();
        let sock = UdpSocket::open(v6).map_err(UdpError::Socket)?;
        let any: IpAddr = if v6 {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let bind = bind.or_else(|| self.map.source(target.ip()));
        let local = bind.unwrap_or(any);
        // The guest's port, when free; taken by another socket without
        // SO_REUSEADDR, or privileged: then the kernel picks one.
        let kept_port = src.port() != 0 && sock.bind(SocketAddr::new(local, src.port())).is_ok();
        if !kept_port && bind.is_some() {
            sock.bind(SocketAddr::new(local, 0))
                .map_err(UdpError::Connect)?;
        }
        sock.connect(target).map_err(UdpError::Connect)?;
        let info = FlowInfo {
            proto: Proto::Udp,
            direction: Direction::Outbound,
            src,
            dst,
        };
        let mapped = (
            sock.local_addr().unwrap_or(SocketAddr::new(local, 0)),
            target,
        );
        let (index, gen) = self.insert(Flow {
            via: Via::Socket(sock),
            guest: src,
            remote: dst,
            peer: target,
            last: now,
            meta: Meta::new(info, mapped, now),
        });
        Ok(Route::Socket {
            index,
            gen,
            new: true,
        })
    }

    /// Carries a guest datagram from `src` to `dst`: for `Route::Socket`
    /// queued for the flow's socket (made if needed) and sent by `flush`,
    /// which the caller runs after each batch of guest frames; for
    /// `Route::Listener` the caller sends it (see `Route`).
    pub fn guest_datagram(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        now: Instant,
    ) -> Result<Route, UdpError> {
        let route = self.route(src, dst, now)?;
        if let Some(f) = self.slots.get_mut(match route {
            Route::Socket { index, .. } => index,
            Route::Listener { .. } => self.by_key[&(src, dst)],
        }) {
            f.meta.from_guest(payload.len());
        }
        if let Route::Socket { index, .. } = route {
            let start = self.pending_data.len();
            self.pending_data.extend_from_slice(payload);
            self.pending.push((index, start..self.pending_data.len()));
            if self.pending_data.len() >= PENDING_BYTES {
                self.flush();
            }
        }
        Ok(route)
    }

    /// Records a client's datagram that arrived on the caller's listener
    /// `listener` (an id the caller chooses, e.g. its listener slot):
    /// `client` is its real source, `guest` where it goes, `seen` the
    /// client as the guest sees it. The caller frames the datagram
    /// itself (from `seen` to `guest`). Returns the flow's index.
    ///
    /// If the pair (guest, seen) is an outbound flow already, that flow
    /// stays as it is (the guest's replies keep going out its socket); if
    /// it is an inbound flow, the latest listener and client win.
    pub fn inbound(
        &mut self,
        listener: usize,
        client: SocketAddr,
        guest: SocketAddr,
        seen: SocketAddr,
        now: Instant,
    ) -> Result<usize, UdpError> {
        if let Some(&index) = self.by_key.get(&(guest, seen)) {
            if let Some(flow) = self.slots.get_mut(index) {
                flow.last = now;
                if let Via::Listener { id, client: old } = flow.via {
                    flow.via = Via::Listener {
                        id: listener,
                        client,
                    };
                    self.by_client.remove(&(id, old));
                    self.by_client.insert((listener, client), index);
                }
                return Ok(index);
            }
        }
        if self.len() >= MAX_FLOWS {
            return Err(UdpError::TooManyFlows);
        }
        let info = FlowInfo {
            proto: Proto::Udp,
            direction: Direction::Inbound,
            src: client,
            dst: guest,
        };
        let (index, _) = self.insert(Flow {
            via: Via::Listener {
                id: listener,
                client,
            },
            guest,
            remote: seen,
            peer: client,
            last: now,
            meta: Meta::new(info, (seen, guest), now),
        });
        Ok(index)
    }

    /// The inbound flow of `client` on listener `listener`, if any:
    /// (index, the guest's address, the client as the guest sees it).
    pub fn inbound_of(
        &mut self,
        listener: usize,
        client: SocketAddr,
        now: Instant,
    ) -> Option<(usize, SocketAddr, SocketAddr)> {
        let index = *self.by_client.get(&(listener, client))?;
        let flow = self.slots.get_mut(index)?;
        flow.last = now;
        Some((index, flow.guest, flow.remote))
    }

    /// Reads what flow (index, gen)'s socket holds: replies as
    /// `Event::Datagram`, then ICMP errors from its error queue as
    /// `Event::Unreachable`. Does a bounded amount of work; returns how
    /// many events it gave. A stale (index, gen) gives none.
    pub fn socket_readable(
        &mut self,
        index: usize,
        gen: u8,
        now: Instant,
        batch: &mut RecvBatch,
        out: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        let map = self.map;
        let Some(flow) = self.slots.checked_mut(index, gen) else {
            return 0;
        };
        let Via::Socket(sock) = &flow.via else {
            return 0;
        };
        let (guest, remote, peer) = (flow.guest, flow.remote, flow.peer);
        let mut events = 0;
        let mut bytes = 0;
        let mut received = false;
        // An error from the receive is a pending ICMP error, now consumed;
        // its details are on the error queue, read below.
        sock.drain(batch, BATCHES_PER_EVENT, |batch| {
            received = true;
            for (src, payload) in batch.iter() {
                // A connected socket only gets its peer's datagrams, but
                // the shared port may have queued someone else's between
                // bind and connect.
                if src != peer {
                    continue;
                }
                // From the peer: from where the guest sent, as the guest
                // sees it (gateway, DNS address).
                out(Event::Datagram(Datagram {
                    src: remote,
                    dst: guest,
                    payload,
                }));
                bytes += payload.len();
                events += 1;
            }
        });
        flow.meta.to_guest(bytes);
        for _ in 0..ERRORS_PER_EVENT {
            let buf = batch.scratch();
            match sock.take_error_queue(buf) {
                Ok(Some(QueuedError::Icmp(e))) => {
                    out(Event::Unreachable(Unreachable {
                        guest,
                        remote,
                        v6: e.v6,
                        icmp_type: e.icmp_type,
                        icmp_code: e.icmp_code,
                        info: e.info,
                        offender: e.offender.map(|o| {
                            if o == peer.ip() || o == map.outbound_sock(remote).ip() {
                                remote.ip()
                            } else {
                                o
                            }
                        }),
                        original: &buf[..e.len],
                    }));
                    events += 1;
                }
                Ok(Some(QueuedError::Other { .. })) => {}
                Ok(None) | Err(_) => break,
            }
        }
        if received {
            flow.last = now;
        }
        events
    }

    /// Drains the error queue of the caller's listener `listener` (its
    /// socket `sock`): ICMP errors for replies the guest sent through it
    /// become `Event::Unreachable` for the inbound flow they belong to.
    /// The caller must call this when the listener reports an error
    /// (EPOLLERR), or a level-triggered epoll keeps reporting it.
    pub fn listener_errors(
        &mut self,
        listener: usize,
        sock: &UdpSocket,
        batch: &mut RecvBatch,
        out: &mut dyn FnMut(Event<'_>),
    ) -> usize {
        let map = self.map;
        let mut events = 0;
        for _ in 0..ERRORS_PER_EVENT {
            let buf = batch.scratch();
            let e = match sock.take_error_queue(buf) {
                Ok(Some(QueuedError::Icmp(e))) => e,
                Ok(Some(QueuedError::Other { .. })) => continue,
                Ok(None) | Err(_) => break,
            };
            // Errors are rare: a scan beats an index kept per datagram.
            let flow = self.slots.values().find(|f| {
                matches!(f.via, Via::Listener { id, client }
                    if id == listener && Some(client) == e.dst)
            });
            if let Some(f) = flow {
                out(Event::Unreachable(Unreachable {
                    guest: f.guest,
                    remote: f.remote,
                    v6: e.v6,
                    icmp_type: e.icmp_type,
                    icmp_code: e.icmp_code,
                    info: e.info,
                    offender: e.offender.map(|o| map.inbound(o, f.remote.ip())),
                    original: &buf[..e.len],
                }));
                events += 1;
            }
        }
        events
    }

    /// Closes the inbound flows of a listener the caller closed, so that
    /// the guest's replies are not routed to a listener id now reused.
    pub fn close_listener(&mut self, listener: usize) -> usize {
        let now = Instant::now();
        let gone = self
            .slots
            .select(|f| matches!(f.via, Via::Listener { id, .. } if id == listener));
        for &i in &gone {
            self.remove(i, End::Stopped, now);
        }
        gone.len()
    }

    /// Closes every flow (the guest is gone).
    pub fn clear(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.bound() {
            self.remove(i, End::Stopped, now);
        }
    }

    /// Closes flows idle since before `now - TIMEOUT`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let old = self
            .slots
            .select(|f| now.saturating_duration_since(f.last) >= TIMEOUT);
        for &i in &old {
            self.remove(i, End::Timeout, now);
        }
        old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest datagram, queued and flushed at once (as after a batch).
    fn sent(
        flows: &mut UdpFlows,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        now: Instant,
    ) -> Result<Route, UdpError> {
        let r = flows.guest_datagram(src, dst, payload, now);
        flows.flush();
        r
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Data(SocketAddr, SocketAddr, Vec<u8>),
        Unreach(
            SocketAddr,
            SocketAddr,
            bool,
            u8,
            u8,
            Option<IpAddr>,
            Vec<u8>,
        ),
    }

    fn owned(e: Event<'_>) -> Got {
        match e {
            Event::Datagram(d) => Got::Data(d.src, d.dst, d.payload.to_vec()),
            Event::Unreachable(u) => Got::Unreach(
                u.guest,
                u.remote,
                u.v6,
                u.icmp_type,
                u.icmp_code,
                u.offender,
                u.original.to_vec(),
            ),
        }
    }

    /// Events of flow (index, gen), polled for up to a second.
    fn poll(flows: &mut UdpFlows, index: usize, gen: u8, batch: &mut RecvBatch) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut got = Vec::new();
        while got.is_empty() && Instant::now() < deadline {
            flows.socket_readable(index, gen, Instant::now(), batch, &mut |e| {
                got.push(owned(e))
            });
            if got.is_empty() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        got
    }

    fn echo_server(addr: &str) -> std::net::UdpSocket {
        let s = std::net::UdpSocket::bind(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        s
    }

    /// Answers one datagram with "re:" + it; returns its source.
    fn echo_once(s: &std::net::UdpSocket) -> SocketAddr {
        let mut buf = [0u8; 2048];
        let (n, from) = s
            .recv_from(&mut buf)
            .expect("a datagram at the echo server");
        let mut reply = b"re:".to_vec();
        reply.extend_from_slice(&buf[..n]);
        s.send_to(&reply, from).unwrap();
        from
    }

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn gateway_map() -> GatewayMap {
        GatewayMap {
            v4: Some("192.0.2.1".parse().unwrap()),
            v6: Some("fd00::1".parse().unwrap()),
            ..GatewayMap::default()
        }
    }

    fn echo_through(guest: SocketAddr, lo: &str, guest_dst: impl Fn(u16) -> SocketAddr) {
        let echo = echo_server(lo);
        let port = echo.local_addr().unwrap().port();
        let dst = guest_dst(port);
        let mut flows = UdpFlows::new(gateway_map());
        let mut batch = RecvBatch::new(8);
        let now = Instant::now();
        let Route::Socket { index, gen, new } = sent(&mut flows, guest, dst, b"hi", now).unwrap()
        else {
            panic!("not an outbound flow")
        };
        assert!(new);
        assert!(flows.socket(index, gen).is_some());
        echo_once(&echo);
        assert_eq!(
            poll(&mut flows, index, gen, &mut batch),
            [Got::Data(dst, guest, b"re:hi".to_vec())]
        );
        // The same flow carries the next datagram: nothing to register.
        assert_eq!(
            sent(&mut flows, guest, dst, b"again", now).unwrap(),
            Route::Socket {
                index,
                gen,
                new: false
            }
        );
        echo_once(&echo);
        assert_eq!(
            poll(&mut flows, index, gen, &mut batch),
            [Got::Data(dst, guest, b"re:again".to_vec())]
        );
        assert_eq!(flows.len(), 1);
    }

    #[test]
    fn echo_on_loopback_v4() {
        echo_through(sock("10.0.2.15:40001"), "127.0.0.1:0", |p| {
            SocketAddr::from(([127, 0, 0, 1], p))
        });
    }

    #[test]
    fn echo_on_loopback_v6() {
        echo_through(sock("[fd00::2]:40001"), "[::1]:0", |p| {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), p)
        });
    }

    #[test]
    fn the_gateway_is_the_hosts_loopback_v4() {
        echo_through(sock("192.0.2.2:40002"), "127.0.0.1:0", |p| {
            SocketAddr::new("192.0.2.1".parse().unwrap(), p)
        });
    }

    #[test]
    fn the_gateway_is_the_hosts_loopback_v6() {
        echo_through(sock("[fd00::2]:40002"), "[::1]:0", |p| {
            SocketAddr::new("fd00::1".parse().unwrap(), p)
        });
    }

    fn local_port(flows: &UdpFlows, route: Route) -> u16 {
        let Route::Socket { index, gen, .. } = route else {
            panic!("not an outbound flow")
        };
        flows
            .socket(index, gen)
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn keeps_the_guests_source_port_when_it_can() {
        let echo = echo_server("127.0.0.1:0");
        let dst = echo.local_addr().unwrap();
        let mut flows = UdpFlows::new(GatewayMap::default());
        let now = Instant::now();

        // Free: briefly bound to find one, then released.
        let free = std::net::UdpSocket::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let guest = SocketAddr::from(([10, 0, 2, 15], free));
        let r = sent(&mut flows, guest, dst, b"a", now).unwrap();
        assert_eq!(local_port(&flows, r), free);
        assert_eq!(echo_once(&echo).port(), free);

        // Taken by a socket that does not share: another port.
        let holder = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let taken = holder.local_addr().unwrap().port();
        let guest = SocketAddr::from(([10, 0, 2, 15], taken));
        let r = sent(&mut flows, guest, dst, b"b", now).unwrap();
        assert_ne!(local_port(&flows, r), taken);
        assert_ne!(echo_once(&echo).port(), taken);

        // Two flows from one guest port to two remotes share the port.
        let echo2 = echo_server("127.0.0.1:0");
        let guest = SocketAddr::from(([10, 0, 2, 15], free));
        let r = sent(&mut flows, guest, echo2.local_addr().unwrap(), b"c", now).unwrap();
        assert_eq!(local_port(&flows, r), free);
        assert_eq!(echo_once(&echo2).port(), free);
        assert_eq!(flows.len(), 3);
    }

    #[test]
    fn idle_flows_expire_and_their_tokens_go_stale() {
        let echo = echo_server("127.0.0.1:0");
        let dst = echo.local_addr().unwrap();
        let mut flows = UdpFlows::new(GatewayMap::default());
        let t0 = Instant::now();
        let guest = sock("10.0.2.15:40003");
        let Route::Socket { index, gen, .. } = sent(&mut flows, guest, dst, b"x", t0).unwrap()
        else {
            panic!()
        };
        // Traffic at t0 + 100 s keeps it alive until t0 + 280 s.
        sent(&mut flows, guest, dst, b"y", t0 + Duration::from_secs(100)).unwrap();
        assert_eq!(flows.expire(t0 + TIMEOUT), 0);
        assert_eq!(flows.expire(t0 + Duration::from_secs(280)), 1);
        assert!(flows.is_empty());
        assert!(flows.socket(index, gen).is_none());

        // The slot is reused under another generation.
        let Route::Socket {
            index: i2,
            gen: g2,
            new: true,
        } = sent(&mut flows, guest, dst, b"z", t0).unwrap()
        else {
            panic!()
        };
        assert_eq!(i2, index);
        assert_ne!(g2, gen);
        assert!(flows.socket(index, gen).is_none());
        let mut batch = RecvBatch::new(4);
        echo_once(&echo);
        echo_once(&echo);
        let mut n = 0;
        flows.socket_readable(index, gen, t0, &mut batch, &mut |_| n += 1);
        assert_eq!(n, 0, "a stale token reads nothing");
        flows.clear();
        assert!(flows.is_empty());
        assert!(flows.socket(i2, g2).is_none());
    }

    fn closed_port(lo: &str) -> SocketAddr {
        std::net::UdpSocket::bind(lo).unwrap().local_addr().unwrap()
    }

    #[test]
    fn closed_port_gives_unreachable_v4() {
        let dst = closed_port("127.0.0.1:0");
        let guest = sock("10.0.2.15:40004");
        let mut flows = UdpFlows::new(GatewayMap::default());
        let Route::Socket { index, gen, .. } =
            sent(&mut flows, guest, dst, b"knock", Instant::now()).unwrap()
        else {
            panic!()
        };
        let mut batch = RecvBatch::new(4);
        assert_eq!(
            poll(&mut flows, index, gen, &mut batch),
            [Got::Unreach(
                guest,
                dst,
                false,
                3,
                3,
                Some(dst.ip()),
                b"knock".to_vec()
            )]
        );
    }

    #[test]
    fn closed_port_at_the_gateway_gives_unreachable_v6() {
        let real = closed_port("[::1]:0");
        let gw: IpAddr = "fd00::1".parse().unwrap();
        let dst = SocketAddr::new(gw, real.port());
        let guest = sock("[fd00::2]:40004");
        let mut flows = UdpFlows::new(gateway_map());
        let Route::Socket { index, gen, .. } =
            sent(&mut flows, guest, dst, b"knock", Instant::now()).unwrap()
        else {
            panic!()
        };
        let mut batch = RecvBatch::new(4);
        assert_eq!(
            poll(&mut flows, index, gen, &mut batch),
            [Got::Unreach(
                guest,
                dst,
                true,
                1,
                4,
                Some(gw),
                b"knock".to_vec()
            )]
        );
        // The error was consumed: the next datagram goes out.
        sent(&mut flows, guest, dst, b"again", Instant::now()).unwrap();
        assert_eq!(flows.dropped(), 0);
    }

    #[test]
    fn inbound_replies_go_back_through_the_listener() {
        let listener = UdpSocket::open(false).unwrap();
        listener.bind(sock("127.0.0.1:0")).unwrap();
        let client = echo_server("127.0.0.1:0");
        client
            .send_to(b"ping", listener.local_addr().unwrap())
            .unwrap();
        let mut batch = RecvBatch::new(4);
        let deadline = Instant::now() + Duration::from_secs(1);
        while listener.recv_batch(&mut batch).unwrap() == 0 {
            assert!(Instant::now() < deadline, "nothing on the listener");
            std::thread::sleep(Duration::from_millis(2));
        }
        let (from, payload) = batch.get(0).unwrap();
        assert_eq!(payload, b"ping");
        assert_eq!(from, client.local_addr().unwrap());

        let mut flows = UdpFlows::new(gateway_map());
        let now = Instant::now();
        let guest = sock("10.0.2.15:5353");
        let seen = SocketAddr::new("192.0.2.1".parse().unwrap(), from.port());
        let index = flows.inbound(7, from, guest, seen, now).unwrap();
        assert_eq!(flows.inbound(7, from, guest, seen, now).unwrap(), index);
        assert_eq!(flows.len(), 1);

        // The guest answers the client as it sees it.
        let route = sent(&mut flows, guest, seen, b"pong", now).unwrap();
        assert_eq!(
            route,
            Route::Listener {
                listener: 7,
                to: from
            }
        );
        listener.send_to(b"pong", from).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");

        // A reply to a client that is gone comes back as an error.
        drop(client);
        listener.send_to(b"late", from).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut got = Vec::new();
        while got.is_empty() {
            assert!(Instant::now() < deadline, "no error on the listener");
            std::thread::sleep(Duration::from_millis(2));
            flows.listener_errors(7, &listener, &mut batch, &mut |e| got.push(owned(e)));
        }
        assert_eq!(
            got,
            [Got::Unreach(
                guest,
                seen,
                false,
                3,
                3,
                Some("192.0.2.1".parse().unwrap()),
                b"late".to_vec()
            )]
        );

        assert_eq!(flows.close_listener(7), 1);
        assert!(flows.is_empty());
    }

    #[test]
    fn too_many_flows_are_refused() {
        let mut flows = UdpFlows::new(GatewayMap::default());
        let now = Instant::now();
        let guest = sock("10.0.2.15:53");
        for i in 0..MAX_FLOWS {
            let client = SocketAddr::from(([192, 0, 2, (i / 60000) as u8], (i % 60000) as u16 + 1));
            flows.inbound(0, client, guest, client, now).unwrap();
        }
        let one_more = sock("198.51.100.1:9");
        assert!(matches!(
            flows.inbound(0, one_more, guest, one_more, now),
            Err(UdpError::TooManyFlows)
        ));
        assert!(matches!(
            sent(&mut flows, guest, one_more, b"", now),
            Err(UdpError::TooManyFlows)
        ));
        assert_eq!(flows.expire(now + TIMEOUT), MAX_FLOWS);
        assert!(flows.is_empty());
    }
}
