//! The engine's side of pasta's splice paths: `-T`/`-U` listeners in the
//! namespace (and `-T auto` following the host), connections and
//! datagrams joined socket to socket without the tap, and the namespace
//! sockets they need, made through the agent.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::{
    forward, free_slot, udp_info, unmap, Engine, Event, Exit, Kind, SpliceForward, Stats, Token,
    UdpSpliceForward, HOST_LISTENER, NS_POOL,
};
use crate::flow::loopback;
use crate::flow::policy::{Gate, Parked};
use crate::flow::record::{Direction, FlowInfo, Proto};
use crate::flow::splice::Interest;
use crate::flow::udp_splice::{ListenerKey, UdpSpliceFlows};
use crate::netns::Agent;
use crate::sys::socket::family;
use crate::sys::tcp::TcpSocket;
use crate::sys::udp::MAX_BATCH;
use crate::sys::Epoll;

impl Engine {
    /// Datagrams from clients of `-U` listener `i`: each goes out its
    /// client's flow, a host socket connected to the host's loopback.
    pub(super) fn udp_splice_in(&mut self, i: u32) {
        let Some(Some(fwd)) = self.udp_splice_listeners.get(i as usize) else {
            return;
        };
        let now = Instant::now();
        let (splice, epoll, stats) = (&mut self.udp_splice, &self.epoll, &self.shared.stats);
        let gate = &mut self.flows.gate;
        fwd.sock.drain(&mut self.udp_batch, 4, |batch| {
            let mut run = SpliceRun::new();
            let mut failed = 0;
            for (client, payload) in batch.iter() {
                let flow = (i, client, fwd.target);
                if gate_udp_splice(gate, splice, flow, false, payload, now) {
                    continue;
                }
                failed += run.push((splice, epoll, None), flow, payload, now);
            }
            failed += run.flush((splice, epoll, None), now);
            stats.drop_n(crate::wire::DropReason::SocketFull, failed as u64);
        });
    }

    /// Replies on spliced UDP flow `index`: back to its client from the
    /// listener it came through, a batch per `sendmmsg`.
    pub(super) fn udp_splice_out(&mut self, index: usize, gen: u8) {
        let now = Instant::now();
        let Some((sock, key, client)) = self.udp_splice.get(index, gen, now) else {
            return;
        };
        let listener = if key & HOST_LISTENER != 0 {
            self.flows
                .udp_forwards
                .get((key & !HOST_LISTENER) as usize)
                .and_then(Option::as_ref)
                .map(|f| &f.sock)
        } else {
            self.udp_splice_listeners
                .get(key as usize)
                .and_then(Option::as_ref)
                .map(|f| &f.sock)
        };
        let Some(listener) = listener else { return };
        let stats = &self.shared.stats;
        let mut bytes = 0;
        sock.drain(&mut self.udp_batch, 4, |batch| {
            let mut msgs: [(&[u8], Option<SocketAddr>); crate::sys::udp::MAX_BATCH] =
                [(&[], None); crate::sys::udp::MAX_BATCH];
            let mut count = 0;
            for (slot, (_, payload)) in msgs.iter_mut().zip(batch.iter()) {
                *slot = (payload, Some(client));
                bytes += payload.len();
                count += 1;
            }
            let (_, failed) = listener.send_batch(&msgs[..count]);
            if failed > 0 {
                stats.drop_n(crate::wire::DropReason::SocketFull, failed as u64);
            }
        });
        self.udp_splice.count(index, bytes, false);
    }

    /// Takes the connections waiting on `-T` listener `i` and joins each
    /// to a new connection to the host's loopback.
    pub(super) fn accept_splice(&mut self, i: usize) -> io::Result<()> {
        for _ in 0..64 {
            let Some(Some(fwd)) = self.splice_listeners.get(i) else {
                return Ok(());
            };
            let target = fwd.target;
            let at = fwd.listener.local_addr();
            let (sock, peer) = match fwd.listener.accept() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    self.sink.event(Event::Warning {
                        message: format!("-T: accept for {target}: {e}"),
                    });
                    break;
                }
            };
            let info = FlowInfo {
                proto: Proto::Tcp,
                direction: Direction::Outbound,
                src: unmap(peer),
                dst: at,
            };
            self.splice_accepted(info, sock, target, false)?;
        }
        Ok(())
    }

    /// `-T auto`: mirrors the host's loopback ports that appeared since
    /// the last scan into the namespace, and closes those that went.
    pub(super) fn follow_host_ports(&mut self, now: Instant) -> io::Result<()> {
        let Some(mut auto) = self.ns_auto.take() else {
            return Ok(());
        };
        let result = self.mirror(&mut auto, now);
        self.ns_auto = Some(auto);
        result
    }

    pub(super) fn mirror(&mut self, auto: &mut forward::NsAuto, now: Instant) -> io::Result<()> {
        let ours = self.listeners.ports();
        let Some((gone, new)) = auto.scan(now, &ours) else {
            return Ok(());
        };
        for i in gone {
            // Closing the listener takes it out of epoll too.
            if let Some(slot) = self.splice_listeners.get_mut(i) {
                *slot = None;
            }
        }
        for (port, v6) in &new {
            let Some(agent) = self.agent.as_mut() else {
                break;
            };
            let at = SocketAddr::new(loopback(*v6), *port);
            // Taken in the namespace: its own server wins; tried again
            // on the next scan.
            let Ok((listener, target)) = crate::netns::ns_listener(agent, at, *port) else {
                continue;
            };
            let i = self.watch_splice_listener(listener, target, true)?;
            auto.bound.insert((*port, *v6), i);
        }
        self.skip_ns_listeners();
        Ok(())
    }

    /// Files a `-T` listener (`auto`: `-T auto`'s) in a free slot and
    /// watches it; its slot.
    fn watch_splice_listener(
        &mut self,
        listener: crate::sys::tcp::TcpListener,
        target: SocketAddr,
        auto: bool,
    ) -> io::Result<usize> {
        let i = free_slot(&mut self.splice_listeners);
        let token = Token::new(Kind::SpliceListen, 0, i as u32);
        self.epoll.add_readable(&listener, token.encode())?;
        self.splice_listeners[i] = Some(SpliceForward {
            listener,
            target,
            auto,
        });
        Ok(i)
    }

    /// Tells `-t auto` the namespace ports that are ours (`-T`
    /// listeners): forwarding them from the host would loop.
    fn skip_ns_listeners(&mut self) {
        let skip = self
            .splice_listeners
            .iter()
            .flatten()
            .map(|f| f.listener.local_addr().port())
            .collect();
        self.listeners.set_skip(skip);
    }

    /// `-T` (`udp`: `-U`) forwards at run time: each (namespace address,
    /// host port) gets a socket the agent makes in the namespace, bound
    /// there and watched. All are made before any is watched, so a port
    /// in use fails the whole call, naming it.
    pub(super) fn add_ns(&mut self, udp: bool, binds: &[(SocketAddr, u16)]) -> io::Result<usize> {
        let agent = self.agent.as_mut().ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, "no namespace: pasta only")
        })?;
        if udp {
            let made = binds
                .iter()
                .map(|&(at, port)| crate::netns::ns_udp_socket(agent, at, port))
                .collect::<io::Result<Vec<_>>>()?;
            for (sock, target) in made {
                let i = free_slot(&mut self.udp_splice_listeners);
                let token = Token::new(Kind::UdpSpliceListen, 0, i as u32);
                self.epoll.add_readable(&sock, token.encode())?;
                self.udp_splice_listeners[i] = Some(UdpSpliceForward { sock, target });
            }
        } else {
            let made = binds
                .iter()
                .map(|&(at, port)| crate::netns::ns_listener(agent, at, port))
                .collect::<io::Result<Vec<_>>>()?;
            for (listener, target) in made {
                self.watch_splice_listener(listener, target, false)?;
            }
            self.skip_ns_listeners();
        }
        Ok(binds.len())
    }

    /// Closes the `-T` (`udp`: `-U`) listeners bound on `addrs` in the
    /// namespace, but `-T auto`'s (the scan owns those); returns how
    /// many. Spliced TCP connections go on; a `-U` listener's flows end
    /// with it, as their replies went out through it.
    pub(super) fn remove_ns(&mut self, udp: bool, addrs: &[SocketAddr]) -> usize {
        let on = |a: SocketAddr| addrs.contains(&a);
        let mut n = 0;
        if udp {
            for (i, slot) in self.udp_splice_listeners.iter_mut().enumerate() {
                if slot
                    .as_ref()
                    .is_some_and(|f| f.sock.local_addr().is_ok_and(on))
                {
                    *slot = None;
                    self.udp_splice.close_listener(i as ListenerKey);
                    n += 1;
                }
            }
        } else {
            for slot in &mut self.splice_listeners {
                if slot
                    .as_ref()
                    .is_some_and(|f| !f.auto && on(f.listener.local_addr()))
                {
                    *slot = None;
                    n += 1;
                }
            }
            self.skip_ns_listeners();
        }
        n
    }

    /// Joins an accepted connection to a new one to `target` (as
    /// `splice_to`), or parks it for the hook of its direction first.
    pub(super) fn splice_accepted(
        &mut self,
        info: FlowInfo,
        sock: TcpSocket,
        target: SocketAddr,
        ns: bool,
    ) -> io::Result<()> {
        if let Some(gate) = self.flows.gate.as_mut().filter(|g| g.wants(&info)) {
            let parked = Parked::Splice { sock, target, ns };
            match gate.admit_accepted(info, parked, Instant::now()) {
                Some(Parked::Splice { sock, .. }) => self.splice_to(sock, target, ns, info),
                _ => Ok(()),
            }
        } else {
            self.splice_to(sock, target, ns, info)
        }
    }

    /// Joins `sock` to a new connection to `dst`, in the namespace (`ns`:
    /// an inbound flow, whose far side is the guest's) or on the host (an
    /// outbound one, `-T`, whose accepted side is the guest's). `info`
    /// describes it for flow records.
    pub(super) fn splice_to(
        &mut self,
        sock: TcpSocket,
        dst: SocketAddr,
        ns: bool,
        info: FlowInfo,
    ) -> io::Result<()> {
        let out = if ns {
            self.ns_socket(dst.is_ipv6())
                .and_then(|fd| TcpSocket::connect_on(fd, dst))
        } else {
            TcpSocket::connect(dst)
        };
        // The source the connection got, for records only: a syscall
        // per connection otherwise spent for nothing.
        let rec = &self.splice.rec;
        let local = out
            .as_ref()
            .ok()
            .filter(|_| rec.on_open || rec.on_end)
            .and_then(|s| s.local_sock().ok())
            .unwrap_or(SocketAddr::new(crate::flow::unspecified(dst.is_ipv6()), 0));
        let meta = crate::flow::record::Meta::new(info, (local, dst), Instant::now());
        self.splice_open(sock, out, (meta, usize::from(ns)))
    }

    /// Starts a spliced flow: `out` is connecting; the client is reset if
    /// it could not be made.
    pub(super) fn splice_open(
        &mut self,
        sock: TcpSocket,
        out: io::Result<TcpSocket>,
        meta: (crate::flow::record::Meta, usize),
    ) -> io::Result<()> {
        match self.splice.open(sock, out, meta) {
            Ok((index, gen)) => {
                let none = Interest::default();
                let connect = Interest {
                    read: false,
                    write: true,
                };
                self.watch_splice(index, gen, 1, none, connect)
            }
            // The client is reset; the others go on.
            Err(_) => {
                Stats::add(&self.shared.stats.flow_errors, 1);
                Ok(())
            }
        }
    }

    /// A socket in the namespace of the family of `v6`, from the pool or
    /// else straight from the agent.
    pub(super) fn ns_socket(&mut self, v6: bool) -> io::Result<std::os::fd::OwnedFd> {
        if let Some(fd) = self.ns_pool.as_mut().and_then(|p| p[usize::from(v6)].pop()) {
            return Ok(fd);
        }
        let agent = self.agent.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        agent.socket(family(v6), libc::SOCK_STREAM)
    }

    /// Tops the namespace socket pool up. The agent's replies may carry
    /// the command's exit, which then ends the engine here.
    pub(super) fn refill_ns_pool(&mut self) -> Option<Exit> {
        let (Some(pool), Some(agent)) = (self.ns_pool.as_mut(), self.agent.as_mut()) else {
            return None;
        };
        for (i, v6) in [false, true].into_iter().enumerate() {
            while pool[i].len() < NS_POOL {
                match agent.socket(family(v6), libc::SOCK_STREAM) {
                    Ok(fd) => pool[i].push(fd),
                    Err(_) => break,
                }
            }
        }
        agent.exited().map(|status| {
            self.sink.event(Event::CommandExited { status });
            Exit::Finished(format!("command exited with status {status}"))
        })
    }

    /// Adds, changes or removes side `s` of spliced flow `index` in epoll.
    pub(super) fn watch_splice(
        &self,
        index: usize,
        gen: u8,
        s: usize,
        was: Interest,
        now: Interest,
    ) -> io::Result<()> {
        let Some(sock) = self.splice.socket(index, gen, s) else {
            return Ok(());
        };
        if now.none() {
            return self.epoll.delete(sock);
        }
        let token = Token::new(Kind::Splice, gen << 1 | s as u8, index as u32).encode();
        self.epoll
            .watch_level(sock, token, now.read, now.write, was.none())
    }
}

/// A spliced UDP flow: (listener key, client, target).
pub(super) type SpliceFlow = (ListenerKey, SocketAddr, SocketAddr);

/// Sends `msgs` (datagrams of one client, in order) on the spliced UDP
/// flow of `flow`, made first if new: its socket is opened in the
/// namespace through `agent` when given (the server is the namespace's),
/// else on the host, then connected and watched. One `sendmmsg` per
/// batch. Returns how many were not sent.
pub(super) fn splice_datagrams(
    flows: &mut UdpSpliceFlows,
    epoll: &Epoll,
    agent: Option<&mut Agent>,
    flow: SpliceFlow,
    msgs: &[(&[u8], Option<SocketAddr>)],
    now: Instant,
) -> usize {
    let (key, client, _) = flow;
    let found = flows
        .find(key, client, now)
        .or_else(|| new_splice_flow(flows, epoll, agent, flow, now));
    let Some((sock, index)) = found.and_then(|(index, gen)| {
        let (sock, _, _) = flows.get(index, gen, now)?;
        Some((sock, index))
    }) else {
        return msgs.len();
    };
    let (sent, failed) = sock.send_batch(msgs);
    // The refused are taken to be the last ones: a full buffer refuses
    // the rest of a batch (a single refusal mid-batch is rare).
    let bytes = msgs[..sent].iter().map(|(d, _)| d.len()).sum();
    flows.count(index, bytes, true);
    failed
}

/// Datagrams of one client in a row, gathered from a receive batch and
/// sent together when the client changes, the run is full, or the batch
/// ends (`flush`).
pub(super) struct SpliceRun<'a> {
    flow: Option<SpliceFlow>,
    msgs: [(&'a [u8], Option<SocketAddr>); MAX_BATCH],
    n: usize,
}

impl<'a> SpliceRun<'a> {
    pub(super) fn new() -> Self {
        SpliceRun {
            flow: None,
            msgs: [(&[], None); MAX_BATCH],
            n: 0,
        }
    }

    /// Adds `payload` of `flow`, sending the run gathered so far first if
    /// it is another flow's or full. Returns how many were not sent.
    pub(super) fn push(
        &mut self,
        (flows, epoll, agent): (&mut UdpSpliceFlows, &Epoll, Option<&mut Agent>),
        flow: SpliceFlow,
        payload: &'a [u8],
        now: Instant,
    ) -> usize {
        let mut failed = 0;
        if self.n == MAX_BATCH || self.flow.is_some_and(|f| f != flow) {
            failed = self.flush((flows, epoll, agent), now);
        }
        self.flow = Some(flow);
        self.msgs[self.n] = (payload, None);
        self.n += 1;
        failed
    }

    /// Sends the run gathered; how many were not sent.
    pub(super) fn flush(
        &mut self,
        (flows, epoll, agent): (&mut UdpSpliceFlows, &Epoll, Option<&mut Agent>),
        now: Instant,
    ) -> usize {
        let (Some(flow), n) = (self.flow.take(), std::mem::take(&mut self.n)) else {
            return 0;
        };
        splice_datagrams(flows, epoll, agent, flow, &self.msgs[..n], now)
    }
}

pub(super) fn new_splice_flow(
    flows: &mut UdpSpliceFlows,
    epoll: &Epoll,
    agent: Option<&mut Agent>,
    (key, client, target): SpliceFlow,
    now: Instant,
) -> Option<(usize, u8)> {
    let v6 = target.is_ipv6();
    // With the agent the server is the namespace's (a host-loopback client
    // of -u: inbound); without, the client is (-U: outbound).
    let inbound = agent.is_some();
    let sock = match agent {
        Some(agent) => {
            let fd = agent.socket(family(v6), libc::SOCK_DGRAM).ok()?;
            crate::sys::udp::UdpSocket::from_fd(fd, v6).ok()?
        }
        None => crate::sys::udp::UdpSocket::open(v6).ok()?,
    };
    sock.connect(target).ok()?;
    let info = udp_info(client, target, inbound);
    // As for spliced TCP: the source only matters to records.
    let local = Some(&sock)
        .filter(|_| flows.rec.on_open || flows.rec.on_end)
        .and_then(|s| s.local_addr().ok())
        .unwrap_or(SocketAddr::new(crate::flow::unspecified(v6), 0));
    let meta = crate::flow::record::Meta::new(info, (local, target), now);
    let (index, gen) = flows.insert(key, client, sock, (meta, !inbound), now)?;
    let registered = flows.socket(index, gen).map(|s| {
        let token = Token::new(Kind::UdpSplice, gen, index as u32);
        epoll.add_readable(s, token.encode())
    });
    matches!(registered, Some(Ok(()))).then_some((index, gen))
}

/// Parks the first datagram of a new spliced UDP flow when a hook of its
/// direction exists (`inbound`: a host-loopback client of `-u`), or
/// queues it behind one parked already; `true` when the gate took it.
pub(super) fn gate_udp_splice(
    gate: &mut Option<Gate>,
    splice: &UdpSpliceFlows,
    (key, client, target): SpliceFlow,
    inbound: bool,
    payload: &[u8],
    now: Instant,
) -> bool {
    let info = udp_info(client, target, inbound);
    let Some(gate) = gate.as_mut().filter(|g| g.wants(&info)) else {
        return false;
    };
    if splice.has(key, client) {
        return false;
    }
    let make = || Parked::UdpSplice {
        key,
        client,
        target,
        inbound,
        queue: vec![payload.to_vec()],
    };
    gate.admit(info, make, payload, now)
}
