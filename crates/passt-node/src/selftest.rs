//! `tsfnSelfTest(fn, {count}, onDone)`: a Rust thread
//! calls `fn(i)` for i in 0..count through a threadsafe function, collects
//! the replies through a channel, and reports to `onDone` what it saw:
//! whether any call waited, whether replies kept their order, which ones
//! failed. It is how the test suite checks `tsfn` from JS; the engine's
//! policy hooks use the same path.

use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::napi::{CallInfo, Env, JsValue, NapiResult};
use crate::tsfn::{Reply, ThreadsafeFunction};
use crate::value::Value;

/// Upper bound on waiting for the replies of one self-test.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Error messages reported back in full; the rest are only counted.
const ERRORS_KEPT: usize = 16;

pub fn run(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    let func = ThreadsafeFunction::new(env, ci.function_arg(env, 0, "fn")?, "tsfnSelfTest")?;
    let opts = env.read(ci.arg(1, "options")?)?;
    let count = opts.get("count").and_then(Value::as_f64).unwrap_or(0.0) as u32;
    let done =
        ThreadsafeFunction::new(env, ci.function_arg(env, 2, "onDone")?, "tsfnSelfTestDone")?;
    std::thread::Builder::new()
        .name("tsfn-selftest".into())
        .spawn(move || {
            let report = exercise(&func, count);
            drop(func);
            done.call(report, Box::new(drop));
        })
        .map_err(|e| format!("cannot start self-test thread: {e}"))?;
    env.undefined()
}

fn exercise(func: &ThreadsafeFunction, count: u32) -> Value {
    let (tx, rx) = mpsc::channel::<(u32, Reply)>();
    let t0 = Instant::now();
    for i in 0..count {
        let tx = tx.clone();
        func.call(
            Value::Number(i.into()),
            Box::new(move |r| drop(tx.send((i, r)))),
        );
    }
    let enqueue_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let last_call_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    drop(tx);
    let mut replies: Vec<(u32, Reply)> = rx.try_iter().collect();
    let replies_at_last_call = replies.len();
    let deadline = Instant::now() + COLLECT_TIMEOUT;
    while replies.len() < count as usize {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => replies.push(r),
            Err(_) => break,
        }
    }

    let mut out_of_order = 0u64;
    let mut sum = 0.0;
    let mut error_count = 0u64;
    let mut errors = Vec::new();
    for (k, (i, reply)) in replies.iter().enumerate() {
        if *i as usize != k {
            out_of_order += 1;
        }
        match reply {
            Ok(v) => sum += v.as_f64().unwrap_or(0.0),
            Err(e) => {
                error_count += 1;
                if errors.len() < ERRORS_KEPT {
                    errors.push(Value::object([
                        ("index", Value::Number((*i).into())),
                        ("message", Value::String(e.clone())),
                    ]));
                }
            }
        }
    }
    Value::object([
        ("calls", u64::from(count).into()),
        ("enqueueMs", Value::Number(enqueue_ms)),
        ("lastCallAt", Value::Number(last_call_at)),
        ("repliesAtLastCall", (replies_at_last_call as u64).into()),
        ("replies", (replies.len() as u64).into()),
        ("outOfOrder", out_of_order.into()),
        ("sum", Value::Number(sum)),
        ("errorCount", error_count.into()),
        ("errors", Value::Array(errors)),
    ])
}
