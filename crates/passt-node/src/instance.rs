//! Engine instances as seen from JS: `engineStart` returns an opaque handle
//! (a JS external owning the `EngineHandle`), `engineStop` stops it and
//! `engineStats` reads its counters. A handle that JS garbage-collects
//! without stopping stops its engine in the finalizer.

use std::sync::Mutex;

use passt_core::engine::{self, EngineConfig, EngineHandle};

use crate::napi::{CallInfo, Env, JsValue, NapiResult};
use crate::value::Value;

type Slot = Mutex<Option<EngineHandle>>;

pub fn start(env: Env, _ci: CallInfo) -> NapiResult<JsValue> {
    let handle =
        engine::spawn(EngineConfig::default()).map_err(|e| format!("engine start: {e}"))?;
    env.external::<Slot>(Mutex::new(Some(handle)))
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
    let (running, s) = match guard.as_ref() {
        Some(h) => (h.is_running(), h.stats()),
        None => (false, Default::default()),
    };
    env.make(&Value::object([
        ("running", Value::Bool(running)),
        ("ticks", s.ticks.into()),
        ("wakeups", s.wakeups.into()),
        ("badTokens", s.bad_tokens.into()),
    ]))
}
