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
//! - No Node-API call touches a function Node has finalized. Node frees a
//!   threadsafe function when its environment is torn down (a worker
//!   exits) even if our threads still hold it, and Node 20 does not guard
//!   against later calls. So every call and the release happen under
//!   `Guard`'s lock, and the finalizer Node runs on teardown takes the same
//!   lock and marks the function dead before Node frees it.
#![allow(unsafe_code)]

use std::os::raw::c_void;
use std::ptr;
use std::sync::{Arc, Mutex};

use crate::napi::{callback, Env, NapiResult};
use crate::napi_sys::*;
use crate::value::Value;

pub type Reply = Result<Value, String>;
pub type OnReply = Box<dyn FnOnce(Reply) + Send>;

struct Call {
    arg: Value,
    on_reply: OnReply,
}

/// The Node-API handle, or `None` once Node has finalized it.
struct Guard(Mutex<Option<RawTsfn>>);

struct RawTsfn(napi_threadsafe_function);

// SAFETY: Node-API threadsafe functions are made to be called and released
// from any thread; the handle is an opaque pointer owned by Node, and the
// Guard's lock keeps it from being used after Node frees it.
unsafe impl Send for RawTsfn {}

/// A JS function callable from any thread. Dropping it releases the
/// underlying Node-API function; JS then finalizes it once its queue is
/// empty.
pub struct ThreadsafeFunction {
    guard: Arc<Guard>,
}

impl ThreadsafeFunction {
    /// Wraps `func`. It keeps the Node event loop alive until dropped.
    pub fn new(env: Env, func: napi_value, name: &str) -> NapiResult<Self> {
        let name = env.string(name)?;
        let guard = Arc::new(Guard(Mutex::new(None)));
        let finalize_data = Arc::into_raw(Arc::clone(&guard)).cast_mut();
        // Held until the handle is stored: a finalizer cannot run before.
        let mut slot = guard
            .0
            .lock()
            .map_err(|_| "threadsafe function lock poisoned")?;
        let mut raw = ptr::null_mut();
        // SAFETY: valid env and handles; the finalizer owns one Arc count.
        let status = unsafe {
            napi_create_threadsafe_function(
                env.0,
                func,
                ptr::null_mut(),
                name,
                0,
                1,
                finalize_data.cast(),
                Some(finalized),
                ptr::null_mut(),
                Some(call_js),
                &mut raw,
            )
        };
        if status != NAPI_OK {
            // SAFETY: no function was created, so its finalizer never runs.
            drop(unsafe { Arc::from_raw(finalize_data) });
            return Err(format!(
                "napi_create_threadsafe_function failed (napi_status {status})"
            ));
        }
        *slot = Some(RawTsfn(raw));
        drop(slot);
        Ok(ThreadsafeFunction { guard })
    }

    /// Queues a call of the JS function with `arg`; returns at once.
    pub fn call(&self, arg: Value, on_reply: OnReply) {
        let data = Box::into_raw(Box::new(Call { arg, on_reply }));
        let status = match self.guard.0.lock().as_deref() {
            // SAFETY: the lock keeps `raw` alive; `data` is handed to call_js.
            Ok(Some(raw)) => unsafe {
                napi_call_threadsafe_function(raw.0, data.cast(), NAPI_TSFN_NONBLOCKING)
            },
            _ => NAPI_CLOSING,
        };
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
        if let Ok(Some(raw)) = self.guard.0.lock().as_deref() {
            // SAFETY: the lock keeps `raw` alive; we release our one reference.
            unsafe { napi_release_threadsafe_function(raw.0, NAPI_TSFN_RELEASE) };
        }
    }
}

/// Node's finalizer for the function (after our release, or on teardown).
unsafe extern "C" fn finalized(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the Arc count handed over in `new`, given back once.
    let guard = unsafe { Arc::from_raw(data.cast_const().cast::<Guard>()) };
    if let Ok(mut raw) = guard.0.lock() {
        *raw = None;
    };
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
