//! The engine's policy requests as calls of one JS function (`onPolicy`):
//! a decision per new flow, batches of opened and ended flows. Requests
//! are queued through a threadsafe function and never wait; a decision
//! comes back through the call's reply, converted here into a `Verdict`
//! (a throw, a rejection or a malformed answer is `Verdict::Failed`, and
//! the engine applies its default).

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use passt_core::flow::policy::{PolicySink, Reply, Rewrite, Verdict};
use passt_core::flow::record::{FlowInfo, FlowRecord, Opened};

use crate::tsfn::ThreadsafeFunction;
use crate::value::Value;

pub struct JsPolicy(pub ThreadsafeFunction);

fn endpoint(a: SocketAddr) -> Value {
    Value::object([
        ("addr", Value::String(a.ip().to_string())),
        ("port", Value::Number(a.port().into())),
    ])
}

fn flow_members(i: &FlowInfo) -> Vec<(String, Value)> {
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

fn mapped((src, dst): (SocketAddr, SocketAddr)) -> Value {
    Value::object([("src", endpoint(src)), ("dst", endpoint(dst))])
}

fn record(r: &FlowRecord) -> Value {
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
