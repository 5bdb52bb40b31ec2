//! `qrapConnect(dir?)`: the descriptor of a connected, answering passt
//! socket (see `passt_core::backend::qrap`), for qrap to hand to qemu.

use std::os::fd::IntoRawFd;
use std::path::PathBuf;

use passt_core::backend::qrap;

use crate::napi::{CallInfo, Env, JsValue, NapiResult};
use crate::value::Value;

pub fn connect(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    let dir = match ci.args.first().map(|v| env.read(*v)).transpose()? {
        Some(Value::String(d)) => PathBuf::from(d),
        _ => std::env::temp_dir(),
    };
    let (stream, path) = qrap::connect(&dir).map_err(|e| e.to_string())?;
    let fd = stream.into_raw_fd();
    env.make(&Value::object([
        ("fd", Value::Number(fd.into())),
        ("path", Value::String(path.display().to_string())),
    ]))
}
