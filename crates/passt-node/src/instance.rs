//! Engine instances as seen from JS: `engineStart(config?, onEvent?,
//! onPolicy?)` returns an opaque handle (a JS external owning the
//! `EngineHandle`), `engineStop` stops it, `engineStats` reads its
//! counters and counts its flows, `engineForwardAdd`/`Remove` change its
//! `-t`/`-u` forwards. Events and policy requests reach JS through
//! threadsafe functions, never blocking the engine. A handle that JS
//! garbage-collects without stopping stops its engine in the finalizer.
//!
//! With a pasta backend, the namespace is set up here, before the engine
//! starts (agent, tap, `--config-net`, command), so that errors reach the
//! caller as exceptions.

use std::sync::Mutex;

use passt_core::engine::BackendSpec;
use passt_core::engine::{
    self, forward, Command, Discard, EngineConfig, EngineHandle, Event, EventSink, SpliceForward,
    TcpForward, UdpSpliceForward,
};
use passt_core::netns::setup_pasta;

use crate::convert::{self, Attach};
use crate::napi::{CallInfo, Env, JsValue, NapiResult};
use crate::napi_sys::NAPI_FUNCTION;
use crate::policy::worker::{self, WorkerSink};
use crate::policy::{self, JsPolicy};
use crate::tsfn::ThreadsafeFunction;
use crate::value::Value;

type Slot = Mutex<Option<EngineHandle>>;

/// Sends engine events to a JS callback.
struct JsEvents(ThreadsafeFunction);

fn event_value(e: Event) -> Value {
    let kind = |k: &str| ("type", Value::String(k.into()));
    match e {
        Event::Listening { path } => Value::object([
            kind("listening"),
            ("path", Value::String(path.display().to_string())),
        ]),
        Event::GuestConnected => Value::object([kind("guest-connected")]),
        Event::GuestDisconnected { reason } => {
            Value::object([kind("guest-disconnected"), ("reason", reason.into())])
        }
        Event::CommandExited { status } => Value::object([
            kind("command-exited"),
            ("status", Value::Number(status.into())),
        ]),
        Event::Warning { message } => Value::object([kind("warning"), ("message", message.into())]),
        Event::Trace { lines } => Value::object([
            kind("trace"),
            (
                "lines",
                Value::Array(lines.into_iter().map(Value::String).collect()),
            ),
        ]),
        Event::Stopped { reason } => Value::object([kind("stopped"), ("reason", reason.into())]),
    }
}

impl EventSink for JsEvents {
    fn event(&self, e: Event) {
        self.0.call(event_value(e), Box::new(drop));
    }
}

pub fn start(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    let config = match ci.args.first() {
        Some(v) => env.read(*v)?,
        None => Value::Undefined,
    };
    let sink: Box<dyn EventSink> = match ci.args.get(1) {
        Some(f) if env.type_of(*f)? == NAPI_FUNCTION => {
            Box::new(JsEvents(ThreadsafeFunction::new(env, *f, "engineEvents")?))
        }
        _ => Box::new(Discard),
    };
    let mut ec = EngineConfig::default();
    if let Value::Object(_) = config {
        if let Some(g) = config.get("guest") {
            ec.guest = convert::guest(g)?;
        }
        ec.gateway_map = convert::gateway_map(&config)?;
        ec.pcap = convert::pcap(&config)?;
        ec.trace = matches!(config.get("trace"), Some(Value::Bool(true)));
        let tcp = convert::tcp_forwards(&config)?;
        ec.tcp_forwards = bind_forwards(tcp, "-t", TcpForward::bind_device, sink.as_ref())?;
        let udp = convert::udp_forwards(&config)?;
        ec.udp_forwards = bind_forwards(udp, "-u", forward::bind_udp, sink.as_ref())?;
        ec.tcp_auto = convert::tcp_auto(&config)?;
        if let Some((hooks, worker)) = convert::policy(&config)? {
            let main = match ci.args.get(2) {
                Some(f) if env.type_of(*f)? == NAPI_FUNCTION => {
                    Some(JsPolicy(ThreadsafeFunction::new(env, *f, "enginePolicy")?))
                }
                _ => None,
            };
            let sink: Box<dyn passt_core::flow::policy::PolicySink> = match (worker, main) {
                (Some((queue, flow_end)), main) => Box::new(WorkerSink {
                    queue: worker::get(queue).ok_or("policy.queue: no such queue")?,
                    flow_end,
                    main,
                }),
                (None, Some(main)) => Box::new(main),
                (None, None) => return Err("config.policy needs an onPolicy function".into()),
            };
            ec.policy = Some((hooks, sink));
        }
        match convert::attach(&config)? {
            None => {}
            Some(Attach::Qemu(spec)) => ec.backend = Some(spec),
            Some(Attach::Pasta(mut spec)) => {
                // Our own listeners are not mirrored back (-T/-U auto).
                spec.auto.host_tcp_skip = ec.tcp_forwards.iter().map(TcpForward::port).collect();
                spec.auto.host_udp_skip = ec
                    .udp_forwards
                    .iter()
                    .filter_map(|f| f.sock.local_addr().ok().map(|a| a.port()))
                    .collect();
                let pasta = setup_pasta(&spec).map_err(|e| format!("pasta: {e}"))?;
                // -u auto: the namespace's bound UDP ports, from the host.
                let family = |v6: bool| {
                    if v6 {
                        ec.guest.v6.is_some()
                    } else {
                        ec.guest.v4.is_some()
                    }
                };
                let wanted = pasta
                    .ns_udp_bound
                    .iter()
                    .filter(|(_, v6)| family(*v6))
                    .map(|&(port, v6)| convert::Forward {
                        addr: std::net::SocketAddr::new(passt_core::flow::unspecified(v6), port),
                        guest_port: port,
                        best_effort: true,
                        device: None,
                    })
                    .collect::<Vec<_>>();
                if !wanted.is_empty() {
                    let more = bind_forwards(wanted, "-u", forward::bind_udp, sink.as_ref())?;
                    ec.udp_forwards.extend(more);
                }
                ec.backend = Some(BackendSpec::Tap(pasta.tap));
                ec.agent = Some(pasta.agent);
                ec.splice_inbound = !convert::no_splice(&config)?;
                let from = pasta.ns_auto_from;
                ec.splice_forwards = pasta
                    .ns_listeners
                    .into_iter()
                    .enumerate()
                    .map(|(i, (listener, target))| SpliceForward {
                        listener,
                        target,
                        auto: i >= from,
                    })
                    .collect();
                ec.ns_tcp_auto = spec.auto.ns_tcp;
                ec.udp_splice_forwards = pasta
                    .ns_udp_sockets
                    .into_iter()
                    .map(|(sock, target)| UdpSpliceForward { sock, target })
                    .collect();
            }
        }
    }
    let handle = engine::spawn(ec, sink).map_err(|e| e.to_string())?;
    env.external::<Slot>(Mutex::new(Some(handle)))
}

/// Binds a `-t` or `-u` option's forwards: explicit ports must bind (the
/// error names the port), the best-effort ones (`all`, exclusions alone)
/// bind what they can, with a warning if the descriptor limit cut them.
fn bind_forwards<T>(
    list: Vec<convert::Forward>,
    opt: &str,
    bind: impl Fn(std::net::SocketAddr, Option<&str>, u16) -> std::io::Result<T>,
    sink: &dyn EventSink,
) -> Result<Vec<T>, String> {
    let (best_effort, required): (Vec<_>, Vec<_>) = list.into_iter().partition(|f| f.best_effort);
    let mut bound = required
        .into_iter()
        .map(|f| bind(f.addr, f.device.as_deref(), f.guest_port))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if !best_effort.is_empty() {
        let wanted: Vec<_> = best_effort
            .into_iter()
            .map(|f| (f.addr, f.device, f.guest_port))
            .collect();
        let (more, cut) = forward::bind_best_effort(&wanted, bind);
        if cut > 0 {
            sink.event(Event::Warning {
                message: format!(
                    "{opt}: {cut} of {} listening sockets not opened: descriptor limit",
                    wanted.len()
                ),
            });
        }
        bound.extend(more);
    }
    Ok(bound)
}

/// Runs `f` on the running engine of argument 0, with the protocol of
/// argument 1 (`true`: UDP) and the array of argument 2: the forward
/// calls below.
fn on_forwards(
    env: Env,
    ci: &CallInfo,
    f: impl FnOnce(&EngineHandle, bool, &Value) -> NapiResult<Value>,
) -> NapiResult<JsValue> {
    let guard = slot(env, ci)?
        .lock()
        .map_err(|_| "engine handle poisoned")?;
    let handle = guard.as_ref().ok_or("engine stopped")?;
    let udp = proto_arg(env, ci)?;
    let v = f(handle, udp, &env.read(ci.arg(2, "forwards")?)?)?;
    env.make(&v)
}

/// `engineForwardAdd(handle, proto, forwards)`: binds every forward
/// first (a port in use throws, and nothing is added), then hands them
/// to the engine.
pub fn forward_add(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    on_forwards(env, &ci, |handle, udp, v| {
        let list = convert::forward_list(v, "forwards")?;
        let command = if udp {
            Command::AddUdp(bind_forwards(list, "-u", forward::bind_udp, &Discard)?)
        } else {
            Command::AddTcp(bind_forwards(
                list,
                "-t",
                TcpForward::bind_device,
                &Discard,
            )?)
        };
        if !handle.command(command) {
            return Err("engine stopped".into());
        }
        Ok(Value::Undefined)
    })
}

/// `engineForwardRemove(handle, proto, [{ addr, port }])`: how many
/// listening sockets were closed.
pub fn forward_remove(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    on_forwards(env, &ci, |handle, udp, v| {
        let n = handle.remove_forwards(udp, convert::addresses(v, "forwards")?);
        Ok(Value::Number(n as f64))
    })
}

/// `engineNsForwardAdd(handle, proto, [{ addr, port, hostPort }])`:
/// pasta's `-T`/`-U` at run time, listening in the namespace; all or
/// none (a port in use there throws, naming it). Returns the count.
pub fn ns_forward_add(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    on_forwards(env, &ci, |handle, udp, v| {
        let binds = convert::ns_forward_list(v, "forwards")?;
        let n = handle
            .add_ns_forwards(udp, binds)
            .map_err(|e| e.to_string())?;
        Ok(Value::Number(n as f64))
    })
}

/// `engineNsForwardRemove(handle, proto, [{ addr, port }])`: how many
/// `-T`/`-U` listeners in the namespace were closed.
pub fn ns_forward_remove(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    on_forwards(env, &ci, |handle, udp, v| {
        let n = handle.remove_ns_forwards(udp, convert::addresses(v, "forwards")?);
        Ok(Value::Number(n as f64))
    })
}

/// `policyQueueCreate()`: a queue for a decision worker (its id).
pub fn queue_create(env: Env, _ci: CallInfo) -> NapiResult<JsValue> {
    env.make(&Value::Number(worker::create() as f64))
}

fn queue_id(env: Env, ci: &CallInfo) -> NapiResult<u64> {
    match env.read(ci.arg(0, "queue id")?)? {
        Value::Number(n) if n.fract() == 0.0 && n >= 0.0 => Ok(n as u64),
        _ => Err("queue id: expected a number".into()),
    }
}

/// `policyQueueNext(id, timeoutMs, words, token?, verdict?)`: files the
/// worker's answer to request `token` first if one is given (0: none),
/// then blocks (a worker thread only) until a request comes. A decision
/// is its token, with the flow written into `words` (a `Uint32Array`,
/// policy::flow_words); finished flows an object; `null` after the
/// timeout, `false` once the engine is gone.
///
/// A synchronous answer rides on the next wait rather than a call of its
/// own: the answer wakes the engine, often onto this thread's CPU, where
/// it waits until this thread sleeps. Back in JS to call in again, that
/// was 27 µs from asking to carrying out a no-op hook's answer on a crr
/// run; with the answer filed just before the wait, 20 µs.
pub fn queue_next(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    let id = queue_id(env, &ci)?;
    let ms = match env.read(ci.arg(1, "timeout")?)? {
        Value::Number(n) if n >= 0.0 => n.min(60_000.0) as u64,
        _ => return Err("timeout: expected milliseconds".into()),
    };
    // Checked before waiting: a request taken is a request answered.
    let mut words = env.u32_array(ci.arg(2, "words")?, policy::FLOW_WORDS)?;
    if let Some(&t) = ci.args.get(3) {
        let token = token_arg(env, t)?;
        if token != 0 {
            worker::answer(id, token, &env.read(ci.arg(4, "verdict")?)?);
        }
    }
    match worker::next(id, std::time::Duration::from_millis(ms)) {
        worker::Next::Decide(token, flow) => {
            words.write(&policy::flow_words(&flow));
            env.make(&Value::Number(token as f64))
        }
        worker::Next::Ended(v) => env.make(&v),
        worker::Next::Empty => env.make(&Value::Null),
        worker::Next::Closed => env.make(&Value::Bool(false)),
    }
}

fn token_arg(env: Env, v: JsValue) -> NapiResult<u64> {
    match env.read(v)? {
        Value::Number(n) if n.fract() == 0.0 && n >= 0.0 => Ok(n as u64),
        _ => Err("token: expected a number".into()),
    }
}

/// `policyQueueAnswer(id, token, verdict)`: an answer that came after
/// the worker went on (a hook's promise settled).
pub fn queue_answer(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    let id = queue_id(env, &ci)?;
    let token = token_arg(env, ci.arg(1, "token")?)?;
    worker::answer(id, token, &env.read(ci.arg(2, "verdict")?)?);
    env.undefined()
}

/// Whether the protocol argument says UDP (else TCP).
fn proto_arg(env: Env, ci: &CallInfo) -> NapiResult<bool> {
    match env.read(ci.arg(1, "protocol")?)? {
        Value::String(s) if s == "tcp" => Ok(false),
        Value::String(s) if s == "udp" => Ok(true),
        other => Err(format!("protocol: expected 'tcp' or 'udp', got {other:?}")),
    }
}

fn slot<'a>(env: Env, ci: &CallInfo) -> NapiResult<&'a Slot> {
    // SAFETY: handles given to JS are only ever made by `start` as `Slot`s.
    unsafe { env.external_ref::<Slot>(ci.arg(0, "engine handle")?) }
}

/// Stops the engine (joins its thread, at most 1 s); stopping a stopped
/// engine does nothing.
pub fn stop(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    let handle = slot(env, &ci)?
        .lock()
        .map_err(|_| "engine handle poisoned")?
        .take();
    if let Some(handle) = handle {
        handle.stop().map_err(|e| e.to_string())?;
    }
    env.undefined()
}

pub fn stats(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    let guard = slot(env, &ci)?
        .lock()
        .map_err(|_| "engine handle poisoned")?;
    let (running, s, census) = match guard.as_ref() {
        Some(h) => (
            h.is_running(),
            h.stats(),
            h.census(std::time::Duration::from_millis(200))
                .unwrap_or_default(),
        ),
        None => (false, Default::default(), Default::default()),
    };
    let active = |n: u64| Value::object([("active", n.into())]);
    let tcp = census
        .tcp
        .iter()
        .map(|(k, n)| ((*k).to_owned(), (*n).into()))
        .collect();
    let flows = Value::object([
        ("tcp", Value::Object(tcp)),
        ("udp", active(census.udp)),
        ("icmp", active(census.icmp)),
        ("splice", active(census.splice)),
        ("udpSplice", active(census.udp_splice)),
        ("parked", census.parked.into()),
    ]);
    let p = census.policy;
    let policy = Value::object([
        ("asked", p.asked.into()),
        ("allowed", p.allowed.into()),
        ("rejected", p.rejected.into()),
        ("rewritten", p.rewritten.into()),
        ("timeouts", p.timeouts.into()),
        ("errors", p.errors.into()),
        ("waitUs", p.wait_us.into()),
    ]);
    let bytes = Value::object([
        ("fromGuest", census.bytes[0].into()),
        ("toGuest", census.bytes[1].into()),
    ]);
    let drops = s
        .drops
        .iter()
        .map(|(reason, n)| (reason.as_str().to_owned(), (*n).into()))
        .collect();
    env.make(&Value::object([
        ("running", Value::Bool(running)),
        ("ticks", s.ticks.into()),
        ("wakeups", s.wakeups.into()),
        ("badTokens", s.bad_tokens.into()),
        ("framesIn", s.frames_in.into()),
        ("framesOut", s.frames_out.into()),
        ("txDropped", s.tx_dropped.into()),
        ("flowErrors", s.flow_errors.into()),
        ("drops", Value::Object(drops)),
        ("flows", flows),
        ("bytes", bytes),
        ("policy", policy),
    ]))
}
