//! Policy decisions for new flows, made outside the engine thread (by JS
//! hooks through the addon) without the engine ever waiting for them.
//!
//! Theory of operation: when a hook is registered for a direction, the
//! first packet of a new flow (a guest SYN, a guest datagram, an echo
//! request, an accepted connection) is not acted on: the flow is *parked*
//! here under a query id and the owner's `PolicySink` is asked. The answer
//! comes back on any thread through `Reply::send`, which files it in the
//! `Inbox` and signals the inbox's eventfd; the engine then takes the
//! decided flows (`take_decided`) and carries each out: opens it (maybe
//! rewritten), or refuses it. A flow not decided within the timeout gets
//! the default decision (allow), and so does one whose hook failed: both
//! are counted and reported as warnings. A late answer finds no parked
//! flow and is ignored.
//!
//! Invariants: a flow (protocol, source, destination) is parked at most
//! once; what a parked flow holds is bounded (`QUEUE_DATAGRAMS`,
//! `QUEUE_BYTES`, `MAX_PARKED`); every parked flow leaves within its
//! timeout.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::record::{FlowInfo, FlowRecord, Opened, Proto};
use super::tcp::Syn;
use crate::sys::tcp::TcpSocket;
use crate::sys::EventFd;

/// Datagrams a parked UDP or ICMP flow holds; later ones are dropped.
pub const QUEUE_DATAGRAMS: usize = 64;
/// Bytes a parked flow holds.
pub const QUEUE_BYTES: usize = 256 << 10;
/// Flows parked at once; more get the default decision at once.
pub const MAX_PARKED: usize = 4096;
/// How long a hook may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

/// A rewrite a hook asked for; unset fields keep their value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rewrite {
    pub dst_addr: Option<IpAddr>,
    pub dst_port: Option<u16>,
    pub src_addr: Option<IpAddr>,
    pub src_port: Option<u16>,
}

impl Rewrite {
    pub fn dst(&self, d: SocketAddr) -> SocketAddr {
        SocketAddr::new(
            self.dst_addr.unwrap_or(d.ip()),
            self.dst_port.unwrap_or(d.port()),
        )
    }

    pub fn src(&self, s: SocketAddr) -> SocketAddr {
        SocketAddr::new(
            self.src_addr.unwrap_or(s.ip()),
            self.src_port.unwrap_or(s.port()),
        )
    }
}

/// A hook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Reject,
    Rewrite(Rewrite),
    /// The hook threw, or answered something that is not a verdict.
    Failed(String),
}

/// What the engine does with a decided flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow(Rewrite),
    Reject,
}

/// Which hooks exist, how long they may take, and what a flow gets when
/// its hook fails or is late (allow, or reject: fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hooks {
    pub outbound: bool,
    pub inbound: bool,
    pub flow_open: bool,
    pub flow_end: bool,
    pub timeout: Duration,
    pub reject_by_default: bool,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            outbound: false,
            inbound: false,
            flow_open: false,
            flow_end: false,
            timeout: DEFAULT_TIMEOUT,
            reject_by_default: false,
        }
    }
}

/// The engine's owner, who makes decisions and hears about flows. Calls
/// must not block (the addon queues them for the JS thread).
pub trait PolicySink: Send {
    /// A new flow wants a decision: answer through `reply`, once.
    fn decide(&self, flow: &FlowInfo, reply: Reply);
    fn opened(&self, flows: Vec<Opened>);
    fn ended(&self, records: Vec<FlowRecord>);
}

/// Answers waiting for the engine, and the eventfd that wakes it.
pub struct Inbox {
    answers: Mutex<Vec<(u64, Verdict)>>,
    pub waker: EventFd,
}

/// The way back for one query's answer (any thread).
pub struct Reply {
    id: u64,
    inbox: Arc<Inbox>,
}

impl Reply {
    pub fn send(self, verdict: Verdict) {
        if let Ok(mut a) = self.inbox.answers.lock() {
            a.push((self.id, verdict));
        }
        // A failed signal leaves the flow to its timeout.
        let _ = self.inbox.waker.signal();
    }
}

/// A flow waiting for its decision, with what it needs to go on.
pub enum Parked {
    /// A guest SYN.
    TcpOut {
        src: SocketAddr,
        dst: SocketAddr,
        syn: Syn,
    },
    /// Guest datagrams of a new flow.
    UdpOut {
        src: SocketAddr,
        dst: SocketAddr,
        queue: Vec<Vec<u8>>,
    },
    /// Guest echo requests of a new echo flow (ICMP message each).
    IcmpOut {
        src: IpAddr,
        dst: IpAddr,
        queue: Vec<Vec<u8>>,
    },
    /// A connection accepted on forward `listener`: `guest` where it
    /// goes, `seen` the client as the guest will see it.
    TcpIn {
        sock: TcpSocket,
        client: SocketAddr,
        guest: SocketAddr,
        seen: SocketAddr,
    },
    /// Datagrams from `client` on `-u` listener `listener`, for `guest`,
    /// the client seen as `seen`.
    UdpIn {
        listener: usize,
        client: SocketAddr,
        guest: SocketAddr,
        seen: SocketAddr,
        queue: Vec<Vec<u8>>,
    },
    /// pasta's spliced UDP: datagrams from `client` on listener `key`
    /// (`-U`, or a host-loopback client of `-u`: `inbound`), for `target`.
    UdpSplice {
        key: u32,
        client: SocketAddr,
        target: SocketAddr,
        inbound: bool,
        queue: Vec<Vec<u8>>,
    },
    /// pasta's splice path: a connection accepted on a loopback, to be
    /// joined to a connection to `target` (where its forward leads),
    /// made in the namespace (`ns`, a host-loopback client of `-t`) or on
    /// the host (`-T`). Kept from the accept: the forward may be gone by
    /// the time the answer comes.
    Splice {
        sock: TcpSocket,
        target: SocketAddr,
        ns: bool,
    },
}

impl Parked {
    /// The accepted connection waiting here, if it is one (`TcpIn`,
    /// `Splice`): reset, not just closed, when refused.
    pub fn accepted(&self) -> Option<&TcpSocket> {
        match self {
            Parked::TcpIn { sock, .. } | Parked::Splice { sock, .. } => Some(sock),
            _ => None,
        }
    }
}

struct Waiting {
    flow: Parked,
    key: (Proto, SocketAddr, SocketAddr),
    info: FlowInfo,
    deadline: Instant,
    asked: Instant,
    bytes: usize,
}

/// Counters of decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub asked: u64,
    pub allowed: u64,
    pub rejected: u64,
    pub rewritten: u64,
    pub timeouts: u64,
    pub errors: u64,
    /// Microseconds from asking to carrying out, summed over answered
    /// flows (answered = asked - timeouts - still parked).
    pub wait_us: u64,
}

/// The parking lot.
pub struct Gate {
    pub hooks: Hooks,
    sink: Box<dyn PolicySink>,
    inbox: Arc<Inbox>,
    next_id: u64,
    waiting: HashMap<u64, Waiting>,
    by_key: HashMap<(Proto, SocketAddr, SocketAddr), u64>,
    pub counts: Counts,
    /// Datagrams dropped because their parked flow's queue was full.
    pub overflow: u64,
}

impl Gate {
    pub fn new(hooks: Hooks, sink: Box<dyn PolicySink>) -> io::Result<Self> {
        Ok(Gate {
            hooks,
            sink,
            inbox: Arc::new(Inbox {
                answers: Mutex::new(Vec::new()),
                waker: EventFd::new()?,
            }),
            next_id: 1,
            waiting: HashMap::new(),
            by_key: HashMap::new(),
            counts: Counts::default(),
            overflow: 0,
        })
    }

    /// The eventfd answers signal (for epoll).
    pub fn waker(&self) -> &EventFd {
        &self.inbox.waker
    }

    pub fn sink(&self) -> &dyn PolicySink {
        self.sink.as_ref()
    }

    pub fn parked(&self) -> usize {
        self.waiting.len()
    }

    /// Whether `info` must wait for a hook.
    pub fn wants(&self, info: &FlowInfo) -> bool {
        match info.direction {
            super::record::Direction::Outbound => self.hooks.outbound,
            super::record::Direction::Inbound => self.hooks.inbound,
        }
    }

    /// Whether the flow is parked already.
    pub fn is_parked(&self, proto: Proto, src: SocketAddr, dst: SocketAddr) -> bool {
        self.by_key.contains_key(&(proto, src, dst))
    }

    /// The decision a failed or late hook leaves.
    fn default_decision(&self) -> (Decision, &'static str) {
        if self.hooks.reject_by_default {
            (Decision::Reject, "rejected")
        } else {
            (Decision::Allow(Rewrite::default()), "allowed")
        }
    }

    /// Whether a flow that could not be parked (too many waiting) may go
    /// on: only when the default is to allow.
    pub fn overflow_allows(&self) -> bool {
        !self.hooks.reject_by_default
    }

    /// Parks a new flow and asks about it. `Err(flow)`: too many parked;
    /// the caller goes on as the default says (`overflow_allows`).
    pub fn park(&mut self, info: FlowInfo, flow: Parked, now: Instant) -> Result<(), Box<Parked>> {
        if self.waiting.len() >= MAX_PARKED {
            self.counts.timeouts += 1;
            return Err(Box::new(flow));
        }
        let id = self.next_id;
        self.next_id += 1;
        let key = (info.proto, info.src, info.dst);
        let bytes = match &flow {
            Parked::UdpOut { queue, .. }
            | Parked::IcmpOut { queue, .. }
            | Parked::UdpIn { queue, .. }
            | Parked::UdpSplice { queue, .. } => queue.iter().map(Vec::len).sum(),
            _ => 0,
        };
        self.by_key.insert(key, id);
        self.waiting.insert(
            id,
            Waiting {
                flow,
                key,
                info,
                deadline: now + self.hooks.timeout,
                asked: now,
                bytes,
            },
        );
        self.counts.asked += 1;
        let reply = Reply {
            id,
            inbox: Arc::clone(&self.inbox),
        };
        self.sink.decide(&info, reply);
        Ok(())
    }

    /// The first packet of a flow that wants a hook (`wants`): queued
    /// behind its parked flow if there is one, else the flow is parked
    /// (made by `make`) and asked about. Whether the gate took the packet
    /// (parked, queued, or dropped: no room to park and failing closed);
    /// `false`: the caller goes on with the flow.
    pub fn admit(
        &mut self,
        info: FlowInfo,
        make: impl FnOnce() -> Parked,
        data: &[u8],
        now: Instant,
    ) -> bool {
        if self.is_parked(info.proto, info.src, info.dst) {
            self.queue(info.proto, info.src, info.dst, data);
            return true;
        }
        self.park(info, make(), now).is_ok() || !self.overflow_allows()
    }

    /// A connection accepted on a listener (`TcpIn`, `Splice`), parked
    /// and asked about. `Some(flow)`: no room to park it and the default
    /// allows, so the caller goes on with it; `None`: parked, or no room
    /// and failing closed (its client is reset).
    pub fn admit_accepted(&mut self, info: FlowInfo, flow: Parked, now: Instant) -> Option<Parked> {
        let flow = *self.park(info, flow, now).err()?;
        if self.overflow_allows() {
            return Some(flow);
        }
        if let Some(sock) = flow.accepted() {
            sock.set_reset_on_close();
        }
        None
    }

    /// Adds a datagram to a parked flow's queue (bounded); whether it was
    /// kept.
    pub fn queue(&mut self, proto: Proto, src: SocketAddr, dst: SocketAddr, data: &[u8]) -> bool {
        let Some(w) = self
            .by_key
            .get(&(proto, src, dst))
            .and_then(|id| self.waiting.get_mut(id))
        else {
            return false;
        };
        let queue = match &mut w.flow {
            Parked::UdpOut { queue, .. }
            | Parked::IcmpOut { queue, .. }
            | Parked::UdpIn { queue, .. }
            | Parked::UdpSplice { queue, .. } => queue,
            _ => return false,
        };
        if queue.len() >= QUEUE_DATAGRAMS || w.bytes + data.len() > QUEUE_BYTES {
            self.overflow += 1;
            return false;
        }
        w.bytes += data.len();
        queue.push(data.to_vec());
        true
    }

    /// The flows decided since the last call: answered, or past their
    /// deadline (default decision). `warn` gets a message for each
    /// timeout and failed hook.
    pub fn take_decided(
        &mut self,
        now: Instant,
        warn: &mut dyn FnMut(String),
    ) -> Vec<(FlowInfo, Parked, Decision)> {
        let _ = self.inbox.waker.drain();
        let answers = match self.inbox.answers.lock() {
            Ok(mut a) => std::mem::take(&mut *a),
            Err(_) => Vec::new(),
        };
        let mut out = Vec::new();
        for (id, verdict) in answers {
            let Some(w) = self.waiting.remove(&id) else {
                continue; // answered after its timeout
            };
            self.by_key.remove(&w.key);
            self.counts.wait_us += now.saturating_duration_since(w.asked).as_micros() as u64;
            let decision = match verdict {
                Verdict::Allow => {
                    self.counts.allowed += 1;
                    Decision::Allow(Rewrite::default())
                }
                Verdict::Reject => {
                    self.counts.rejected += 1;
                    Decision::Reject
                }
                Verdict::Rewrite(r) => {
                    self.counts.rewritten += 1;
                    Decision::Allow(r)
                }
                Verdict::Failed(why) => {
                    self.counts.errors += 1;
                    let (decision, said) = self.default_decision();
                    warn(format!(
                        "policy: {} hook failed for {}: {why}; {said}",
                        w.info.direction.as_str(),
                        describe(&w.info)
                    ));
                    decision
                }
            };
            out.push((w.info, w.flow, decision));
        }
        if self.waiting.values().any(|w| w.deadline <= now) {
            let late: Vec<u64> = self
                .waiting
                .iter()
                .filter(|(_, w)| w.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in late {
                if let Some(w) = self.waiting.remove(&id) {
                    self.by_key.remove(&w.key);
                    self.counts.timeouts += 1;
                    let (decision, said) = self.default_decision();
                    warn(format!(
                        "policy: {} hook did not answer within {} ms for {}; {said}",
                        w.info.direction.as_str(),
                        self.hooks.timeout.as_millis(),
                        describe(&w.info)
                    ));
                    out.push((w.info, w.flow, decision));
                }
            }
        }
        out
    }

    /// Every parked flow, undecided (the engine is stopping or the guest
    /// went away).
    pub fn drain(&mut self) -> Vec<(FlowInfo, Parked)> {
        self.by_key.clear();
        self.waiting
            .drain()
            .map(|(_, w)| (w.info, w.flow))
            .collect()
    }
}

/// `tcp 10.0.2.15:40000 -> 10.0.2.2:80`
pub fn describe(info: &FlowInfo) -> String {
    format!("{} {} -> {}", info.proto.as_str(), info.src, info.dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::record::Direction;
    use std::sync::mpsc;

    struct Chan(Mutex<mpsc::Sender<(FlowInfo, Reply)>>);

    impl PolicySink for Chan {
        fn decide(&self, flow: &FlowInfo, reply: Reply) {
            let _ = self.0.lock().unwrap().send((*flow, reply));
        }
        fn opened(&self, _: Vec<Opened>) {}
        fn ended(&self, _: Vec<FlowRecord>) {}
    }

    fn info(port: u16) -> FlowInfo {
        FlowInfo {
            proto: Proto::Udp,
            direction: Direction::Outbound,
            src: "10.0.2.15:5000".parse().unwrap(),
            dst: SocketAddr::new("10.0.2.2".parse().unwrap(), port),
        }
    }

    fn parked(i: &FlowInfo) -> Parked {
        Parked::UdpOut {
            src: i.src,
            dst: i.dst,
            queue: vec![b"first".to_vec()],
        }
    }

    #[test]
    fn answers_timeouts_and_failures() {
        let (tx, rx) = mpsc::channel();
        let hooks = Hooks {
            outbound: true,
            ..Hooks::default()
        };
        let mut gate = Gate::new(hooks, Box::new(Chan(Mutex::new(tx)))).unwrap();
        let t0 = Instant::now();
        for port in [1, 2, 3, 4] {
            let i = info(port);
            assert!(gate.park(i, parked(&i), t0).is_ok());
        }
        assert!(gate.is_parked(Proto::Udp, info(1).src, info(1).dst));
        assert!(gate.queue(Proto::Udp, info(1).src, info(1).dst, b"second"));
        let asked: Vec<_> = rx.try_iter().collect();
        assert_eq!(asked.len(), 4);
        let mut replies = asked.into_iter().map(|(_, r)| r);
        replies.next().unwrap().send(Verdict::Reject);
        replies.next().unwrap().send(Verdict::Rewrite(Rewrite {
            dst_port: Some(9),
            ..Rewrite::default()
        }));
        replies.next().unwrap().send(Verdict::Failed("boom".into()));
        let fourth = replies.next().unwrap();
        let mut warnings = Vec::new();
        let got = gate.take_decided(t0, &mut |w| warnings.push(w));
        assert_eq!(got.len(), 3);
        assert!(matches!(&got[0].1, Parked::UdpOut { queue, .. } if queue.len() == 2));
        assert_eq!(got[0].2, Decision::Reject);
        assert_eq!(
            got[1].2,
            Decision::Allow(Rewrite {
                dst_port: Some(9),
                ..Rewrite::default()
            })
        );
        assert_eq!(got[2].2, Decision::Allow(Rewrite::default()));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("boom"), "{warnings:?}");
        // The fourth times out, and its late answer is ignored.
        let later = t0 + DEFAULT_TIMEOUT;
        let got = gate.take_decided(later, &mut |w| warnings.push(w));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2, Decision::Allow(Rewrite::default()));
        fourth.send(Verdict::Reject);
        assert!(gate.take_decided(later, &mut |_| {}).is_empty());
        assert_eq!(gate.parked(), 0);
        let c = gate.counts;
        assert_eq!(
            (c.asked, c.rejected, c.rewritten, c.errors, c.timeouts),
            (4, 1, 1, 1, 1)
        );
    }

    #[test]
    fn failing_closed_rejects_failures_and_latecomers() {
        let (tx, rx) = mpsc::channel();
        let hooks = Hooks {
            outbound: true,
            reject_by_default: true,
            ..Hooks::default()
        };
        let mut gate = Gate::new(hooks, Box::new(Chan(Mutex::new(tx)))).unwrap();
        let t0 = Instant::now();
        for port in [1, 2] {
            let i = info(port);
            gate.park(i, parked(&i), t0).ok().unwrap();
        }
        let mut replies = rx.try_iter().map(|(_, r)| r);
        replies.next().unwrap().send(Verdict::Failed("boom".into()));
        let mut warnings = Vec::new();
        let got = gate.take_decided(t0 + DEFAULT_TIMEOUT, &mut |w| warnings.push(w));
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, _, d)| *d == Decision::Reject));
        assert!(
            warnings.iter().all(|w| w.ends_with("; rejected")),
            "{warnings:?}"
        );
        assert!(!gate.overflow_allows());
    }

    #[test]
    fn a_parked_queue_is_bounded() {
        let (tx, _rx) = mpsc::channel();
        let hooks = Hooks {
            outbound: true,
            ..Hooks::default()
        };
        let mut gate = Gate::new(hooks, Box::new(Chan(Mutex::new(tx)))).unwrap();
        let i = info(7);
        gate.park(i, parked(&i), Instant::now()).ok().unwrap();
        let kept = (0..100)
            .filter(|_| gate.queue(Proto::Udp, i.src, i.dst, b"x"))
            .count();
        assert_eq!(kept, QUEUE_DATAGRAMS - 1);
        assert_eq!(gate.overflow, 100 - kept as u64);
    }
}
