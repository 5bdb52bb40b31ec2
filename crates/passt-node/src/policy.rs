//! The engine's policy requests as calls of one JS function (`onPolicy`):
//! a decision per new flow, batches of opened and ended flows. Requests
//! are queued through a threadsafe function and never wait; a decision
//! comes back through the call's reply, converted here into a `Verdict`
//! (a throw, a rejection or a malformed answer is `Verdict::Failed`, and
//! the engine applies its default).

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use passt_core::flow::policy::{PolicySink, Reply, Rewrite, Verdict};
use passt_core::flow::record::{Direction, FlowInfo, FlowRecord, Opened, Proto};

use crate::tsfn::ThreadsafeFunction;
use crate::value::Value;

pub struct JsPolicy(pub ThreadsafeFunction);

fn endpoint(a: SocketAddr) -> Value {
    Value::object([
        ("addr", Value::String(a.ip().to_string())),
        ("port", Value::Number(a.port().into())),
    ])
}

pub(crate) fn flow_members(i: &FlowInfo) -> Vec<(String, Value)> {
    vec![
        ("proto".into(), Value::String(i.proto.as_str().into())),
        (
            "direction".into(),
            Value::String(i.direction.as_str().into()),
        ),
        ("src".into(), endpoint(i.src)),
        ("dst".into(), endpoint(i.dst)),
    ]
}

/// Words in a flow's flat form, [`flow_words`].
pub const FLOW_WORDS: usize = 13;

/// A flow as the decision worker reads it: words in a `Uint32Array`
/// (`flowFromWords` in policy.ts makes the JS object). Building the
/// object through Node-API took the just-woken worker about 10 µs per
/// flow, a third of a decision's round trip; the worker's JIT-compiled
/// JS builds it in well under one. Layout: direction (0 outbound,
/// 1 inbound), protocol (0 tcp, 1 udp, 2 icmp), family (4 or 6), source
/// port, destination port, then the source and the destination address
/// as four big-endian words each (IPv4: the first word).
pub fn flow_words(i: &FlowInfo) -> [u32; FLOW_WORDS] {
    fn addr(a: SocketAddr, out: &mut [u32]) {
        match a.ip() {
            std::net::IpAddr::V4(v4) => out[0] = u32::from(v4),
            std::net::IpAddr::V6(v6) => {
                for (w, c) in out.iter_mut().zip(v6.octets().chunks_exact(4)) {
                    *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
        }
    }
    let mut w = [0; FLOW_WORDS];
    w[0] = match i.direction {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    };
    w[1] = match i.proto {
        Proto::Tcp => 0,
        Proto::Udp => 1,
        Proto::Icmp => 2,
    };
    w[2] = if i.src.is_ipv4() { 4 } else { 6 };
    w[3] = i.src.port().into();
    w[4] = i.dst.port().into();
    addr(i.src, &mut w[5..9]);
    addr(i.dst, &mut w[9..13]);
    w
}

fn mapped((src, dst): (SocketAddr, SocketAddr)) -> Value {
    Value::object([("src", endpoint(src)), ("dst", endpoint(dst))])
}

pub(crate) fn record(r: &FlowRecord) -> Value {
    let mut m = flow_members(&r.info);
    let started = r
        .started
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    m.extend([
        ("mapped".into(), mapped(r.mapped)),
        ("bytesFromGuest".into(), r.bytes_from_guest.into()),
        ("bytesToGuest".into(), r.bytes_to_guest.into()),
        ("startedAt".into(), Value::Number(started.floor())),
        (
            "durationMs".into(),
            Value::Number(r.duration.as_secs_f64() * 1000.0),
        ),
        ("end".into(), Value::String(r.end.as_str().into())),
    ]);
    Value::Object(m)
}

/// One side of a rewrite: `{ addr?, port? }`.
fn rewrite_side(
    v: Option<&Value>,
    what: &str,
) -> Result<(Option<std::net::IpAddr>, Option<u16>), String> {
    let Some(v) = v.filter(|v| !matches!(v, Value::Undefined | Value::Null)) else {
        return Ok((None, None));
    };
    let Value::Object(_) = v else {
        return Err(format!("{what}: expected an object"));
    };
    let addr = match v.get("addr") {
        None | Some(Value::Undefined) | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            s.parse()
                .map_err(|_| format!("{what}.addr: '{s}' is not an address"))?,
        ),
        Some(_) => return Err(format!("{what}.addr: expected a string")),
    };
    let port = match v.get("port") {
        None | Some(Value::Undefined) | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.fract() == 0.0 && (1.0..=65535.0).contains(n) => {
            Some(*n as u16)
        }
        Some(_) => return Err(format!("{what}.port: expected a port number")),
    };
    Ok((addr, port))
}

/// A hook's answer as the engine takes it.
pub fn verdict(v: &Value) -> Verdict {
    match v {
        Value::String(s) if s == "allow" => Verdict::Allow,
        Value::String(s) if s == "reject" => Verdict::Reject,
        Value::Object(_) => {
            let dst = rewrite_side(v.get("dst"), "dst");
            let src = rewrite_side(v.get("src"), "src");
            match (dst, src) {
                (Ok((dst_addr, dst_port)), Ok((src_addr, src_port))) => Verdict::Rewrite(Rewrite {
                    dst_addr,
                    dst_port,
                    src_addr,
                    src_port,
                }),
                (Err(e), _) | (_, Err(e)) => Verdict::Failed(format!("bad rewrite: {e}")),
            }
        }
        other => Verdict::Failed(format!(
            "expected 'allow', 'reject' or a rewrite, got {other:?}"
        )),
    }
}

impl PolicySink for JsPolicy {
    fn decide(&self, flow: &FlowInfo, reply: Reply) {
        let request = Value::object([
            ("type", Value::String(flow.direction.as_str().into())),
            ("flow", Value::Object(flow_members(flow))),
        ]);
        self.0.call(
            request,
            Box::new(move |answer| {
                reply.send(match answer {
                    Ok(v) => verdict(&v),
                    Err(e) => Verdict::Failed(e),
                })
            }),
        );
    }

    fn opened(&self, flows: Vec<Opened>) {
        let flows = flows
            .iter()
            .map(|o| {
                let mut m = flow_members(&o.info);
                m.push(("mapped".into(), mapped(o.mapped)));
                Value::Object(m)
            })
            .collect();
        let request = Value::object([
            ("type", Value::String("flow-open".into())),
            ("flows", Value::Array(flows)),
        ]);
        self.0.call(request, Box::new(drop));
    }

    fn ended(&self, records: Vec<FlowRecord>) {
        let request = Value::object([
            ("type", Value::String("flow-end".into())),
            (
                "records",
                Value::Array(records.iter().map(record).collect()),
            ),
        ]);
        self.0.call(request, Box::new(drop));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(proto: Proto, direction: Direction, src: &str, dst: &str) -> [u32; FLOW_WORDS] {
        flow_words(&FlowInfo {
            proto,
            direction,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
        })
    }

    #[test]
    #[rustfmt::skip]
    fn flow_words_fixtures() {
        assert_eq!(
            words(Proto::Udp, Direction::Outbound, "10.0.2.15:40000", "192.0.2.1:53"),
            [0, 1, 4, 40000, 53, 0x0a00_020f, 0, 0, 0, 0xc000_0201, 0, 0, 0]
        );
        assert_eq!(
            words(Proto::Tcp, Direction::Inbound, "[fd00::2]:8080", "[::ffff:1.2.3.4]:80"),
            [1, 0, 6, 8080, 80, 0xfd00_0000, 0, 0, 2, 0, 0, 0xffff, 0x0102_0304]
        );
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(&Value::String("allow".into())), Verdict::Allow);
        assert_eq!(verdict(&Value::String("reject".into())), Verdict::Reject);
        let rw = Value::object([(
            "dst",
            Value::object([
                ("addr", Value::String("127.0.0.1".into())),
                ("port", Value::Number(15432.0)),
            ]),
        )]);
        assert_eq!(
            verdict(&rw),
            Verdict::Rewrite(Rewrite {
                dst_addr: Some("127.0.0.1".parse().unwrap()),
                dst_port: Some(15432),
                ..Rewrite::default()
            })
        );
        for bad in [
            Value::String("maybe".into()),
            Value::Number(1.0),
            Value::Undefined,
            Value::object([("dst", Value::object([("port", Value::Number(70000.0))]))]),
            Value::object([("src", Value::object([("addr", Value::String("x".into()))]))]),
        ] {
            assert!(matches!(verdict(&bad), Verdict::Failed(_)), "{bad:?}");
        }
    }
}

/// Decisions answered by a worker thread instead of the main thread:
/// the engine files requests in a queue the worker waits on in a
/// blocking call (`policyQueueNext`), and the worker answers with
/// `policyQueueAnswer`. A thread waiting on a condition variable wakes in
/// microseconds; the main thread's event loop takes tens (measured: 33 µs
/// at p50 from asking to the hook's first line), and a crr-style workload
/// pays that once per flow.
///
/// Queues live in a process-wide table by id, because the worker is a
/// separate JS environment that cannot share the engine's handle.
pub mod worker {
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Condvar, Mutex, OnceLock};
    use std::time::Duration;

    use passt_core::flow::policy::{PolicySink, Reply, Verdict};
    use passt_core::flow::record::{FlowInfo, FlowRecord, Opened};

    use super::{record, JsPolicy};
    use crate::value::Value;

    enum Request {
        Decide(u64, FlowInfo),
        Ended(Vec<FlowRecord>),
    }

    #[derive(Default)]
    struct State {
        requests: VecDeque<Request>,
        replies: HashMap<u64, Reply>,
        next_token: u64,
        closed: bool,
    }

    #[derive(Default)]
    pub struct Queue {
        state: Mutex<State>,
        ready: Condvar,
    }

    fn table() -> &'static Mutex<HashMap<u64, Arc<Queue>>> {
        static TABLE: OnceLock<Mutex<HashMap<u64, Arc<Queue>>>> = OnceLock::new();
        TABLE.get_or_init(Default::default)
    }

    /// A new queue's id.
    pub fn create() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut t) = table().lock() {
            t.insert(id, Arc::default());
        }
        id
    }

    pub fn get(id: u64) -> Option<Arc<Queue>> {
        table().lock().ok()?.get(&id).cloned()
    }

    /// What the worker gets next.
    pub enum Next {
        /// A decision to make: its token, and the flow to decide on.
        Decide(u64, FlowInfo),
        /// Finished flows, for the module's flowEnd hook.
        Ended(Value),
        /// Nothing came within the wait.
        Empty,
        /// The engine is gone (the queue is removed).
        Closed,
    }

    /// Waits up to `wait` for the next request.
    pub fn next(id: u64, wait: Duration) -> Next {
        name_thread();
        let Some(q) = get(id) else {
            return Next::Closed;
        };
        let Ok(mut s) = q.state.lock() else {
            return Next::Closed;
        };
        if s.requests.is_empty() && !s.closed && !wait.is_zero() {
            s = match q.ready.wait_timeout(s, wait) {
                Ok((s, _)) => s,
                Err(_) => return Next::Closed,
            };
        }
        match s.requests.pop_front() {
            Some(Request::Decide(token, flow)) => Next::Decide(token, flow),
            Some(Request::Ended(records)) => Next::Ended(Value::object([
                ("type", Value::String("flow-end".into())),
                (
                    "records",
                    Value::Array(records.iter().map(record).collect()),
                ),
            ])),
            None if s.closed => {
                drop(s);
                if let Ok(mut t) = table().lock() {
                    t.remove(&id);
                }
                Next::Closed
            }
            None => Next::Empty,
        }
    }

    /// Names the worker's thread once, so that `top -H` and perf show it.
    fn name_thread() {
        thread_local!(static NAMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
        if !NAMED.with(|n| n.replace(true)) {
            // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
            unsafe { libc::prctl(libc::PR_SET_NAME, c"passt-policy".as_ptr()) };
        }
    }

    /// The worker's answer for `token` (a verdict, or `{ error }`).
    pub fn answer(id: u64, token: u64, v: &Value) {
        let reply = get(id).and_then(|q| q.state.lock().ok()?.replies.remove(&token));
        if let Some(reply) = reply {
            let verdict = match v.get("error") {
                Some(Value::String(e)) => Verdict::Failed(e.clone()),
                _ => super::verdict(v),
            };
            reply.send(verdict);
        }
    }

    /// The engine's side: decisions (and, if the module has a flowEnd
    /// hook, finished flows) go to the worker; opened and finished flows
    /// also go to the main thread when it listens (`main`).
    pub struct WorkerSink {
        pub queue: Arc<Queue>,
        pub flow_end: bool,
        pub main: Option<JsPolicy>,
    }

    impl WorkerSink {
        fn push(&self, r: Request) {
            if let Ok(mut s) = self.queue.state.lock() {
                s.requests.push_back(r);
            }
            self.queue.ready.notify_one();
        }
    }

    impl PolicySink for WorkerSink {
        fn decide(&self, flow: &FlowInfo, reply: Reply) {
            let token = match self.queue.state.lock() {
                Ok(mut s) => {
                    s.next_token += 1;
                    let t = s.next_token;
                    s.replies.insert(t, reply);
                    t
                }
                Err(_) => return,
            };
            self.push(Request::Decide(token, *flow));
        }

        fn opened(&self, flows: Vec<Opened>) {
            if let Some(m) = &self.main {
                m.opened(flows);
            }
        }

        fn ended(&self, records: Vec<FlowRecord>) {
            match (&self.main, self.flow_end) {
                (Some(m), true) => {
                    m.ended(records.clone());
                    self.push(Request::Ended(records));
                }
                (Some(m), false) => m.ended(records),
                (None, true) => self.push(Request::Ended(records)),
                (None, false) => {}
            }
        }
    }

    impl Drop for WorkerSink {
        /// The engine is gone: the worker's next wait returns `false`.
        fn drop(&mut self) {
            if let Ok(mut s) = self.queue.state.lock() {
                s.closed = true;
                s.replies.clear();
            }
            self.queue.ready.notify_all();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use passt_core::flow::policy::{Decision, Gate, Hooks, Parked};
        use passt_core::flow::record::{Direction, Proto};
        use std::time::Instant;

        fn ping(id: u16) -> FlowInfo {
            FlowInfo {
                proto: Proto::Icmp,
                direction: Direction::Outbound,
                src: std::net::SocketAddr::new("10.0.2.15".parse().unwrap(), id),
                dst: std::net::SocketAddr::new("192.0.2.1".parse().unwrap(), id),
            }
        }

        fn park(gate: &mut Gate, info: FlowInfo) {
            let (src, dst) = (info.src.ip(), info.dst.ip());
            let flow = Parked::IcmpOut {
                src,
                dst,
                queue: Vec::new(),
            };
            assert!(gate.park(info, flow, Instant::now()).is_ok());
        }

        #[test]
        fn questions_in_order_answers_by_token_then_closed() {
            let id = create();
            let sink = WorkerSink {
                queue: get(id).unwrap(),
                flow_end: false,
                main: None,
            };
            let hooks = Hooks {
                outbound: true,
                ..Hooks::default()
            };
            let mut gate = Gate::new(hooks, Box::new(sink)).unwrap();
            let wait = Duration::from_millis(10);
            assert!(matches!(next(id, wait), Next::Empty));
            park(&mut gate, ping(1));
            park(&mut gate, ping(2));
            let Next::Decide(first, flow) = next(id, wait) else {
                panic!("no question")
            };
            assert_eq!(flow, ping(1));
            let Next::Decide(second, flow) = next(id, wait) else {
                panic!("no question")
            };
            assert_eq!(flow, ping(2));
            // Answered out of order; an unknown token is ignored.
            answer(id, second, &Value::String("reject".into()));
            answer(id, 999, &Value::String("allow".into()));
            answer(
                id,
                first,
                &Value::object([("error", Value::String("boom".into()))]),
            );
            let mut warnings = Vec::new();
            let decided = gate.take_decided(Instant::now(), &mut |w| warnings.push(w));
            let by_id = |n: u16| {
                decided
                    .iter()
                    .find(|(i, _, _)| i.src.port() == n)
                    .map(|(_, _, d)| *d)
            };
            assert_eq!(by_id(2), Some(Decision::Reject));
            assert!(
                matches!(by_id(1), Some(Decision::Allow(_))),
                "a failed hook gets the default"
            );
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            drop(gate);
            assert!(matches!(next(id, wait), Next::Closed));
            assert!(get(id).is_none(), "the queue is gone with its engine");
        }
    }
}
