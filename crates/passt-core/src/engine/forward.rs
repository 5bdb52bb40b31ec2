//! Inbound TCP forwards: the listening host sockets of `-t` and the guest
//! port each leads to.
//!
//! Three kinds of entry share one table:
//! - required (`-t 22`, ranges): bound before anything starts, by the
//!   caller; a port in use is a startup error;
//! - best effort (`-t all`, `-t ~EXCLUDED`): every port that can be bound
//!   is, the rest (in use, privileged) are skipped, and binding stops
//!   while a quarter of the descriptor limit is still free for flows;
//! - automatic (pasta's `-t auto`): the ports the namespace listens on,
//!   read from its `/proc/PID/net/tcp{,6}` every `SCAN_EVERY`, bound on the
//!   host while they listen there and closed when they stop; an IPv4-only
//!   listener is forwarded for IPv4 only (an IPv6 client would be accepted
//!   and then reset), an IPv6 one for both.
//!
//! Invariants: a slot's index and generation are its epoll token, and the
//! generation changes when a slot is reused, so an event queued for a
//! closed listener is ignored. Dropping a listener closes it, which also
//! removes it from epoll.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::flow::udp::UdpForward;
use crate::slab::Slab;
use crate::sys::tcp::TcpListener;
use crate::sys::udp::UdpSocket;

/// How often pasta's automatic forwards follow the namespace (man pasta:
/// "every second").
pub const SCAN_EVERY: Duration = Duration::from_secs(1);

/// A listening socket for `-t` and the guest port it leads to.
pub struct TcpForward {
    pub(super) listener: TcpListener,
    pub(super) guest_port: u16,
}

impl TcpForward {
    /// Listens on `addr` for the guest's `guest_port`; the error names both
    /// the option and the address.
    pub fn bind(addr: SocketAddr, guest_port: u16) -> io::Result<Self> {
        Self::bind_device(addr, None, guest_port)
    }

    /// The host port it listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().port()
    }

    /// As `bind`, for connections through interface `device` only
    /// (`-t ADDR%IFACE/PORTS`).
    pub fn bind_device(
        addr: SocketAddr,
        device: Option<&str>,
        guest_port: u16,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind_device(addr, device).map_err(|e| {
            let on = match device {
                Some(d) => format!("{addr}%{d}"),
                None => addr.to_string(),
            };
            io::Error::new(e.kind(), format!("-t: cannot listen on {on}: {e}"))
        })?;
        Ok(TcpForward {
            listener,
            guest_port,
        })
    }
}

/// pasta's `-T`: a listener in the namespace and where on the host's
/// loopback its connections go (through the splice path).
pub struct SpliceForward {
    pub listener: TcpListener,
    pub target: SocketAddr,
    /// Made by `-T auto` (and closed by it when the host port goes).
    pub auto: bool,
}

/// A host port and whether it is IPv6.
pub type HostPort = (u16, bool);

/// pasta's `-T auto`, followed: the host's TCP ports reachable on its
/// loopback get a listener on the namespace's loopback (spliced to them)
/// while they listen, checked every `SCAN_EVERY`. The engine's own `-t`
/// ports are never mirrored (a loop).
pub struct NsAuto {
    /// (port, IPv6) mirrored, and the slot of its listener in the
    /// engine's splice listener table.
    pub bound: std::collections::BTreeMap<(u16, bool), usize>,
    next_scan: Instant,
}

impl NsAuto {
    pub fn new(bound: std::collections::BTreeMap<(u16, bool), usize>, now: Instant) -> Self {
        NsAuto {
            bound,
            next_scan: now + SCAN_EVERY,
        }
    }

    /// When a scan is due: the slots whose host port went away (their
    /// entries are dropped here), and the (port, IPv6) pairs to mirror
    /// now; the caller records those it made in `bound`.
    pub fn scan(
        &mut self,
        now: Instant,
        ours: &BTreeSet<u16>,
    ) -> Option<(Vec<usize>, Vec<HostPort>)> {
        if now < self.next_scan {
            return None;
        }
        self.next_scan = now + SCAN_EVERY;
        let host = bound_ports("/proc/self/net", Table::Tcp, true)?;
        let wanted: BTreeSet<(u16, bool)> = host
            .into_iter()
            .filter(|(p, _)| !ours.contains(p))
            .collect();
        let gone_keys: Vec<_> = self
            .bound
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        let gone = gone_keys
            .iter()
            .filter_map(|k| self.bound.remove(k))
            .collect();
        let new = wanted
            .into_iter()
            .filter(|k| !self.bound.contains_key(k))
            .collect();
        Some((gone, new))
    }
}

/// `-u`: a listening UDP socket on `addr` (through `device` only, if
/// given) for the guest's `guest_port`; the error names the option.
pub fn bind_udp(addr: SocketAddr, device: Option<&str>, guest_port: u16) -> io::Result<UdpForward> {
    let open = || -> io::Result<UdpSocket> {
        let sock = UdpSocket::open(addr.is_ipv6())?;
        if let Some(d) = device {
            sock.bind_device(d)?;
        }
        sock.bind(addr)?;
        Ok(sock)
    };
    let sock = open().map_err(|e| {
        let on = match device {
            Some(d) => format!("{addr}%{d}"),
            None => addr.to_string(),
        };
        io::Error::new(e.kind(), format!("-u: cannot listen on {on}: {e}"))
    })?;
    Ok(UdpForward { sock, guest_port })
}

/// A forward to bind: address, interface (`%IFACE`), guest port.
pub type Wanted = (SocketAddr, Option<String>, u16);

/// Binds what can be bound of `wanted` with `bind` (`-t all`, `-u all`,
/// exclusions alone), skipping ports that are taken or need privileges;
/// stops early to leave a quarter of the descriptor limit to flows.
/// Returns the forwards and how many were left out for that limit.
pub fn bind_best_effort<T>(
    wanted: &[Wanted],
    bind: impl Fn(SocketAddr, Option<&str>, u16) -> io::Result<T>,
) -> (Vec<T>, usize) {
    let budget = descriptor_budget();
    let mut bound = Vec::new();
    for (i, (addr, device, guest_port)) in wanted.iter().enumerate() {
        if bound.len() >= budget {
            return (bound, wanted.len() - i);
        }
        if let Ok(f) = bind(*addr, device.as_deref(), *guest_port) {
            bound.push(f);
        }
    }
    (bound, 0)
}

/// pasta's `-U`: a UDP socket in the namespace and where on the host's
/// loopback its clients' datagrams go (through the splice path).
pub struct UdpSpliceForward {
    pub sock: UdpSocket,
    pub target: SocketAddr,
}

/// Descriptors we may spend on best-effort listeners: three quarters of
/// the soft limit, less what is open already.
fn descriptor_budget() -> usize {
    let limit = crate::sys::process::descriptor_limit().unwrap_or(1024);
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    let cap = usize::try_from(limit / 4 * 3).unwrap_or(usize::MAX);
    cap.saturating_sub(open)
}

/// pasta's `-t auto`: which namespace to follow and which address
/// families the guest has.
#[derive(Debug, Clone, Copy)]
pub struct AutoSpec {
    /// A process inside the namespace (its `/proc/PID/net` is the
    /// namespace's view).
    pub pid: u32,
    pub ipv4: bool,
    pub ipv6: bool,
}

/// Ports the scan leaves alone: the namespace's own `-T` listeners, which
/// lead back to the host (man pasta: forwarding them would loop).
pub type Skip = BTreeSet<u16>;

/// A port and address family the namespace listens on.
type Bound = (u16, Family);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    V4,
    V6,
}

struct Slot {
    fwd: TcpForward,
    /// Opened by the automatic scan for this port and family (and closed
    /// by it too); `None` for the fixed ones.
    auto: Option<Bound>,
}

struct Auto {
    spec: AutoSpec,
    skip: Skip,
    /// What is bound on the host for the namespace right now.
    bound: BTreeSet<Bound>,
    next_scan: Instant,
}

/// What a scan changed: new listeners to watch (index, generation).
pub type Added = Vec<(usize, u8)>;

pub struct Forwards {
    slots: Slab<Slot>,
    auto: Option<Auto>,
}

impl Forwards {
    pub fn new(fixed: Vec<TcpForward>, auto: Option<(AutoSpec, Skip)>, now: Instant) -> Self {
        let mut slots = Slab::new();
        for fwd in fixed {
            slots.insert(Slot { fwd, auto: None });
        }
        Forwards {
            slots,
            auto: auto.map(|(spec, skip)| Auto {
                spec,
                skip,
                bound: BTreeSet::new(),
                next_scan: now,
            }),
        }
    }

    /// Every listener with its token parts, for the initial registration.
    pub fn all(&self) -> impl Iterator<Item = (usize, u8, &TcpListener)> {
        self.slots
            .iter()
            .map(|(i, s)| (i, self.slots.gen(i), &s.fwd.listener))
    }

    pub fn get(&self, index: usize, gen: u8) -> Option<&TcpForward> {
        self.slots.checked(index, gen).map(|s| &s.fwd)
    }

    pub fn listener(&self, index: usize) -> Option<&TcpListener> {
        self.slots.get(index).map(|s| &s.fwd.listener)
    }

    /// Follows the namespace's listening ports when a scan is due:
    /// returns the listeners opened (to watch). A port the host cannot
    /// bind (taken there) is tried again on the next scan.
    pub fn scan(&mut self, now: Instant) -> Added {
        let Some(auto) = &mut self.auto else {
            return Vec::new();
        };
        if now < auto.next_scan {
            return Vec::new();
        }
        auto.next_scan = now + SCAN_EVERY;
        let Some(mut wanted) = namespace_listening(auto.spec.pid) else {
            return Vec::new(); // the namespace is going away
        };
        let spec = auto.spec;
        wanted.retain(|&(port, fam)| {
            !auto.skip.contains(&port)
                && match fam {
                    Family::V4 => spec.ipv4,
                    Family::V6 => spec.ipv6,
                }
        });
        let gone: BTreeSet<Bound> = auto.bound.difference(&wanted).copied().collect();
        let new: Vec<Bound> = wanted.difference(&auto.bound).copied().collect();
        auto.bound.retain(|b| !gone.contains(b));
        if !gone.is_empty() {
            for i in self
                .slots
                .select(|s| s.auto.is_some_and(|b| gone.contains(&b)))
            {
                self.slots.remove(i);
            }
        }
        let mut added = Vec::new();
        for (port, fam) in new {
            let ip = match fam {
                Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            let Ok(fwd) = TcpForward::bind(SocketAddr::new(ip, port), port) else {
                continue;
            };
            if let Some(auto) = &mut self.auto {
                auto.bound.insert((port, fam));
            }
            added.push(self.slots.insert(Slot {
                fwd,
                auto: Some((port, fam)),
            }));
        }
        added
    }

    /// Every host port a forward listens on now.
    pub fn ports(&self) -> BTreeSet<u16> {
        self.slots.values().map(|s| s.fwd.port()).collect()
    }

    /// The namespace ports `-t auto` leaves alone from now on.
    pub fn set_skip(&mut self, skip: Skip) {
        if let Some(auto) = &mut self.auto {
            auto.skip = skip;
        }
    }

    /// Adds a forward at run time; returns its token parts (to watch).
    pub fn add(&mut self, fwd: TcpForward) -> (usize, u8) {
        self.slots.insert(Slot { fwd, auto: None })
    }

    /// Closes the fixed forwards listening on `addr`; returns how many.
    pub fn remove(&mut self, addr: SocketAddr) -> usize {
        let hit = self
            .slots
            .select(|s| s.auto.is_none() && s.fwd.listener.local_addr() == addr);
        for &i in &hit {
            self.slots.remove(i);
        }
        hit.len()
    }
}

/// The TCP ports a process's network namespace listens on, by family, or
/// `None` if its tables cannot be read (the process is gone). A port
/// bound for IPv6 is forwarded for IPv4 too (man pasta), as a dual-stack
/// socket would take both.
fn namespace_listening(pid: u32) -> Option<BTreeSet<Bound>> {
    let bound = bound_ports(&format!("/proc/{pid}/net"), Table::Tcp, false)?;
    Some(
        bound
            .into_iter()
            .map(|(port, v6)| (port, if v6 { Family::V6 } else { Family::V4 }))
            .collect(),
    )
}

/// Local ports of the sockets in LISTEN state in a `/proc/net/tcp` or
/// `tcp6` table (proc(5): `sl local_address rem_address st ...`, addresses
/// as `HEX:PORT`, state `0A` = LISTEN). Lines that do not parse are
/// skipped: the header, and anything a future kernel adds.
pub fn listening_ports(table: &str) -> impl Iterator<Item = u16> + '_ {
    sockets_in_state(table, "0A").map(|(_, port)| port)
}

/// (local address, port) of the sockets of a `/proc/net/{tcp,udp}{,6}`
/// table in `state` (0A: TCP listening; 07: UDP bound, unconnected).
fn sockets_in_state<'a>(
    table: &'a str,
    state: &'a str,
) -> impl Iterator<Item = (IpAddr, u16)> + 'a {
    table.lines().filter_map(move |line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1)?;
        if cols.nth(1)? != state {
            return None;
        }
        let (addr, port) = local.rsplit_once(':')?;
        let port = u16::from_str_radix(port, 16).ok().filter(|&p| p != 0)?;
        Some((proc_addr(addr)?, port))
    })
}

/// An address as procfs prints it: the bytes in memory order, 32 bits
/// at a time in host order.
fn proc_addr(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let mut bytes = Vec::with_capacity(16);
    for w in &words {
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// Which sockets `bound_ports` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Listening TCP sockets.
    Tcp,
    /// Bound, unconnected UDP sockets.
    Udp,
}

/// The ports bound in the network namespace whose procfs view is `dir`
/// (`/proc/PID/net`, `/proc/self/net`), as (port, IPv6) pairs; a port
/// bound for IPv6 counts for IPv4 too (man pasta). `loopback`: only
/// sockets a connection to the loopback reaches (bound to a loopback or
/// the unspecified address). `None` if the tables cannot be read.
pub fn bound_ports(dir: &str, table: Table, loopback: bool) -> Option<BTreeSet<(u16, bool)>> {
    let (name, state) = match table {
        Table::Tcp => ("tcp", "0A"),
        Table::Udp => ("udp", "07"),
    };
    let mut bound = BTreeSet::new();
    let mut read_any = false;
    for (suffix, v6) in [("", false), ("6", true)] {
        let Ok(text) = std::fs::read_to_string(format!("{dir}/{name}{suffix}")) else {
            continue;
        };
        read_any = true;
        for (addr, port) in sockets_in_state(&text, state) {
            let addr = match addr {
                IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
                a => a,
            };
            if loopback && !(addr.is_loopback() || addr.is_unspecified()) {
                continue;
            }
            bound.insert((port, false));
            if v6 {
                bound.insert((port, true));
            }
        }
    }
    read_any.then_some(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from a namespace with `python3 -m http.server 8000` (0.0.0.0),
    // a listener on 127.0.0.1:631, one established connection and one in
    // TIME_WAIT; the tcp6 table has [::]:22 listening.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31338 1 0000000000000000 100 0 0 10 0
   2: 0200000A:D3A4 0100000A:1F40 01 00000000:00000000 00:00000000 00000000     0        0 31339 1 0000000000000000 20 4 30 10 -1
   3: 0200000A:D3A6 0100000A:1F40 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_ports_are_the_0a_lines() {
        assert_eq!(listening_ports(TCP).collect::<Vec<_>>(), [8000, 631]);
        assert_eq!(listening_ports(TCP6).collect::<Vec<_>>(), [22]);
    }

    #[test]
    fn procfs_addresses() {
        let got: Vec<_> = sockets_in_state(TCP, "0A").collect();
        assert_eq!(
            got,
            [
                ("0.0.0.0".parse().unwrap(), 8000),
                ("127.0.0.1".parse().unwrap(), 631)
            ]
        );
        let v6: Vec<_> = sockets_in_state(TCP6, "0A").collect();
        assert_eq!(v6, [("::".parse().unwrap(), 22)]);
        assert_eq!(
            proc_addr("00000000000000000000000001000000"),
            Some("::1".parse().unwrap())
        );
        assert_eq!(proc_addr("0200000A"), Some("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn this_process_sees_its_own_udp_socket_on_loopback_only() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        let bound = bound_ports("/proc/self/net", Table::Udp, true).unwrap();
        assert!(bound.contains(&(port, false)), "{port} not in {bound:?}");
        let connected = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        connected.connect(s.local_addr().unwrap()).unwrap();
        let cport = connected.local_addr().unwrap().port();
        let bound = bound_ports("/proc/self/net", Table::Udp, true).unwrap();
        assert!(
            !bound.contains(&(cport, false)),
            "a connected socket is not a server"
        );
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let text = "junk\n 0: 00000000:ZZZZ 00000000:0000 0A\n 1: 00000000:0000 00000000:0000 0A\n 2: 00000000:0050\n";
        assert_eq!(listening_ports(text).count(), 0);
    }

    #[test]
    fn this_process_sees_its_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bound = namespace_listening(std::process::id()).unwrap();
        assert!(
            bound.contains(&(port, Family::V4)),
            "{port} not in {bound:?}"
        );
        assert!(!bound.contains(&(port, Family::V6)), "{port}: IPv4 only");
    }

    #[test]
    fn best_effort_skips_taken_ports() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let wanted = [
            (SocketAddr::from(([127, 0, 0, 1], port)), None, port),
            (SocketAddr::from(([127, 0, 0, 1], 0)), Some("lo".into()), 80),
        ];
        let (bound, cut) = bind_best_effort(&wanted, TcpForward::bind_device);
        assert_eq!((bound.len(), cut), (1, 0));
        assert_eq!(bound[0].guest_port, 80);
    }
}
