//! Threadsafe functions: any Rust thread calls a JS function and gets its
//! answer later, through a callback it supplies, without ever waiting for
//! the JS thread.
//!
//! Invariants:
//! - `call` never blocks: the queue is unbounded (max_queue_size 0) and
//!   calls are made in non-blocking mode. Calls from one thread reach JS
//!   in the order they were made.
//! - Every call's `on_reply` runs exactly once: with the JS return value,
//!   with the settled value of a returned promise, with `Err` if the
//!   function threw or the promise rejected, or with `Err` if the
//!   environment is shutting down (the addon is unloading) and JS will
//!   never run it. `on_reply` runs on the JS thread (or the thread that
//!   tears the function down): it must be quick and must not block, e.g.
//!   push to a channel and signal an eventfd.
#![allow(unsafe_code)]

use std::os::raw::c_void;
use std::ptr;

use crate::napi::{callback, Env, NapiResult};
use crate::napi_sys::*;
use crate::value::Value;

pub type Reply = Result<Value, String>;
pub type OnReply = Box<dyn FnOnce(Reply) + Send>;

struct Call {
    arg: Value,
    on_reply: OnReply,
}

/// A JS function callable from any thread. Dropping it releases the
/// underlying Node-API function; JS then finalizes it once its queue is
/// empty.
pub struct ThreadsafeFunction {
    raw: napi_threadsafe_function,
}

// SAFETY: Node-API threadsafe functions are made to be called and released
// from any thread; the handle is an opaque pointer owned by Node.
unsafe impl Send for ThreadsafeFunction {}
// SAFETY: as above; napi_call_threadsafe_function is thread-safe.
unsafe impl Sync for ThreadsafeFunction {}

impl ThreadsafeFunction {
    /// Wraps `func`. It keeps the Node event loop alive until dropped.
    pub fn new(env: Env, func: napi_value, name: &str) -> NapiResult<Self> {
        let name = env.string(name)?;
        let mut raw = ptr::null_mut();
        // SAFETY: valid env and handles; no finalizer data; call_js is ours.
        let status = unsafe {
            napi_create_threadsafe_function(
                env.0,
                func,
                ptr::null_mut(),
                name,
                0,
                1,
                ptr::null_mut(),
                None,
                ptr::null_mut(),
                Some(call_js),
                &mut raw,
            )
        };
        if status != NAPI_OK {
            return Err(format!(
                "napi_create_threadsafe_function failed (napi_status {status})"
            ));
        }
        Ok(ThreadsafeFunction { raw })
    }

    /// Queues a call of the JS function with `arg`; returns at once.
    pub fn call(&self, arg: Value, on_reply: OnReply) {
        let data = Box::into_raw(Box::new(Call { arg, on_reply }));
        // SAFETY: `raw` is live until drop; `data` is handed to call_js.
        let status =
            unsafe { napi_call_threadsafe_function(self.raw, data.cast(), NAPI_TSFN_NONBLOCKING) };
        if status != NAPI_OK {
            // Not queued, so call_js will never see it: answer here.
            // SAFETY: we still own `data`.
            let call = unsafe { Box::from_raw(data) };
            let why = if status == NAPI_CLOSING {
                "JS environment is closing".to_owned()
            } else {
                format!("napi_call_threadsafe_function failed (napi_status {status})")
            };
            (call.on_reply)(Err(why));
        }
    }
}

impl Drop for ThreadsafeFunction {
    fn drop(&mut self) {
        // SAFETY: releases the one reference this handle holds.
        unsafe { napi_release_threadsafe_function(self.raw, NAPI_TSFN_RELEASE) };
    }
}

/// Runs on the JS thread for each queued call.
unsafe extern "C" fn call_js(
    env: napi_env,
    js_cb: napi_value,
    _ctx: *mut c_void,
    data: *mut c_void,
) {
    // SAFETY: `data` is the Box leaked by `call`, delivered exactly once.
    let call = unsafe { Box::from_raw(data.cast::<Call>()) };
    if env.is_null() || js_cb.is_null() {
        (call.on_reply)(Err("JS environment is closing".to_owned()));
        return;
    }
    let env = Env(env);
    let result = env.make(&call.arg).and_then(|arg| env.call(js_cb, &[arg]));
    match result {
        Err(e) => (call.on_reply)(Err(e)),
        Ok(v) if env.is_promise(v) => {
            if let Err((e, on_reply)) = settle_later(env, v, call.on_reply) {
                on_reply(Err(e));
            }
        }
        Ok(v) => (call.on_reply)(env.read(v)),
    }
}

/// The reply slot shared by a promise's two handlers. A promise calls at
/// most one of them, once; that one frees the slot. A promise that never
/// settles leaks the slot (and never answers: callers keep their own
/// timeout).
struct Pending(OnReply);

fn settle_later(env: Env, promise: napi_value, on_reply: OnReply) -> Result<(), (String, OnReply)> {
    let slot = Box::into_raw(Box::new(Pending(on_reply)));
    let attach = || -> NapiResult<()> {
        let then = env.get_named(promise, "then")?;
        let ok = env.function("resolved", Some(on_resolved), slot.cast())?;
        let err = env.function("rejected", Some(on_rejected), slot.cast())?;
        env.call_method(promise, then, &[ok, err]).map(drop)
    };
    attach().map_err(|e| {
        // SAFETY: `then` was not attached, so no handler will free the slot.
        let slot = unsafe { Box::from_raw(slot) };
        (e, slot.0)
    })
}

unsafe extern "C" fn on_resolved(env: napi_env, info: napi_callback_info) -> napi_value {
    // SAFETY: Node-API's own env and info.
    unsafe { settle(env, info, true) }
}

unsafe extern "C" fn on_rejected(env: napi_env, info: napi_callback_info) -> napi_value {
    // SAFETY: Node-API's own env and info.
    unsafe { settle(env, info, false) }
}

unsafe fn settle(env: napi_env, info: napi_callback_info, resolved: bool) -> napi_value {
    // SAFETY: env and info come straight from Node-API.
    unsafe {
        callback(env, info, |env, ci| {
            // SAFETY: `data` is the slot from settle_later; only one handler runs.
            let Pending(on_reply) = *Box::from_raw(ci.data.cast::<Pending>());
            let v = match ci.args.first() {
                Some(v) => *v,
                None => env.undefined()?,
            };
            on_reply(if resolved {
                env.read(v)
            } else {
                Err(env.display(v))
            });
            env.undefined()
        })
    }
}
