//! `hostDiscover({ ifname4?, ifname6? })`: what the host's routing says
//! the guest should get (interface, addresses, gateway, MTU, MAC), read
//! through rtnetlink in the calling process's network namespace. TS
//! merges it with the command line into the engine's configuration.

use std::net::IpAddr;

use passt_core::netlink::{HostFamily, Netlink};

use crate::napi::{CallInfo, Env, JsValue, NapiResult};
use crate::value::Value;

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn family(f: Option<HostFamily>) -> Value {
    let Some(f) = f else { return Value::Null };
    let ip = |a: &IpAddr| Value::String(a.to_string());
    Value::object([
        ("ifname", Value::String(f.ifname)),
        ("ifindex", u64::from(f.ifindex).into()),
        ("mtu", u64::from(f.mtu).into()),
        (
            "mac",
            f.mac.map_or(Value::Null, |m| {
                Value::String(
                    m.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                )
            }),
        ),
        (
            "addrs",
            Value::Array(
                f.addrs
                    .iter()
                    .map(|(a, len)| {
                        Value::object([("addr", ip(a)), ("prefixLen", u64::from(*len).into())])
                    })
                    .collect(),
            ),
        ),
        (
            "linkLocal",
            Value::Array(f.link_local.iter().map(ip).collect()),
        ),
        ("gateway", f.gateway.as_ref().map_or(Value::Null, ip)),
    ])
}

pub fn host_discover(env: Env, ci: CallInfo) -> NapiResult<JsValue> {
    let opts = match ci.args.first() {
        Some(v) => env.read(*v)?,
        None => Value::Undefined,
    };
    let if4 = text(opts.get("ifname4"));
    let if6 = text(opts.get("ifname6"));
    let mut nl = Netlink::open().map_err(|e| format!("netlink: {e}"))?;
    let (v4, v6) = nl
        .discover(if4.as_deref(), if6.as_deref())
        .map_err(|e| format!("host discovery: {e}"))?;
    env.make(&Value::object([("v4", family(v4)), ("v6", family(v6))]))
}
