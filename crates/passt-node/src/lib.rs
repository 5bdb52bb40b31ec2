//! passt-node: the Node-API binding of passt-core. It converts JS values
//! to engine inputs and forwards calls; it holds no protocol logic.
//!
//! - `napi_sys` the hand-written Node-API declarations (the only FFI)
//! - `napi`     safe wrappers: values, calls, exceptions, externals
//! - `value`    `Value`, the Rust copy of a JS value
//! - `tsfn`     threadsafe functions: Rust threads calling JS, non-blocking
//! - `convert`  the binding configuration into engine types
//! - `instance` engine start/stop/stats/events/forwards from JS
//! - `policy`   policy requests as calls of a JS function, and verdicts
//! - `qrap`     finds an answering passt socket for qrap
//! - `discover` host addresses and routes for the defaults (netlink)
//! - `selftest` exercises `tsfn` from a Rust thread, for the test suite
#![allow(unsafe_code)]

mod convert;
mod discover;
mod instance;
mod napi;
mod napi_sys;
mod policy;
mod qrap;
mod selftest;
mod tsfn;
mod value;

use napi::{callback, CallInfo, Env, JsValue, NapiResult};
use napi_sys::{napi_callback_info, napi_env, napi_value};

type Export = fn(Env, CallInfo) -> NapiResult<JsValue>;

const EXPORTS: &[(&str, Export)] = &[
    ("engineStart", instance::start),
    ("engineStop", instance::stop),
    ("engineStats", instance::stats),
    ("engineForwardAdd", instance::forward_add),
    ("engineForwardRemove", instance::forward_remove),
    ("engineNsForwardAdd", instance::ns_forward_add),
    ("engineNsForwardRemove", instance::ns_forward_remove),
    ("policyQueueCreate", instance::queue_create),
    ("policyQueueNext", instance::queue_next),
    ("policyQueueAnswer", instance::queue_answer),
    ("tsfnSelfTest", selftest::run),
    ("hostDiscover", discover::host_discover),
    ("qrapConnect", qrap::connect),
];

/// Every export goes through this one trampoline; the Rust function to run
/// travels as the JS function's `data` pointer.
unsafe extern "C" fn trampoline(env: napi_env, info: napi_callback_info) -> napi_value {
    // SAFETY: env and info come straight from Node-API.
    unsafe {
        callback(env, info, |env, ci| {
            // SAFETY: `data` was set from an `Export` in `register` below.
            let f: Export = std::mem::transmute::<*mut std::os::raw::c_void, Export>(ci.data);
            f(env, ci)
        })
    }
}

/// Module entry point Node looks up by name when loading the addon. It runs
/// once per JS environment (main thread and each worker), so nothing here
/// may be global.
///
/// # Safety
/// Called by Node-API with a valid env and exports object.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let env = Env(env);
    for (name, f) in EXPORTS {
        let registered = env
            .function(name, Some(trampoline), *f as *mut std::os::raw::c_void)
            .and_then(|func| env.set_named(exports, name, func));
        if let Err(e) = registered {
            env.throw(&format!("passt: cannot register {name}: {e}"));
            return std::ptr::null_mut();
        }
    }
    exports
}
