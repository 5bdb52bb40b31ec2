//! pasta's namespace agent and the protocol to talk to it.
//!
//! Why an agent: entering a user namespace (`unshare` or `setns` with
//! `CLONE_NEWUSER`) is refused to multi-threaded processes, and Node is
//! one. The agent is a small single-threaded process (`passt-nsagent`)
//! that creates or joins the user and network namespaces and then, on
//! request, opens descriptors *inside* them — the tap device, sockets —
//! and passes them back over a SOCK_SEQPACKET socket. A descriptor keeps
//! the namespace it was opened in, and our user owns the namespaces, so
//! the engine can use them from the host namespace with full rights.
//! The agent also runs the user's command in the namespace and reports
//! its exit status.
//!
//! Messages (one per seqpacket, little-endian): a request is an op byte
//! and its arguments; each request gets exactly one reply, `OK` (a u32
//! value, a UTF-8 text, and possibly descriptors) or `ERR` (errno and a
//! message). `EXITED` (the command's status) arrives unasked, once, after
//! `RUN`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::engine::forward::{bound_ports, Table};
use crate::netlink::Netlink;
use std::process::{Child, Command};

use crate::nsagent::CONTROL_FD;
use crate::sys::socket::family;
use crate::sys::tcp::TcpListener;
use crate::sys::udp::UdpSocket;
use crate::sys::{fdpass, process};

pub const REQ_TAP: u8 = 1;
pub const REQ_SOCKET: u8 = 2;
pub const REQ_RUN: u8 = 3;
pub const REP_OK: u8 = 0x10;
pub const REP_ERR: u8 = 0x11;
pub const EV_EXITED: u8 = 0x20;

/// Largest message either side sends.
pub const MAX_MSG: usize = 512;

/// A request as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Create tap interface `name` and return its descriptor.
    Tap(String),
    /// `socket(domain, type, protocol)` inside the namespace.
    Socket(i32, i32, i32),
    /// Start the command; the value is its pid.
    Run,
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Tap(name) => [&[REQ_TAP][..], name.as_bytes()].concat(),
            Request::Socket(d, t, p) => {
                let mut m = vec![REQ_SOCKET];
                for v in [d, t, p] {
                    m.extend_from_slice(&v.to_le_bytes());
                }
                m
            }
            Request::Run => vec![REQ_RUN],
        }
    }

    pub fn decode(msg: &[u8]) -> Option<Request> {
        let (&op, rest) = msg.split_first()?;
        match op {
            REQ_TAP => Some(Request::Tap(String::from_utf8(rest.to_vec()).ok()?)),
            REQ_SOCKET if rest.len() == 12 => {
                let n = |i: usize| i32::from_le_bytes(rest[i..i + 4].try_into().unwrap_or([0; 4]));
                Some(Request::Socket(n(0), n(4), n(8)))
            }
            REQ_RUN if rest.is_empty() => Some(Request::Run),
            _ => None,
        }
    }
}

/// What came back for a request.
#[derive(Debug)]
pub struct Answer {
    pub value: u32,
    pub text: String,
    pub fds: Vec<OwnedFd>,
}

pub fn encode_ok(value: u32, text: &str) -> Vec<u8> {
    [&[REP_OK][..], &value.to_le_bytes(), text.as_bytes()].concat()
}

pub fn encode_err(e: &io::Error, context: &str) -> Vec<u8> {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    let text = format!("{context}: {e}");
    [&[REP_ERR][..], &errno.to_le_bytes(), text.as_bytes()].concat()
}

pub fn encode_exited(status: i32) -> Vec<u8> {
    [&[EV_EXITED][..], &status.to_le_bytes()].concat()
}

/// Where the agent goes: new namespaces, or existing ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    New,
    Join {
        netns: String,
        userns: Option<String>,
    },
}

/// Starts the agent program at `program` for `target`, with `command` to
/// run once asked (`RUN`). The agent inherits our stdio, so the command
/// does too.
pub fn spawn_agent(program: &Path, target: &Target, command: &[String]) -> io::Result<Agent> {
    let (ours, theirs) = fdpass::seqpacket_pair()?;
    let mut cmd = Command::new(program);
    if let Target::Join { netns, userns } = target {
        if let Some(u) = userns {
            cmd.arg("--userns").arg(u);
        }
        cmd.arg("--netns").arg(netns);
    }
    cmd.arg("--").args(command);
    let child = process::spawn_with_fd(&mut cmd, &theirs, CONTROL_FD)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", program.display())))?;
    Ok(Agent {
        sock: Some(ours),
        child: Some(child),
        exited: None,
    })
}

/// `--config-net`: what the namespace's interface gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetConfig {
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// Address, prefix length, default gateway.
    pub v4: Option<(Ipv4Addr, u8, Option<Ipv4Addr>)>,
    pub v6: Option<(Ipv6Addr, u8, Option<Ipv6Addr>)>,
}

/// Everything pasta needs to bring a namespace up.
#[derive(Debug, Clone)]
pub struct PastaSpec {
    /// The `passt-nsagent` executable.
    pub agent: PathBuf,
    pub target: Target,
    pub command: Vec<String>,
    /// Tap name in the namespace (`-I`).
    pub ifname: String,
    pub config_net: Option<NetConfig>,
    /// `-T`: addresses to listen on in the namespace, each with the host
    /// port its connections go to (on the host's loopback).
    pub ns_tcp_binds: Vec<(SocketAddr, u16)>,
    /// `-U`: the same for UDP.
    pub ns_udp_binds: Vec<(SocketAddr, u16)>,
    /// pasta's automatic forwards, as they stand when pasta starts.
    pub auto: AutoForwards,
}

/// `-u auto`, `-T auto`, `-U auto` at start (man pasta: UDP ports are
/// taken "when pasta starts"; `-T auto` is followed further by the
/// engine). The host ports the engine itself listens on (`-t`, `-u`) are
/// never mirrored back into the namespace: that would loop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoForwards {
    /// `-u auto`: report the UDP ports bound in the namespace.
    pub udp: bool,
    /// `-T auto`, `-U auto`: the host's TCP listeners and bound UDP ports
    /// (on its loopback or any address) get a socket on the namespace's
    /// loopback, spliced to them.
    pub ns_tcp: bool,
    pub ns_udp: bool,
    pub host_tcp_skip: std::collections::BTreeSet<u16>,
    pub host_udp_skip: std::collections::BTreeSet<u16>,
}

/// A namespace ready for the engine: its tap, and the agent, whose
/// command is already started.
pub struct Pasta {
    pub tap: OwnedFd,
    pub ifname: String,
    pub agent: Agent,
    /// `-T` listeners (in the namespace) and where their connections go.
    pub ns_listeners: Vec<(TcpListener, SocketAddr)>,
    /// `-U` sockets (in the namespace) and where their datagrams go.
    pub ns_udp_sockets: Vec<(UdpSocket, SocketAddr)>,
    /// `-u auto`: UDP ports bound in the namespace at start, (port, IPv6),
    /// other than the `-U` sockets above.
    pub ns_udp_bound: Vec<(u16, bool)>,
    /// Where `-T auto`'s listeners start in `ns_listeners`.
    pub ns_auto_from: usize,
}

/// Starts the agent, opens the tap, configures the interface (with
/// `config_net`), then starts the command, so that the command finds its
/// network ready.
pub fn setup_pasta(spec: &PastaSpec) -> io::Result<Pasta> {
    let mut agent = spawn_agent(&spec.agent, &spec.target, &spec.command)?;
    let mut tap = agent.request(&Request::Tap(spec.ifname.clone()))?;
    let fd = tap
        .fds
        .pop()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "agent sent no tap"))?;
    if let Some(net) = &spec.config_net {
        let mut sock = agent.request(&Request::Socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW,
            libc::NETLINK_ROUTE,
        ))?;
        let sock = sock
            .fds
            .pop()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "agent sent no socket"))?;
        configure(&mut Netlink::from_socket(sock)?, &tap.text, net)
            .map_err(|e| io::Error::new(e.kind(), format!("--config-net: {e}")))?;
    }
    let mut ns_listeners = Vec::new();
    for &(addr, host_port) in &spec.ns_tcp_binds {
        ns_listeners.push(ns_listener(&mut agent, addr, host_port)?);
    }
    let mut ns_udp_sockets = Vec::new();
    for &(addr, host_port) in &spec.ns_udp_binds {
        ns_udp_sockets.push(ns_udp_socket(&mut agent, addr, host_port)?);
    }
    let a = &spec.auto;
    let ns_auto_from = ns_listeners.len();
    // Best effort: a port the namespace has taken already stays its own.
    if a.ns_tcp {
        for (port, v6) in host_bound(Table::Tcp, &a.host_tcp_skip) {
            let at = SocketAddr::new(crate::flow::loopback(v6), port);
            if let Ok(l) = ns_listener(&mut agent, at, port) {
                ns_listeners.push(l);
            }
        }
    }
    if a.ns_udp {
        for (port, v6) in host_bound(Table::Udp, &a.host_udp_skip) {
            let at = SocketAddr::new(crate::flow::loopback(v6), port);
            if let Ok(s) = ns_udp_socket(&mut agent, at, port) {
                ns_udp_sockets.push(s);
            }
        }
    }
    let mut ns_udp_bound = Vec::new();
    if a.udp {
        let ours: std::collections::BTreeSet<u16> = ns_udp_sockets
            .iter()
            .filter_map(|(s, _)| s.local_addr().ok().map(|a| a.port()))
            .collect();
        let dir = agent.pid().map(|pid| format!("/proc/{pid}/net"));
        if let Some(bound) = dir.and_then(|d| bound_ports(&d, Table::Udp, false)) {
            ns_udp_bound = bound
                .into_iter()
                .filter(|(p, _)| !ours.contains(p))
                .collect();
        }
    }
    // A new namespace always runs something (the shell by default); an
    // existing one only runs a command if given one.
    if spec.target == Target::New || !spec.command.is_empty() {
        agent.request(&Request::Run)?;
    }
    Ok(Pasta {
        tap: fd,
        ifname: tap.text,
        agent,
        ns_listeners,
        ns_udp_sockets,
        ns_udp_bound,
        ns_auto_from,
    })
}

/// The host's ports of `table` reachable on its loopback, but for `skip`.
fn host_bound(table: Table, skip: &std::collections::BTreeSet<u16>) -> Vec<(u16, bool)> {
    bound_ports("/proc/self/net", table, true)
        .unwrap_or_default()
        .into_iter()
        .filter(|(p, _)| !skip.contains(p))
        .collect()
}

/// The host's loopback of `addr`'s family, port `port`.
fn host_loopback(addr: SocketAddr, port: u16) -> SocketAddr {
    SocketAddr::new(crate::flow::loopback(addr.is_ipv6()), port)
}

/// A `-U` socket: made by the agent in the namespace and bound there
/// before the command starts; its datagrams go to the host's loopback.
pub(crate) fn ns_udp_socket(
    agent: &mut Agent,
    addr: SocketAddr,
    host_port: u16,
) -> io::Result<(UdpSocket, SocketAddr)> {
    let context = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("-U: cannot bind {addr} in the namespace: {e}"),
        )
    };
    let fd = agent
        .socket(family(addr.is_ipv6()), libc::SOCK_DGRAM)
        .map_err(context)?;
    let sock = UdpSocket::from_fd(fd, addr.is_ipv6()).map_err(context)?;
    sock.bind(addr).map_err(context)?;
    Ok((sock, host_loopback(addr, host_port)))
}

/// A `-T` listener: a socket the agent makes in the namespace, bound and
/// listening there before the command starts; its connections go to the
/// host's loopback of the same family.
pub(crate) fn ns_listener(
    agent: &mut Agent,
    addr: SocketAddr,
    host_port: u16,
) -> io::Result<(TcpListener, SocketAddr)> {
    let context = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("-T: cannot listen on {addr} in the namespace: {e}"),
        )
    };
    let sock = agent
        .socket(family(addr.is_ipv6()), libc::SOCK_STREAM)
        .map_err(context)?;
    let listener = TcpListener::listen_on(sock, addr).map_err(context)?;
    Ok((listener, host_loopback(addr, host_port)))
}

fn configure(nl: &mut Netlink, ifname: &str, net: &NetConfig) -> io::Result<()> {
    let index = nl.link_index(ifname)?;
    nl.set_link(index, net.mtu, net.mac)?;
    if let Some((addr, len, gw)) = net.v4 {
        nl.add_address(index, IpAddr::V4(addr), len)?;
        if let Some(gw) = gw {
            nl.add_route(
                index,
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                0,
                Some(IpAddr::V4(gw)),
            )?;
        }
    }
    if let Some((addr, len, gw)) = net.v6 {
        nl.add_address(index, IpAddr::V6(addr), len)?;
        if let Some(gw) = gw {
            nl.add_route(
                index,
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                0,
                Some(IpAddr::V6(gw)),
            )?;
        }
    }
    Ok(())
}

/// The engine's end of the agent: its control socket and its process,
/// which is reaped when the `Agent` is finished or dropped (closing the
/// socket tells the agent to exit).
pub struct Agent {
    sock: Option<OwnedFd>,
    child: Option<Child>,
    /// The command's status, if `EXITED` arrived while awaiting a reply.
    exited: Option<i32>,
}

impl Agent {
    /// An agent already connected through `sock` (tests, or a process
    /// started elsewhere).
    pub fn from_socket(sock: OwnedFd) -> Self {
        Agent {
            sock: Some(sock),
            child: None,
            exited: None,
        }
    }

    fn sock(&self) -> io::Result<&OwnedFd> {
        self.sock
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "agent finished"))
    }

    /// The agent's process id: it lives in the namespace, so its
    /// `/proc/PID/net` shows the namespace's sockets.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The control socket, for epoll (readable when the agent reports);
    /// `None` once finished.
    pub fn socket_fd(&self) -> Option<&OwnedFd> {
        self.sock.as_ref()
    }

    /// Closes the control socket and waits for the agent process.
    pub fn finish(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        self.sock = None;
        match self.child.take() {
            Some(mut c) => c.wait().map(Some),
            None => Ok(None),
        }
    }

    /// The command's status, if a reply to a request came after it (then
    /// no readiness will announce it).
    pub fn exited(&self) -> Option<i32> {
        self.exited
    }

    /// A non-blocking socket of `domain` and type `ty` (`SOCK_STREAM`,
    /// `SOCK_DGRAM`) made in the namespace.
    pub fn socket(&mut self, domain: i32, ty: i32) -> io::Result<OwnedFd> {
        self.request(&Request::Socket(domain, ty | libc::SOCK_NONBLOCK, 0))?
            .fds
            .pop()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "agent sent no socket"))
    }

    /// Sends `req` and waits for its reply (blocking: the agent answers
    /// at once; setup time, and the engine's pool of namespace sockets).
    pub fn request(&mut self, req: &Request) -> io::Result<Answer> {
        fdpass::send(self.sock()?.as_fd(), &req.encode(), &[])?;
        loop {
            let mut buf = [0u8; MAX_MSG];
            let (n, fds) = fdpass::recv(self.sock()?.as_fd(), &mut buf)?;
            match parse_message(&buf[..n])? {
                Message::Exited(status) => self.exited = Some(status),
                Message::Ok(value, text) => return Ok(Answer { value, text, fds }),
                Message::Err(errno, text) => {
                    let os = io::Error::from_raw_os_error(errno);
                    return Err(io::Error::new(os.kind(), text));
                }
            }
        }
    }

    /// The command's exit status if the agent has reported it; reads at
    /// most one pending message (call when the socket is readable).
    pub fn poll_exit(&mut self) -> io::Result<Option<i32>> {
        if self.exited.is_none() {
            let mut buf = [0u8; MAX_MSG];
            let (n, _) = fdpass::recv(self.sock()?.as_fd(), &mut buf)?;
            if let Message::Exited(status) = parse_message(&buf[..n])? {
                self.exited = Some(status);
            }
        }
        Ok(self.exited)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

enum Message {
    Ok(u32, String),
    Err(i32, String),
    Exited(i32),
}

fn parse_message(msg: &[u8]) -> io::Result<Message> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed message from namespace agent",
        )
    };
    let (&op, rest) = match msg.split_first() {
        Some(x) => x,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "namespace agent exited",
            ))
        }
    };
    let word = rest
        .get(..4)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    let text = String::from_utf8_lossy(&rest[4..]).into_owned();
    match op {
        REP_OK => Ok(Message::Ok(u32::from_le_bytes(word), text)),
        REP_ERR => Ok(Message::Err(i32::from_le_bytes(word), text)),
        EV_EXITED => Ok(Message::Exited(i32::from_le_bytes(word))),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Tap("eth0".into()),
            Request::Socket(libc::AF_INET6, libc::SOCK_STREAM, 0),
            Request::Run,
        ] {
            assert_eq!(Request::decode(&r.encode()), Some(r));
        }
        assert_eq!(Request::decode(&[]), None);
        assert_eq!(Request::decode(&[REQ_SOCKET, 1, 2]), None);
        assert_eq!(Request::decode(&[REQ_RUN, 0]), None);
        assert_eq!(Request::decode(&[0x7f]), None);
    }

    #[test]
    fn replies_carry_descriptors() {
        let (a, b) = fdpass::seqpacket_pair().unwrap();
        let (p, _q) = fdpass::seqpacket_pair().unwrap();
        fdpass::send(b.as_fd(), &encode_exited(3), &[]).unwrap();
        fdpass::send(b.as_fd(), &encode_ok(7, "tap0"), &[p.as_fd()]).unwrap();
        let mut agent = Agent::from_socket(a);
        // The request goes unanswered by a real agent here; the replies
        // are already queued, which is what the client reads.
        let ans = agent.request(&Request::Run).unwrap();
        assert_eq!(
            (ans.value, ans.text.as_str(), ans.fds.len()),
            (7, "tap0", 1)
        );
        assert_eq!(agent.poll_exit().unwrap(), Some(3));
        let e = io::Error::from_raw_os_error(libc::EPERM);
        fdpass::send(b.as_fd(), &encode_err(&e, "tap"), &[]).unwrap();
        let err = agent.request(&Request::Run).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().starts_with("tap: "));
    }
}
