//! The engine: one thread per instance running an epoll loop over every
//! descriptor the instance owns, plus a 20 ms interval timer for periodic
//! work (TCP ACK and retransmission deadlines, flow expiry).
//!
//! Theory of operation: `spawn` creates the epoll instance, the waker
//! (eventfd) and the timer on the caller's thread, so that a failure is
//! reported before any thread exists, then moves them into the engine
//! thread. Every registration carries a `Token`. The loop blocks in
//! epoll_wait with no timeout: the timer is a descriptor like any other,
//! so there is exactly one place the thread sleeps.
//!
//! Stopping: `EngineHandle::stop` raises a flag and signals the waker; the
//! loop sees the waker, notices the flag and returns, dropping (closing)
//! everything it owns. The handle's share of the waker is dropped after
//! the join, so when `stop` returns no descriptor of the instance is open.
//!
//! Readiness is level-triggered (TCP flow sockets excepted: see
//! `flow::tcp`): a handler that leaves data unread is called again on the
//! next round instead of stalling, which makes bounded batches per round
//! (fairness between flows) safe.

mod control;
mod events;
pub mod forward;
mod guest;
mod splice;
mod stats;
pub mod token;

pub use events::{Discard, Event, EventSink};
pub use forward::{SpliceForward, TcpForward, UdpSpliceForward};
pub use guest::BackendSpec;
pub use stats::{Snapshot, Stats};
pub use token::{Kind, Token};

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use crate::backend::pcap::PcapWriter;
use crate::backend::txqueue::TxQueue;
use crate::config::GuestConfig;
use crate::flow::icmp::{GatewayMap, IcmpFlows};
use crate::flow::loopback;
use crate::flow::policy::{Counts, Decision, Gate, Hooks, Parked, PolicySink};
use crate::flow::record::{Direction, FlowInfo, Proto};
use crate::flow::splice::{Change, SpliceFlows};
use crate::flow::tcp::{Registration, TcpFlows};
use crate::flow::udp::{UdpFlows, UdpForward};
use crate::flow::udp_splice::{ListenerKey, UdpSpliceFlows};
use crate::l2::{Flows, NewSocket, L2};
use crate::netns::Agent;
use crate::sys::tcp::TcpSocket;
use crate::sys::udp::RecvBatch;
use crate::sys::{Epoll, EventFd, Events, IntervalTimer};
use forward::{AutoSpec, Forwards};
use guest::{GuestLink, LinkState};
use splice::{gate_udp_splice, splice_datagrams, SpliceRun};

/// Period of the engine's timer (DESIGN.md: ACK/retransmission timers).
pub const TICK: Duration = Duration::from_millis(20);

/// How long `stop` waits for the thread before giving up on it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Events fetched per epoll_wait: a bound on work per round, not on flows.
const EVENT_BATCH: usize = 256;

/// Bytes of frames queued for the guest per round (a bound, not a size).
const TX_QUEUE: usize = 4 << 20;

pub struct EngineConfig {
    pub tick: Duration,
    /// What the guest is told and what we answer for.
    pub guest: GuestConfig,
    /// The guest link; `None` runs the loop alone (tests, embedding).
    pub backend: Option<BackendSpec>,
    /// pasta: the namespace agent, whose command's exit ends the engine.
    pub agent: Option<Agent>,
    /// Gateway addresses translated to the host's loopback (`--no-map-gw`
    /// leaves it empty).
    pub gateway_map: GatewayMap,
    pub pcap: Option<PathBuf>,
    /// `--trace`: report every frame (`Event::Trace`).
    pub trace: bool,
    /// Inbound TCP forwards (`-t`), bound before anything else starts so
    /// that a port in use fails early and a command finds them listening.
    pub tcp_forwards: Vec<TcpForward>,
    /// pasta's `-t auto`: follow the ports the namespace listens on (needs
    /// `agent`, a process in the namespace).
    pub tcp_auto: bool,
    /// pasta's `-T`: listeners in the namespace, spliced to the host.
    pub splice_forwards: Vec<SpliceForward>,
    /// pasta's `-T auto`: follow the host's loopback ports (needs `agent`).
    pub ns_tcp_auto: bool,
    /// pasta: `-t` clients on the host's loopback are spliced to the
    /// namespace's loopback (not with `--no-splice`; needs `agent`).
    pub splice_inbound: bool,
    /// Inbound UDP forwards (`-u`), bound before anything starts.
    pub udp_forwards: Vec<UdpForward>,
    /// pasta's `-U`: sockets in the namespace, spliced to the host.
    pub udp_splice_forwards: Vec<UdpSpliceForward>,
    /// Policy hooks and who answers them (none: no flow waits).
    pub policy: Option<(Hooks, Box<dyn PolicySink>)>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            tick: TICK,
            guest: GuestConfig::example(),
            backend: None,
            agent: None,
            gateway_map: GatewayMap::default(),
            pcap: None,
            trace: false,
            tcp_forwards: Vec::new(),
            tcp_auto: false,
            splice_forwards: Vec::new(),
            ns_tcp_auto: false,
            splice_inbound: false,
            udp_forwards: Vec::new(),
            udp_splice_forwards: Vec::new(),
            policy: None,
        }
    }
}

/// What the owner asks of a running engine.
pub enum Command {
    /// Inbound forwards bound by the caller, to start accepting.
    AddTcp(Vec<TcpForward>),
    AddUdp(Vec<UdpForward>),
    /// Close the forwards listening on these addresses; the count goes
    /// back on the channel.
    RemoveTcp(Vec<SocketAddr>, mpsc::Sender<usize>),
    RemoveUdp(Vec<SocketAddr>, mpsc::Sender<usize>),
    /// pasta's `-T` (`-U` with `udp`) at run time: listen in the
    /// namespace on each address, for the host loopback's port given with
    /// it. All or none: the first that cannot be bound is the answer.
    AddNs {
        udp: bool,
        binds: Vec<(SocketAddr, u16)>,
        reply: mpsc::Sender<io::Result<usize>>,
    },
    /// Close the `-T`/`-U` listeners on these namespace addresses (not
    /// `-T auto`'s); the count goes back.
    RemoveNs {
        udp: bool,
        addrs: Vec<SocketAddr>,
        reply: mpsc::Sender<usize>,
    },
    /// Count the live flows.
    Census(mpsc::Sender<Census>),
}

/// Live flows and totals, counted by the engine thread on request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// TCP flows by state.
    pub tcp: Vec<(&'static str, u64)>,
    pub udp: u64,
    pub icmp: u64,
    pub splice: u64,
    pub udp_splice: u64,
    /// Flows waiting for a policy decision.
    pub parked: u64,
    /// Payload bytes of TCP and UDP flows, spliced TCP included, ended
    /// and live: [from the guest, to the guest].
    pub bytes: [u64; 2],
    pub policy: Counts,
}

/// State shared between the engine thread and its handle.
struct Shared {
    stop: AtomicBool,
    waker: EventFd,
    stats: Stats,
    commands: Mutex<Vec<Command>>,
    /// The census at the end, for owners asking after the thread ended.
    last_census: Mutex<Option<Census>>,
}

struct Engine {
    epoll: Epoll,
    timer: IntervalTimer,
    shared: Arc<Shared>,
    sink: Box<dyn EventSink>,
    link: Option<GuestLink>,
    agent: Option<Agent>,
    l2: L2,
    flows: Flows,
    tx: TxQueue,
    pcap: Option<PcapWriter<std::io::BufWriter<std::fs::File>>>,
    /// `--trace`: this turn's frames, described.
    trace: Option<Vec<String>>,
    /// Inbound forwards; epoll tokens carry their slot and generation.
    listeners: Forwards,
    /// `-T` listeners (token index = position; `-T auto` empties and
    /// reuses slots) and their flows.
    splice_listeners: Vec<Option<SpliceForward>>,
    ns_auto: Option<forward::NsAuto>,
    splice: SpliceFlows,
    /// Spare TCP sockets made in the namespace (IPv4, IPv6), so that a
    /// spliced `-t` connection rarely waits for the agent.
    ns_pool: Option<[Vec<std::os::fd::OwnedFd>; 2]>,
    /// Where UDP sockets are read into (recvmmsg), allocated once.
    udp_batch: RecvBatch,
    /// `-U` listeners (token index = position), and the spliced UDP flows
    /// of those and of host-loopback clients of `-u`.
    udp_splice_listeners: Vec<Option<UdpSpliceForward>>,
    udp_splice: UdpSpliceFlows,
}

/// Listener keys of spliced UDP flows: `-U` listeners by position, `-u`
/// ones (host-loopback clients) by position with this bit set.
const HOST_LISTENER: ListenerKey = 1 << 31;

/// Spare namespace sockets kept per family, refilled on the timer.
const NS_POOL: usize = 8;

/// Why the loop ended by itself.
enum Exit {
    Stopped,
    Finished(String),
}

#[derive(Debug)]
pub enum StopError {
    /// The thread did not finish within `STOP_TIMEOUT`; it was left running.
    Timeout,
    /// The engine loop ended with an error (reported, resources released).
    Failed(io::Error),
    /// The engine thread panicked.
    Panicked,
}

impl std::fmt::Display for StopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopError::Timeout => write!(f, "engine thread did not stop within {STOP_TIMEOUT:?}"),
            StopError::Failed(e) => write!(f, "engine failed: {e}"),
            StopError::Panicked => write!(f, "engine thread panicked"),
        }
    }
}

impl std::error::Error for StopError {}

pub struct EngineHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<io::Result<()>>>,
    done: mpsc::Receiver<()>,
}

/// Starts an engine thread. Errors creating its descriptors, binding its
/// socket or opening its capture are returned here, on the caller's thread.
pub fn spawn(config: EngineConfig, sink: Box<dyn EventSink>) -> io::Result<EngineHandle> {
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        waker: EventFd::new()?,
        stats: Stats::default(),
        commands: Mutex::new(Vec::new()),
        last_census: Mutex::new(None),
    });
    let epoll = Epoll::new()?;
    let timer = IntervalTimer::new(config.tick)?;
    epoll.add_readable(&shared.waker, Token::of(Kind::Waker).encode())?;
    epoll.add_readable(&timer, Token::of(Kind::Timer).encode())?;
    let mut tx = TxQueue::new(TX_QUEUE);
    if let Some(BackendSpec::Tap(fd)) = &config.backend {
        tx.set_header(crate::backend::txqueue::Header::Vnet);
        // A capture shows frames as they are on the link: with checksum
        // offload, those are half-made (the pseudo-header sum) both ways.
        if config.pcap.is_some() {
            crate::sys::tun::set_checksum_offload(std::os::fd::AsFd::as_fd(fd), false)?;
            tx.set_checksum_offload(false);
        }
    }
    let link = match config.backend {
        Some(spec) => {
            let (link, path) = GuestLink::open(spec, &epoll)?;
            if let Some(path) = path {
                sink.event(Event::Listening { path });
            }
            Some(link)
        }
        None => None,
    };
    if let Some(sock) = config.agent.as_ref().and_then(|a| a.socket_fd()) {
        epoll.add_readable(sock, Token::of(Kind::Agent).encode())?;
    }
    let auto = match (&config.agent, config.tcp_auto) {
        (Some(agent), true) => agent.pid().map(|pid| {
            let spec = AutoSpec {
                pid,
                ipv4: config.guest.v4.is_some(),
                ipv6: config.guest.v6.is_some(),
            };
            let skip = config
                .splice_forwards
                .iter()
                .map(|f| f.listener.local_addr().port())
                .collect();
            (spec, skip)
        }),
        _ => None,
    };
    let listeners = Forwards::new(config.tcp_forwards, auto, Instant::now());
    for (i, gen, l) in listeners.all() {
        epoll.add_readable(l, Token::new(Kind::TcpListen, gen, i as u32).encode())?;
    }
    for (i, f) in config.udp_forwards.iter().enumerate() {
        let token = Token::new(Kind::UdpListen, 0, i as u32);
        epoll.add_readable(&f.sock, token.encode())?;
    }
    for (i, f) in config.udp_splice_forwards.iter().enumerate() {
        let token = Token::new(Kind::UdpSpliceListen, 0, i as u32);
        epoll.add_readable(&f.sock, token.encode())?;
    }
    for (i, f) in config.splice_forwards.iter().enumerate() {
        let token = Token::new(Kind::SpliceListen, 0, i as u32);
        epoll.add_readable(&f.listener, token.encode())?;
    }
    let ns_auto = (config.ns_tcp_auto && config.agent.is_some()).then(|| {
        let bound = config
            .splice_forwards
            .iter()
            .enumerate()
            .filter(|(_, f)| f.auto)
            .map(|(i, f)| {
                let a = f.listener.local_addr();
                ((a.port(), a.is_ipv6()), i)
            })
            .collect();
        forward::NsAuto::new(bound, Instant::now())
    });
    let gate = match config.policy {
        Some((hooks, sink)) => {
            let gate = Gate::new(hooks, sink)?;
            epoll.add_readable(gate.waker(), Token::of(Kind::Policy).encode())?;
            Some(gate)
        }
        None => None,
    };
    let hooks = gate.as_ref().map(|g| g.hooks).unwrap_or_default();
    // -o: an address this host does not have would fail every flow.
    let map = config.gateway_map;
    for a in [map.out4.map(IpAddr::from), map.out6.map(IpAddr::from)]
        .into_iter()
        .flatten()
    {
        std::net::UdpSocket::bind((a, 0))
            .map_err(|e| io::Error::new(e.kind(), format!("-o {a}: cannot bind to it: {e}")))?;
    }
    let mut tcp = TcpFlows::new(config.gateway_map, config.guest.mtu.unwrap_or(65520));
    let mut udp = UdpFlows::new(config.gateway_map);
    let mut splice = SpliceFlows::new();
    let mut udp_splice = UdpSpliceFlows::new();
    let mut icmp = IcmpFlows::new(config.gateway_map);
    for rec in [
        &mut tcp.rec,
        &mut udp.rec,
        &mut splice.rec,
        &mut udp_splice.rec,
        &mut icmp.rec,
    ] {
        rec.on_end = hooks.flow_end;
        rec.on_open = hooks.flow_open;
    }
    let pcap = match &config.pcap {
        Some(p) => Some(
            PcapWriter::create(p)
                .map_err(|e| io::Error::new(e.kind(), format!("--pcap {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let ns_pool = (config.splice_inbound && config.agent.is_some()).then(Default::default);
    let engine = Engine {
        epoll,
        timer,
        shared: Arc::clone(&shared),
        sink,
        link,
        agent: config.agent,
        flows: Flows {
            icmp,
            tcp,
            udp,
            udp_forwards: config.udp_forwards.into_iter().map(Some).collect(),
            gate,
        },
        l2: L2::new(config.guest),
        tx,
        pcap,
        trace: config.trace.then(Vec::new),
        listeners,
        ns_auto,
        splice_listeners: config.splice_forwards.into_iter().map(Some).collect(),
        splice,
        ns_pool,
        udp_batch: RecvBatch::new(crate::sys::udp::MAX_BATCH),
        udp_splice_listeners: config.udp_splice_forwards.into_iter().map(Some).collect(),
        udp_splice,
    };
    let (done_tx, done) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("passt-engine".into())
        .spawn(move || {
            let result = engine.run();
            let _ = done_tx.send(());
            result
        })?;
    Ok(EngineHandle {
        shared,
        thread: Some(thread),
        done,
    })
}

impl EngineHandle {
    pub fn stats(&self) -> Snapshot {
        self.shared.stats.snapshot()
    }

    /// Hands the engine a command; `false` if it is not running.
    pub fn command(&self, c: Command) -> bool {
        if !self.is_running() {
            return false;
        }
        if let Ok(mut q) = self.shared.commands.lock() {
            q.push(c);
        }
        self.shared.waker.signal().is_ok()
    }

    /// Sends the command `make` builds around a reply channel, and waits
    /// up to `wait` for the answer.
    fn ask<T>(&self, wait: Duration, make: impl FnOnce(mpsc::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        if !self.command(make(tx)) {
            return None;
        }
        rx.recv_timeout(wait).ok()
    }

    /// Live flows and totals, or `None` if the engine does not answer
    /// within `wait`.
    pub fn census(&self, wait: Duration) -> Option<Census> {
        self.ask(wait, Command::Census)
            .or_else(|| self.shared.last_census.lock().ok()?.clone())
    }

    /// Closes the forwards listening on `addrs` (`udp`: `-u` ones);
    /// returns how many, once the engine did it.
    pub fn remove_forwards(&self, udp: bool, addrs: Vec<SocketAddr>) -> usize {
        self.ask(STOP_TIMEOUT, |tx| {
            if udp {
                Command::RemoveUdp(addrs, tx)
            } else {
                Command::RemoveTcp(addrs, tx)
            }
        })
        .unwrap_or(0)
    }

    /// pasta's `-T` (`udp`: `-U`) forwards added at run time: listens in
    /// the namespace on each address for the host loopback port paired
    /// with it, all or none.
    pub fn add_ns_forwards(&self, udp: bool, binds: Vec<(SocketAddr, u16)>) -> io::Result<usize> {
        self.ask(STOP_TIMEOUT, |reply| Command::AddNs { udp, binds, reply })
            .unwrap_or_else(|| Err(io::Error::other("the engine is not running")))
    }

    /// Closes the `-T`/`-U` listeners on namespace addresses `addrs`;
    /// returns how many.
    pub fn remove_ns_forwards(&self, udp: bool, addrs: Vec<SocketAddr>) -> usize {
        self.ask(STOP_TIMEOUT, |reply| Command::RemoveNs {
            udp,
            addrs,
            reply,
        })
        .unwrap_or(0)
    }

    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Asks the thread to finish and joins it within `STOP_TIMEOUT`.
    pub fn stop(mut self) -> Result<(), StopError> {
        self.request_stop();
        match self.done.recv_timeout(STOP_TIMEOUT) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Detach: joining would block past the promise.
                self.thread.take();
                return Err(StopError::Timeout);
            }
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(StopError::Failed(e)),
            Some(Err(_)) => Err(StopError::Panicked),
        }
    }

    fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        // If signalling fails the thread cannot be told; stop() then
        // reports a timeout rather than hanging.
        let _ = self.shared.waker.signal();
    }
}

impl Drop for EngineHandle {
    /// A handle dropped without `stop` still stops its thread.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.request_stop();
            if self.done.recv_timeout(STOP_TIMEOUT).is_ok() {
                let _ = thread.join();
            }
        }
    }
}

impl Engine {
    fn run(mut self) -> io::Result<()> {
        let result = self.event_loop();
        // What is still open ends here; whoever listens hears of it, and
        // the counts stay readable.
        self.flows.tcp.clear();
        self.flows.udp.clear();
        self.flows.icmp.clear();
        self.splice.finish();
        self.udp_splice.clear();
        if let Some(gate) = self.flows.gate.as_mut() {
            for (_, flow) in gate.drain() {
                if let Some(sock) = flow.accepted() {
                    sock.set_reset_on_close();
                }
            }
        }
        self.report_flows();
        if let Ok(mut c) = self.shared.last_census.lock() {
            *c = Some(self.census());
        }
        let reason = match &result {
            Ok(Exit::Stopped) => return Ok(()),
            Ok(Exit::Finished(why)) => why.clone(),
            Err(e) => format!("engine error: {e}"),
        };
        self.sink.event(Event::Stopped { reason });
        result.map(drop)
    }

    fn event_loop(&mut self) -> io::Result<Exit> {
        let mut events = Events::with_capacity(EVENT_BATCH);
        loop {
            self.epoll.wait(&mut events, None)?;
            let mut woke = false;
            for (data, readable, writable, error) in events.iter() {
                woke = true;
                let token = match Token::decode(data) {
                    Ok(t) => t,
                    Err(_) => {
                        Stats::add(&self.shared.stats.bad_tokens, 1);
                        continue;
                    }
                };
                if let Some(exit) = self.dispatch(token, readable, writable, error)? {
                    return Ok(exit);
                }
            }
            if woke {
                Stats::add(&self.shared.stats.wakeups, 1);
            }
            self.flush_tx()?;
            if let Some(p) = &mut self.pcap {
                p.flush()?;
            }
            if let Some(lines) = self.trace.as_mut().filter(|t| !t.is_empty()) {
                let lines = std::mem::take(lines);
                self.sink.event(Event::Trace { lines });
            }
        }
    }

    fn dispatch(
        &mut self,
        token: Token,
        readable: bool,
        writable: bool,
        error: bool,
    ) -> io::Result<Option<Exit>> {
        let readable = readable || error;
        let stats = &self.shared.stats;
        match token.kind {
            Kind::Waker => {
                self.shared.waker.drain()?;
                if self.shared.stop.load(Ordering::Acquire) {
                    return Ok(Some(Exit::Stopped));
                }
                self.commands()?;
            }
            Kind::Policy => self.decide(Instant::now())?,
            Kind::Timer => {
                Stats::add(&stats.ticks, self.timer.expirations()?);
                let now = Instant::now();
                self.flows.icmp.expire(now);
                self.flows.udp.expire(now);
                self.udp_splice.expire(now);
                let full = self.flows.udp.take_dropped();
                if full > 0 {
                    stats.drop_n(crate::wire::DropReason::SocketFull, full);
                }
                let tcp = &mut self.flows.tcp;
                self.l2
                    .with_tcp_framer(&mut self.tx, |out| tcp.timer(now, out));
                if self.flows.gate.is_some() {
                    self.decide(now)?;
                    self.report_flows();
                }
                if let Some(exit) = self.refill_ns_pool() {
                    return Ok(Some(exit));
                }
                self.follow_host_ports(now)?;
                for (i, gen) in self.listeners.scan(now) {
                    if let Some(l) = self.listeners.listener(i) {
                        let token = Token::new(Kind::TcpListen, gen, i as u32);
                        self.epoll.add_readable(l, token.encode())?;
                    }
                }
            }
            Kind::Listen => {
                if let Some(link) = &mut self.link {
                    if link.accept(&self.epoll)? {
                        self.sink.event(Event::GuestConnected);
                    }
                }
            }
            Kind::Guest => {
                if writable {
                    if let Some(link) = &mut self.link {
                        link.writable(&self.epoll)?;
                    }
                }
                if readable {
                    return self.guest_readable();
                }
            }
            Kind::Icmp => {
                let mut replies = Vec::new();
                let flow = (token.index as usize, token.side);
                if let Err(e) = self.flows.icmp.replies(flow, Instant::now(), &mut replies) {
                    // A failing echo socket is that flow's problem only.
                    let _ = e;
                    Stats::add(&stats.flow_errors, 1);
                }
                for r in &replies {
                    self.l2.icmp_reply(r, &mut self.tx);
                }
            }
            Kind::TcpListen => self.accept_tcp(token.index as usize, token.side)?,
            Kind::Udp => {
                let (l2, tx) = (&mut self.l2, &mut self.tx);
                let (index, gen) = (token.index as usize, token.side);
                self.flows.udp.socket_readable(
                    index,
                    gen,
                    Instant::now(),
                    &mut self.udp_batch,
                    &mut |ev| l2.udp_event(tx, ev),
                );
            }
            Kind::UdpListen => self.udp_inbound(token.index as usize, error),
            Kind::UdpSpliceListen => self.udp_splice_in(token.index),
            Kind::UdpSplice => self.udp_splice_out(token.index as usize, token.side),
            Kind::SpliceListen => self.accept_splice(token.index as usize)?,
            Kind::Splice => {
                let (index, gen, side) = (token.index as usize, token.side >> 1, token.side & 1);
                let ready = (readable, writable, error);
                let change = self.splice.event(index, gen, side as usize, ready);
                if self.splice.resets > 0 {
                    Stats::add(&stats.flow_errors, std::mem::take(&mut self.splice.resets));
                }
                if let Change::Watch(sides) = change {
                    for (s, c) in sides.into_iter().enumerate() {
                        if let Some((was, now)) = c {
                            self.watch_splice(index, gen, s, was, now)?;
                        }
                    }
                }
            }
            Kind::Tcp => {
                let (index, gen) = (token.index as usize, token.side);
                let tcp = &mut self.flows.tcp;
                let now = Instant::now();
                let reg = self
                    .l2
                    .with_tcp_framer(&mut self.tx, |out| {
                        tcp.socket_event(index, gen, writable, now, out)
                    })
                    .flatten();
                if let Some(reg) = reg {
                    self.register(NewSocket::Tcp(reg))?;
                }
            }
            Kind::Agent => {
                if let Some(agent) = &mut self.agent {
                    match agent.poll_exit() {
                        Ok(Some(status)) => {
                            self.sink.event(Event::CommandExited { status });
                            return Ok(Some(Exit::Finished(format!(
                                "command exited with status {status}"
                            ))));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            return Ok(Some(Exit::Finished(format!("namespace agent: {e}"))));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    fn guest_readable(&mut self) -> io::Result<Option<Exit>> {
        let Some(link) = &mut self.link else {
            return Ok(None);
        };
        let now = Instant::now();
        let stamp = SystemTime::now();
        let (l2, flows, tx, pcap, trace, stats) = (
            &mut self.l2,
            &mut self.flows,
            &mut self.tx,
            &mut self.pcap,
            &mut self.trace,
            &self.shared.stats,
        );
        let mut new_flows = Vec::new();
        let state = link.receive(&self.epoll, |frame, rx| {
            Stats::add(&stats.frames_in, 1);
            if rx == crate::backend::vnet::Rx::Unsupported {
                stats.drop(crate::wire::DropReason::Unsupported);
                return;
            }
            if let Some(p) = pcap {
                let _ = p.frame(frame, stamp);
            }
            if let Some(t) = trace {
                t.push(format!("in  {}", crate::wire::describe::describe(frame)));
            }
            let trusted = rx == crate::backend::vnet::Rx::Trusted;
            match l2.guest_frame(frame, trusted, now, tx, flows) {
                Ok(Some(new)) => new_flows.push(new),
                Ok(None) => {}
                Err(reason) => stats.drop(reason),
            }
        })?;
        // The round's guest datagrams, one sendmmsg per flow's run.
        self.flows.udp.flush();
        for new in new_flows {
            self.register(new)?;
        }
        if !matches!(state, LinkState::Up) {
            // The guest is gone: its flows and their sockets go too.
            self.flows.tcp.clear();
            self.flows.icmp.clear();
            self.flows.udp.clear();
        }
        match state {
            LinkState::Up => Ok(None),
            LinkState::Disconnected(reason) => {
                self.sink.event(Event::GuestDisconnected { reason });
                Ok(None)
            }
            LinkState::Finished(reason) => {
                self.sink.event(Event::GuestDisconnected {
                    reason: reason.clone(),
                });
                Ok(Some(Exit::Finished(reason)))
            }
        }
    }

    /// Takes the connections waiting on forward `i` and offers each to the
    /// guest as a SYN. A failed accept costs that connection only; running
    /// out of descriptors leaves the rest queued for the next wakeup.
    fn accept_tcp(&mut self, i: usize, gen: u8) -> io::Result<()> {
        for _ in 0..64 {
            let Some(fwd) = self.listeners.get(i, gen) else {
                return Ok(());
            };
            let guest_port = fwd.guest_port;
            let (sock, peer) = match fwd.listener.accept() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    self.sink.event(Event::Warning {
                        message: format!("-t: accept on port {guest_port}: {e}"),
                    });
                    break;
                }
            };
            let peer = unmap(peer);
            if self.ns_pool.is_some() && peer.ip().is_loopback() {
                // Loopback to loopback: the namespace's own, spliced.
                let dst = SocketAddr::new(loopback(peer.is_ipv6()), guest_port);
                let info = FlowInfo {
                    proto: Proto::Tcp,
                    direction: Direction::Inbound,
                    src: peer,
                    dst,
                };
                self.splice_accepted(info, sock, dst, true)?;
                continue;
            }
            let Some((guest, remote)) =
                inbound_view(&self.l2, &self.flows.tcp.map, peer, guest_port)
            else {
                continue; // no address of that family for the guest
            };
            let now = Instant::now();
            let info = FlowInfo {
                proto: Proto::Tcp,
                direction: Direction::Inbound,
                src: peer,
                dst: guest,
            };
            if let Some(gate) = self.flows.gate.as_mut().filter(|g| g.wants(&info)) {
                let parked = Parked::TcpIn {
                    sock,
                    client: peer,
                    guest,
                    seen: remote,
                };
                if let Some(Parked::TcpIn { sock, .. }) = gate.admit_accepted(info, parked, now) {
                    self.offer_tcp(sock, peer, remote, guest);
                }
                continue;
            }
            self.offer_tcp(sock, peer, remote, guest);
        }
        Ok(())
    }

    /// Offers an accepted connection to the guest (a SYN from `seen`,
    /// for `client`, to `guest`).
    fn offer_tcp(
        &mut self,
        sock: TcpSocket,
        client: SocketAddr,
        seen: SocketAddr,
        guest: SocketAddr,
    ) {
        let tcp = &mut self.flows.tcp;
        let now = Instant::now();
        // Without a guest MAC yet the SYN cannot be addressed; dropping
        // the socket refuses the client.
        let _ = self.l2.with_tcp_framer(&mut self.tx, |out| {
            tcp.accepted(sock, (client, seen), guest, now, out)
        });
    }

    /// Carries out the policy decisions made since the last call, and the
    /// default one for flows past their timeout.
    fn decide(&mut self, now: Instant) -> io::Result<()> {
        let Some(gate) = self.flows.gate.as_mut() else {
            return Ok(());
        };
        let mut warnings = Vec::new();
        let decided = gate.take_decided(now, &mut |w| warnings.push(w));
        for message in warnings {
            self.sink.event(Event::Warning { message });
        }
        for (info, flow, decision) in decided {
            self.carry_out(info, flow, decision, now)?;
        }
        self.flows.udp.flush();
        Ok(())
    }

    fn carry_out(
        &mut self,
        info: FlowInfo,
        flow: Parked,
        decision: Decision,
        now: Instant,
    ) -> io::Result<()> {
        let rw = match decision {
            Decision::Allow(rw) => Some(rw),
            Decision::Reject => None,
        };
        let bind = |rw: &crate::flow::policy::Rewrite| {
            rw.src_addr
                .map(|a| SocketAddr::new(a, rw.src_port.unwrap_or(0)))
        };
        match flow {
            Parked::TcpOut { src, dst, syn } => {
                let tcp = &mut self.flows.tcp;
                let reg = match rw {
                    Some(rw) => {
                        let target = rw.dst(tcp.map.outbound_sock(dst));
                        let bind = bind(&rw);
                        self.l2
                            .with_tcp_framer(&mut self.tx, |out| {
                                tcp.open(src, dst, syn, (target, bind), now, out)
                            })
                            .and_then(Result::ok)
                            .flatten()
                    }
                    None => {
                        tcp.rec.rejected(info, now);
                        self.l2.with_tcp_framer(&mut self.tx, |out| {
                            TcpFlows::<TcpSocket>::refuse(src, dst, syn, out)
                        });
                        None
                    }
                };
                if let Some(reg) = reg {
                    self.register(NewSocket::Tcp(reg))?;
                }
            }
            Parked::TcpIn {
                sock,
                client,
                guest,
                seen,
            } => match rw {
                Some(rw) => self.offer_tcp(sock, client, rw.src(seen), rw.dst(guest)),
                None => {
                    self.flows.tcp.rec.rejected(info, now);
                    sock.set_reset_on_close();
                }
            },
            Parked::Splice { sock, target, ns } => match rw {
                // -T: the hook saw what the namespace addressed; the
                // connection goes where the forward leads unless rewritten.
                Some(rw) => self.splice_to(sock, rw.dst(target), ns, info)?,
                None => {
                    self.flows.tcp.rec.rejected(info, now);
                    sock.set_reset_on_close();
                }
            },
            Parked::UdpIn {
                listener,
                client,
                guest,
                seen,
                queue,
            } => match rw {
                Some(rw) => {
                    let (guest, seen) = (rw.dst(guest), rw.src(seen));
                    let udp = &mut self.flows.udp;
                    if let Ok(index) = udp.inbound(listener, client, guest, seen, now) {
                        for d in &queue {
                            udp.delivered(index, d.len());
                            self.l2
                                .udp_event(&mut self.tx, udp_datagram(seen, guest, d));
                        }
                    }
                }
                None => self.flows.udp.rec.rejected(info, now),
            },
            Parked::UdpSplice {
                key,
                client,
                target,
                inbound,
                queue,
            } => match rw {
                Some(rw) => {
                    let flow = (key, client, rw.dst(target));
                    let agent = if inbound { self.agent.as_mut() } else { None };
                    // send_batch takes any number (sendmmsg chunks, GSO runs).
                    let msgs: Vec<_> = queue.iter().map(|d| (d.as_slice(), None)).collect();
                    let (splice, epoll) = (&mut self.udp_splice, &self.epoll);
                    splice_datagrams(splice, epoll, agent, flow, &msgs, now);
                }
                None => self.udp_splice.rec.rejected(info, now),
            },
            Parked::UdpOut { src, dst, queue } => match rw {
                Some(rw) => {
                    let udp = &mut self.flows.udp;
                    let target = rw.dst(udp.map.outbound_sock(dst));
                    match udp.open(src, dst, target, rw.src_addr, now) {
                        Ok(crate::flow::udp::Route::Socket { index, gen, .. }) => {
                            for d in &queue {
                                let _ = udp.guest_datagram(src, dst, d, now);
                            }
                            self.register(NewSocket::Udp(index, gen))?;
                        }
                        Ok(_) => {}
                        Err(_) => {
                            if let Some(d) = queue.first() {
                                self.l2.udp_refused(&mut self.tx, src, dst, d);
                            }
                        }
                    }
                }
                None => {
                    self.flows.udp.rec.rejected(info, now);
                    if let Some(d) = queue.first() {
                        self.l2.udp_refused(&mut self.tx, src, dst, d);
                    }
                }
            },
            Parked::IcmpOut { src, dst, queue } => match rw {
                Some(rw) => {
                    // Ports mean nothing to ICMP: only addresses are rewritten.
                    let via = crate::flow::icmp::Via {
                        target: rw.dst_addr,
                        bind: rw.src_addr,
                    };
                    for m in &queue {
                        if let Ok(Some((index, gen))) =
                            self.flows.icmp.request_via(src, dst, m, now, via)
                        {
                            self.register(NewSocket::Icmp(index, gen))?;
                        }
                    }
                }
                None => {
                    self.flows.icmp.rec.rejected(info, now);
                    for m in &queue {
                        self.l2.echo_refused(&mut self.tx, src, dst, m);
                    }
                }
            },
        }
        Ok(())
    }

    /// Hands opened and ended flows to whoever listens, a batch per tick.
    fn report_flows(&mut self) {
        let Some(gate) = &self.flows.gate else { return };
        let recs = [
            &mut self.flows.tcp.rec,
            &mut self.flows.udp.rec,
            &mut self.splice.rec,
            &mut self.udp_splice.rec,
            &mut self.flows.icmp.rec,
        ];
        let mut opened = Vec::new();
        let mut ended = Vec::new();
        for r in recs {
            opened.append(&mut r.opened);
            ended.append(&mut r.ended);
        }
        if !opened.is_empty() {
            gate.sink().opened(opened);
        }
        if !ended.is_empty() {
            gate.sink().ended(ended);
        }
    }

    /// Datagrams from clients of `-u` listener `i`: each goes to the guest
    /// as the flow (guest, client as seen) says; errors queued on the
    /// listener (ICMP for the guest's replies) are drained and reported.
    fn udp_inbound(&mut self, i: usize, error: bool) {
        let Flows {
            udp,
            gate,
            udp_forwards,
            ..
        } = &mut self.flows;
        let Some(Some(fwd)) = udp_forwards.get(i) else {
            return;
        };
        let (l2, tx) = (&mut self.l2, &mut self.tx);
        if error {
            udp.listener_errors(i, &fwd.sock, &mut self.udp_batch, &mut |ev| {
                l2.udp_event(tx, ev)
            });
        }
        let now = Instant::now();
        let (splice, epoll, stats) = (&mut self.udp_splice, &self.epoll, &self.shared.stats);
        let mut agent = self.agent.as_mut();
        let spliced = self.ns_pool.is_some();
        fwd.sock.drain(&mut self.udp_batch, 4, |batch| {
            let mut run = SpliceRun::new();
            let mut failed = 0;
            for (client, payload) in batch.iter() {
                let client = unmap(client);
                if spliced && client.ip().is_loopback() {
                    // Loopback to loopback: to the namespace's, spliced.
                    let target = SocketAddr::new(loopback(client.is_ipv6()), fwd.guest_port);
                    let key = HOST_LISTENER | i as ListenerKey;
                    let flow = (key, client, target);
                    if gate_udp_splice(gate, splice, flow, true, payload, now) {
                        continue;
                    }
                    failed += run.push((splice, epoll, agent.as_deref_mut()), flow, payload, now);
                    continue;
                }
                let (index, guest, seen) = match udp.inbound_of(i, client, now) {
                    Some(flow) => flow,
                    None => {
                        let Some((guest, seen)) =
                            inbound_view(l2, &udp.map, client, fwd.guest_port)
                        else {
                            continue;
                        };
                        if let Some(gate) = gate.as_mut().filter(|g| g.hooks.inbound) {
                            let info = udp_info(client, guest, true);
                            let make = || Parked::UdpIn {
                                listener: i,
                                client,
                                guest,
                                seen,
                                queue: vec![payload.to_vec()],
                            };
                            if gate.admit(info, make, payload, now) {
                                continue;
                            }
                        }
                        match udp.inbound(i, client, guest, seen, now) {
                            Ok(index) => (index, guest, seen),
                            Err(_) => continue,
                        }
                    }
                };
                udp.delivered(index, payload.len());
                l2.udp_event(tx, udp_datagram(seen, guest, payload));
            }
            failed += run.flush((splice, epoll, agent.as_deref_mut()), now);
            stats.drop_n(crate::wire::DropReason::SocketFull, failed as u64);
        });
    }

    /// Watches a flow's new socket, or changes what it is watched for.
    fn register(&mut self, new: NewSocket) -> io::Result<()> {
        match new {
            NewSocket::Icmp(index, gen) => {
                if let Some(sock) = self.flows.icmp.socket(index, gen) {
                    let token = Token::new(Kind::Icmp, gen, index as u32);
                    self.epoll.add_readable(sock, token.encode())?;
                }
            }
            NewSocket::Udp(index, gen) => {
                if let Some(sock) = self.flows.udp.socket(index, gen) {
                    let token = Token::new(Kind::Udp, gen, index as u32);
                    self.epoll.add_readable(sock, token.encode())?;
                }
            }
            NewSocket::Tcp(Registration::New { index, gen }) => {
                if let Some(sock) = self.flows.tcp.socket(index, gen) {
                    let token = Token::new(Kind::Tcp, gen, index as u32).encode();
                    self.epoll.watch_stream(sock, token, true, true)?;
                }
            }
            NewSocket::Tcp(
                Registration::Connected { index, gen }
                | Registration::Writable {
                    index,
                    gen,
                    on: false,
                },
            ) => {
                if let Some(sock) = self.flows.tcp.socket(index, gen) {
                    let token = Token::new(Kind::Tcp, gen, index as u32).encode();
                    self.epoll.watch_stream(sock, token, false, false)?;
                }
            }
            NewSocket::Tcp(Registration::Established { index, gen }) => {
                if let Some(sock) = self.flows.tcp.socket(index, gen) {
                    let token = Token::new(Kind::Tcp, gen, index as u32).encode();
                    self.epoll.watch_stream(sock, token, false, true)?;
                }
            }
            NewSocket::Tcp(Registration::Writable {
                index,
                gen,
                on: true,
            }) => {
                if let Some(sock) = self.flows.tcp.socket(index, gen) {
                    let token = Token::new(Kind::Tcp, gen, index as u32).encode();
                    self.epoll.watch_stream(sock, token, true, false)?;
                }
            }
        }
        Ok(())
    }

    /// Sends what this round queued for the guest.
    fn flush_tx(&mut self) -> io::Result<()> {
        if self.tx.is_empty() {
            return Ok(());
        }
        let stats = &self.shared.stats;
        if let Some(p) = &mut self.pcap {
            let stamp = SystemTime::now();
            for f in self.tx.frames() {
                p.frame(f, stamp)?;
            }
        }
        if let Some(t) = &mut self.trace {
            for f in self.tx.frames() {
                t.push(format!("out {}", crate::wire::describe::describe(f)));
            }
        }
        Stats::add(&stats.frames_out, self.tx.len() as u64);
        if let Some(link) = &mut self.link {
            let dropped = link.send(&self.epoll, &self.tx)?;
            Stats::add(&stats.tx_dropped, dropped as u64);
        }
        self.tx.clear();
        Ok(())
    }
}

/// The first empty slot of `slots`, made at the end if there is none.
fn free_slot<T>(slots: &mut Vec<Option<T>>) -> usize {
    match slots.iter().position(Option::is_none) {
        Some(i) => i,
        None => {
            slots.push(None);
            slots.len() - 1
        }
    }
}

/// A UDP flow from `src` to `dst`, as a hook sees it.
fn udp_info(src: SocketAddr, dst: SocketAddr, inbound: bool) -> FlowInfo {
    FlowInfo {
        proto: Proto::Udp,
        direction: Direction::of(inbound),
        src,
        dst,
    }
}

/// A datagram for the guest from `src` (as the guest sees it) to `dst`.
fn udp_datagram(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> crate::flow::udp::Event<'_> {
    crate::flow::udp::Event::Datagram(crate::flow::udp::Datagram { src, dst, payload })
}

/// Inbound addressing: the guest's address and port, and the client as the
/// guest sees it: its real address, except that the host itself (loopback,
/// or the address it shares with the guest) appears as the gateway, since
/// the guest would take either for itself (`man passt`, NOTES); with
/// `--map-guest-addr`, the shared address appears as the one given.
fn inbound_view(
    l2: &L2,
    map: &GatewayMap,
    peer: std::net::SocketAddr,
    guest_port: u16,
) -> Option<(std::net::SocketAddr, std::net::SocketAddr)> {
    let cfg = l2.config();
    let v6 = peer.is_ipv6();
    // Loopback clients come from the address that stands for the host's
    // loopback (--map-host-loopback), by default the gateway.
    let (assigned, gw): (IpAddr, IpAddr) = if v6 {
        let c = cfg.v6.as_ref()?;
        (c.addr.into(), map.v6.unwrap_or(c.gateway).into())
    } else {
        let c = cfg.v4.as_ref()?;
        (c.addr.into(), map.v4.unwrap_or(c.gateway).into())
    };
    let guest = l2.guest_addr(v6)?;
    let ip = peer.ip();
    let seen = if ip.is_loopback() {
        gw
    } else if ip == assigned || ip == guest {
        map.guest_alias(assigned).unwrap_or(gw)
    } else {
        ip
    };
    Some((
        std::net::SocketAddr::new(guest, guest_port),
        std::net::SocketAddr::new(seen, peer.port()),
    ))
}

/// An IPv4 peer seen through an IPv6 socket (`::ffff:a.b.c.d`) as IPv4.
fn unmap(a: std::net::SocketAddr) -> std::net::SocketAddr {
    match a {
        std::net::SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => std::net::SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn ticks_and_stops_promptly() {
        let handle = spawn(EngineConfig::default(), Box::new(Discard)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while handle.stats().ticks < 3 {
            assert!(Instant::now() < deadline, "timer never ticked");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(handle.is_running());
        let t0 = Instant::now();
        handle.stop().unwrap();
        assert!(t0.elapsed() < STOP_TIMEOUT);
    }

    #[test]
    fn dropping_the_handle_stops_the_thread() {
        let handle = spawn(EngineConfig::default(), Box::new(Discard)).unwrap();
        let shared = Arc::downgrade(&handle.shared);
        drop(handle);
        // The thread held the other reference; both are gone after the join.
        assert!(shared.upgrade().is_none());
    }

    #[test]
    fn closes_every_descriptor() {
        // Other tests run on parallel threads and open fds too: retry a few
        // times and accept the first quiet measurement.
        for _ in 0..20 {
            let before = open_fds();
            let handle = spawn(EngineConfig::default(), Box::new(Discard)).unwrap();
            let during = open_fds();
            handle.stop().unwrap();
            let after = open_fds();
            if during == before + 3 && after == before {
                return;
            }
        }
        panic!("engine leaked descriptors");
    }
}
