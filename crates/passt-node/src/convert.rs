//! The binding configuration (a plain JS object built by
//! `ts/config/bindingify.ts`) into the engine's types. One function per
//! section; every error names the key that is wrong. No defaults are
//! decided here: TypeScript fills them in before the object crosses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;

use passt_core::config::{Disabled, GuestConfig, Ipv4Config, Ipv6Config};
use passt_core::engine::BackendSpec;
use passt_core::flow::icmp::GatewayMap;
use passt_core::flow::policy::Hooks;
use passt_core::netns::{AutoForwards, NetConfig, PastaSpec, Target};

use crate::value::Value;

type R<T> = Result<T, String>;

/// A present member: `undefined` and `null` count as absent.
fn field<'a>(v: &'a Value, _path: &str, key: &str) -> Option<&'a Value> {
    match v.get(key) {
        None | Some(Value::Undefined) | Some(Value::Null) => None,
        Some(x) => Some(x),
    }
}

fn string(v: &Value, path: &str, key: &str) -> R<Option<String>> {
    match field(v, path, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{path}.{key}: expected a string")),
    }
}

fn req_string(v: &Value, path: &str, key: &str) -> R<String> {
    string(v, path, key)?.ok_or_else(|| format!("{path}.{key}: missing"))
}

fn number(v: &Value, path: &str, key: &str) -> R<Option<f64>> {
    match field(v, path, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(*n)),
        Some(_) => Err(format!("{path}.{key}: expected a number")),
    }
}

fn int<T: TryFrom<i64>>(v: &Value, path: &str, key: &str) -> R<Option<T>> {
    match number(v, path, key)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 => T::try_from(n as i64)
            .map(Some)
            .map_err(|_| format!("{path}.{key}: {n} out of range")),
        Some(n) => Err(format!("{path}.{key}: {n} is not an integer")),
    }
}

fn flag(v: &Value, path: &str, key: &str) -> R<bool> {
    match field(v, path, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{path}.{key}: expected a boolean")),
    }
}

fn parsed<T: FromStr>(v: &Value, path: &str, key: &str) -> R<Option<T>> {
    match string(v, path, key)? {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("{path}.{key}: '{s}' is not valid")),
    }
}

fn req<T: FromStr>(v: &Value, path: &str, key: &str) -> R<T> {
    parsed(v, path, key)?.ok_or_else(|| format!("{path}.{key}: missing"))
}

fn list<T: FromStr>(v: &Value, path: &str, key: &str) -> R<Vec<T>> {
    match field(v, path, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => s
                    .parse()
                    .map_err(|_| format!("{path}.{key}[{i}]: '{s}' is not valid")),
                _ => Err(format!("{path}.{key}[{i}]: expected a string")),
            })
            .collect(),
        Some(_) => Err(format!("{path}.{key}: expected an array")),
    }
}

pub fn mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut out {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn mac_field(v: &Value, path: &str, key: &str) -> R<Option<[u8; 6]>> {
    match string(v, path, key)? {
        None => Ok(None),
        Some(s) => mac(&s)
            .map(Some)
            .ok_or_else(|| format!("{path}.{key}: '{s}' is not a MAC address")),
    }
}

fn section<'a>(v: &'a Value, path: &str, key: &str) -> R<Option<&'a Value>> {
    match field(v, path, key) {
        None => Ok(None),
        Some(o @ Value::Object(_)) => Ok(Some(o)),
        Some(_) => Err(format!("{path}.{key}: expected an object")),
    }
}

pub fn guest(v: &Value) -> R<GuestConfig> {
    let p = "guest";
    let v4 = match section(v, p, "v4")? {
        None => None,
        Some(s) => Some(Ipv4Config {
            addr: req(s, "guest.v4", "addr")?,
            prefix_len: int(s, "guest.v4", "prefixLen")?.unwrap_or(24),
            gateway: req(s, "guest.v4", "gateway")?,
            dns: list::<Ipv4Addr>(s, "guest.v4", "dns")?,
        }),
    };
    let v6 = match section(v, p, "v6")? {
        None => None,
        Some(s) => Some(Ipv6Config {
            addr: req(s, "guest.v6", "addr")?,
            prefix_len: int(s, "guest.v6", "prefixLen")?.unwrap_or(64),
            gateway: req(s, "guest.v6", "gateway")?,
            router_ll: req(s, "guest.v6", "routerLl")?,
            dns: list::<Ipv6Addr>(s, "guest.v6", "dns")?,
        }),
    };
    let d = section(v, p, "disabled")?
        .cloned()
        .unwrap_or(Value::Object(vec![]));
    let dp = "guest.disabled";
    Ok(GuestConfig {
        our_mac: mac_field(v, p, "ourMac")?.ok_or("guest.ourMac: missing")?,
        v4,
        v6,
        search: list::<String>(v, p, "search")?,
        mtu: int(v, p, "mtu")?,
        hostname: match string(v, p, "hostname")? {
            Some(h) if h.is_empty() || h.len() > 255 => {
                return Err(format!("{p}.hostname: 1 to 255 bytes expected"))
            }
            h => h,
        },
        disabled: Disabled {
            dhcp: flag(&d, dp, "dhcp")?,
            ndp: flag(&d, dp, "ndp")?,
            dhcpv6: flag(&d, dp, "dhcpv6")?,
            ra: flag(&d, dp, "ra")?,
            icmp: flag(&d, dp, "icmp")?,
            tcp: flag(&d, dp, "tcp")?,
            udp: flag(&d, dp, "udp")?,
        },
    })
}

pub fn gateway_map(v: &Value) -> R<GatewayMap> {
    let Some(s) = section(v, "config", "gatewayMap")? else {
        return Ok(GatewayMap::default());
    };
    // `{ match, host }`: two addresses; `v4`/`v6` want both of one family.
    let pair = |key: &str| -> R<Option<(IpAddr, IpAddr)>> {
        let Some(d) = section(s, "gatewayMap", key)? else {
            return Ok(None);
        };
        let p = format!("gatewayMap.{key}");
        let ip = |field: &str| -> R<IpAddr> {
            let a = req_string(d, &p, field)?;
            a.parse()
                .map_err(|_| format!("{p}: '{a}' is not an address"))
        };
        Ok(Some((ip("match")?, ip("host")?)))
    };
    let v4 = |key: &str| -> R<Option<(Ipv4Addr, Ipv4Addr)>> {
        match pair(key)? {
            None => Ok(None),
            Some((IpAddr::V4(m), IpAddr::V4(h))) => Ok(Some((m, h))),
            Some(_) => Err(format!("gatewayMap.{key}: IPv4 addresses expected")),
        }
    };
    let v6 = |key: &str| -> R<Option<(Ipv6Addr, Ipv6Addr)>> {
        match pair(key)? {
            None => Ok(None),
            Some((IpAddr::V6(m), IpAddr::V6(h))) => Ok(Some((m, h))),
            Some(_) => Err(format!("gatewayMap.{key}: IPv6 addresses expected")),
        }
    };
    Ok(GatewayMap {
        v4: parsed(s, "gatewayMap", "v4")?,
        v6: parsed(s, "gatewayMap", "v6")?,
        dns4: v4("dns4")?,
        dns6: v6("dns6")?,
        out4: parsed(s, "gatewayMap", "out4")?,
        out6: parsed(s, "gatewayMap", "out6")?,
        guest4: v4("guest4")?,
        guest6: v6("guest6")?,
    })
}

pub fn pcap(v: &Value) -> R<Option<PathBuf>> {
    Ok(string(v, "config", "pcap")?.map(PathBuf::from))
}

/// How the guest attaches: a qemu socket, or a pasta namespace to set up.
pub enum Attach {
    Qemu(BackendSpec),
    Pasta(Box<PastaSpec>),
}

pub fn attach(v: &Value) -> R<Option<Attach>> {
    let Some(b) = section(v, "config", "backend")? else {
        return Ok(None);
    };
    let p = "backend";
    match req_string(b, p, "kind")?.as_str() {
        "qemu" => Ok(Some(Attach::Qemu(BackendSpec::QemuListen {
            path: string(b, p, "path")?.map(PathBuf::from),
            one_off: flag(b, p, "oneOff")?,
        }))),
        "qemu-fd" => {
            let fd: i32 = int(b, p, "fd")?.ok_or("backend.fd: missing")?;
            if fd < 0 || nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
                return Err(format!("backend.fd: {fd} is not an open descriptor"));
            }
            // SAFETY: the descriptor is open and handed to us by the caller
            // (`--fd`), who gives up its ownership.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            Ok(Some(Attach::Qemu(BackendSpec::QemuFd(fd))))
        }
        "pasta" => {
            let target = match string(b, p, "netns")? {
                None => Target::New,
                Some(netns) => Target::Join {
                    netns,
                    userns: string(b, p, "userns")?,
                },
            };
            let config_net = match section(b, p, "configNet")? {
                None => None,
                Some(c) => {
                    let cp = "backend.configNet";
                    let v4 = match section(c, cp, "v4")? {
                        None => None,
                        Some(s) => Some((
                            req(s, "configNet.v4", "addr")?,
                            int(s, "configNet.v4", "prefixLen")?.unwrap_or(24),
                            parsed(s, "configNet.v4", "gateway")?,
                        )),
                    };
                    let v6 = match section(c, cp, "v6")? {
                        None => None,
                        Some(s) => Some((
                            req(s, "configNet.v6", "addr")?,
                            int(s, "configNet.v6", "prefixLen")?.unwrap_or(64),
                            parsed(s, "configNet.v6", "gateway")?,
                        )),
                    };
                    Some(NetConfig {
                        mtu: int(c, cp, "mtu")?,
                        mac: mac_field(c, cp, "mac")?,
                        v4,
                        v6,
                    })
                }
            };
            Ok(Some(Attach::Pasta(Box::new(PastaSpec {
                agent: PathBuf::from(req_string(b, p, "agent")?),
                target,
                command: list::<String>(b, p, "command")?,
                ifname: req_string(b, p, "ifname")?,
                config_net,
                ns_tcp_binds: ns_forwards(b, "nsTcpForwards")?,
                ns_udp_binds: ns_forwards(b, "nsUdpForwards")?,
                auto: AutoForwards {
                    udp: flag(v, "config", "udpAuto")?,
                    ns_tcp: flag(b, p, "nsTcpAuto")?,
                    ns_udp: flag(b, p, "nsUdpAuto")?,
                    ..AutoForwards::default()
                },
            }))))
        }
        other => Err(format!("backend.kind: unknown '{other}'")),
    }
}

/// `tcpForwards: [{ addr, port, guestPort }]`: inbound `-t` forwards.
/// One `tcpForwards` entry: where to listen, the guest port, and whether
/// a failure to bind is an error (explicit ports) or a port skipped
/// (`-t all`, exclusions only).
pub struct Forward {
    pub addr: std::net::SocketAddr,
    pub guest_port: u16,
    pub best_effort: bool,
    /// `%IFACE`: only connections through this interface.
    pub device: Option<String>,
}

pub fn tcp_forwards(v: &Value) -> R<Vec<Forward>> {
    forwards(v, "tcpForwards")
}

/// `udpForwards`, the same for `-u`.
pub fn udp_forwards(v: &Value) -> R<Vec<Forward>> {
    forwards(v, "udpForwards")
}

fn forwards(v: &Value, key: &str) -> R<Vec<Forward>> {
    match field(v, "config", key) {
        None => Ok(Vec::new()),
        Some(items) => forward_list(items, key),
    }
}

/// An array of forwards (`{ addr, port, guestPort, iface?, bestEffort? }`),
/// as in `tcpForwards`; `key` names it in errors.
pub fn forward_list(items: &Value, key: &str) -> R<Vec<Forward>> {
    each(items, key, |f, p| {
        let guest_port: u16 =
            int(f, p, "guestPort")?.ok_or_else(|| format!("{p}.guestPort: missing"))?;
        Ok(Forward {
            addr: socket_addr(f, p)?,
            guest_port,
            best_effort: flag(f, p, "bestEffort")?,
            device: string(f, p, "iface")?,
        })
    })
}

/// Each element of the array `items` (named `key` in errors) through
/// `one`, with its path (`key[i]`).
fn each<T>(items: &Value, key: &str, one: impl Fn(&Value, &str) -> R<T>) -> R<Vec<T>> {
    let Value::Array(items) = items else {
        return Err(format!("{key}: expected an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, f)| one(f, &format!("{key}[{i}]")))
        .collect()
}

/// `{ addr, port }` of an object at `p`.
fn socket_addr(f: &Value, p: &str) -> R<std::net::SocketAddr> {
    let addr: std::net::IpAddr = req(f, p, "addr")?;
    let port: u16 = int(f, p, "port")?.ok_or_else(|| format!("{p}.port: missing"))?;
    Ok(std::net::SocketAddr::new(addr, port))
}

/// `backend.nsTcpForwards: [{ addr, port, hostPort }]`: pasta's `-T`,
/// listening on `addr:port` in the namespace for the host's `hostPort`;
/// `nsUdpForwards`, the same for `-U`.
fn ns_forwards(b: &Value, key: &str) -> R<Vec<(std::net::SocketAddr, u16)>> {
    match field(b, "backend", key) {
        None => Ok(Vec::new()),
        Some(items) => ns_forward_list(items, &format!("backend.{key}")),
    }
}

/// An array of `-T`/`-U` forwards (`{ addr, port, hostPort }`); `key`
/// names it in errors.
pub fn ns_forward_list(items: &Value, key: &str) -> R<Vec<(std::net::SocketAddr, u16)>> {
    each(items, key, |f, p| {
        let host_port: u16 =
            int(f, p, "hostPort")?.ok_or_else(|| format!("{p}.hostPort: missing"))?;
        Ok((socket_addr(f, p)?, host_port))
    })
}

/// pasta's `--no-splice`: host-loopback clients of `-t` go through the
/// tap like the others.
pub fn no_splice(v: &Value) -> R<bool> {
    match section(v, "config", "backend")? {
        Some(b) => flag(b, "backend", "noSplice"),
        None => Ok(false),
    }
}

/// A decision worker's queue id, and whether finished flows go there.
pub type WorkerQueue = (u64, bool);

/// `policy: { outbound?, inbound?, flowOpen?, flowEnd?, timeoutMs?,
/// queue?, workerFlowEnd? }`: which policy requests the engine makes, and
/// the worker queue that takes decisions (with whether finished flows go
/// there too).
pub fn policy(v: &Value) -> R<Option<(Hooks, Option<WorkerQueue>)>> {
    let Some(p) = section(v, "config", "policy")? else {
        return Ok(None);
    };
    let path = "policy";
    let timeout = match int::<u64>(p, path, "timeoutMs")? {
        Some(0) => return Err("policy.timeoutMs: must be positive".into()),
        Some(ms) => std::time::Duration::from_millis(ms),
        None => passt_core::flow::policy::DEFAULT_TIMEOUT,
    };
    let hooks = Hooks {
        outbound: flag(p, path, "outbound")?,
        inbound: flag(p, path, "inbound")?,
        flow_open: flag(p, path, "flowOpen")?,
        flow_end: flag(p, path, "flowEnd")?,
        timeout,
        reject_by_default: match string(p, path, "default")?.as_deref() {
            None | Some("allow") => false,
            Some("reject") => true,
            Some(other) => return Err(format!("policy.default: '{other}' is not allow or reject")),
        },
    };
    let worker = int::<u64>(p, path, "queue")?
        .map(|q| Ok::<_, String>((q, flag(p, path, "workerFlowEnd")?)));
    Ok(Some((hooks, worker.transpose()?)))
}

/// `[{ addr, port }]`: forwards to remove, by bind address and port.
pub fn addresses(items: &Value, key: &str) -> R<Vec<std::net::SocketAddr>> {
    each(items, key, socket_addr)
}

/// pasta's `-t auto`.
pub fn tcp_auto(v: &Value) -> R<bool> {
    flag(v, "config", "tcpAuto")
}
