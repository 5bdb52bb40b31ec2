//! ICMP and ICMPv6 echo through ping sockets (see `sys::ping`).
//!
//! One flow per (destination, echo identifier) the guest uses: a policy
//! decides on each destination, even one pinged with an identifier
//! already in use (fping does that). The socket is bound to that
//! identifier so the host's requests carry it unchanged; if the bind
//! fails (identifier taken by another process, restrictive policies), or
//! the identifier's flow to another destination has it, the kernel picks
//! one, and replies are mapped back to the guest's identifier. Requests to the gateway address go to the host's
//! loopback unless mapping is off (`man passt`, NOTES), and the replies
//! come back from the gateway. A flow idle for `TIMEOUT` is closed.
//!
//! Records: the identifier stands as both "ports"; a flow's bytes are the
//! echo data (the message less its 8-byte header) each way.
//!
//! Invariants: a flow's (index, generation) is its epoll token, and a
//! stale one reaches no successor (see `slab`); `by_key` and `slots`
//! agree; no allocation per packet beyond the first packet of a flow.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::record::{Direction, End, FlowInfo, Meta, Proto, Recorder};
use crate::slab::Slab;
use crate::sys::ping::PingSocket;

/// Idle time after which an echo flow is closed (passt: 60 s).
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// Most concurrent echo flows; more are refused (counted by the caller).
pub const MAX_FLOWS: usize = 1024;

/// How a guest's outbound flows become host sockets: the gateway address
/// goes to the host's loopback, the DNS address the guest was given to
/// the host's resolver, and sockets to anything but loopback are bound
/// to the `-o` address of their family, if given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewayMap {
    pub v4: Option<std::net::Ipv4Addr>,
    pub v6: Option<std::net::Ipv6Addr>,
    /// `--dns-forward`: (what the guest queries, where the host's
    /// resolver really is), port 53 only, UDP and TCP.
    pub dns4: Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)>,
    pub dns6: Option<(std::net::Ipv6Addr, std::net::Ipv6Addr)>,
    /// `-o`, `--outbound`: the source address of outbound sockets.
    pub out4: Option<std::net::Ipv4Addr>,
    pub out6: Option<std::net::Ipv6Addr>,
    /// `--map-guest-addr`: (the address the guest reaches the host's copy
    /// of its own address through, the guest's own address). The guest
    /// cannot use its own address for that, and the host's clients from
    /// it appear from the first.
    pub guest4: Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)>,
    pub guest6: Option<(std::net::Ipv6Addr, std::net::Ipv6Addr)>,
}

/// The DNS port, the only one `--dns-forward` maps.
pub const DNS_PORT: u16 = 53;

impl GatewayMap {
    /// Where a guest's flow to `dst` really goes: DNS queries to the
    /// forwarded address reach the host's resolver; otherwise as
    /// `outbound`.
    pub fn outbound_sock(&self, dst: std::net::SocketAddr) -> std::net::SocketAddr {
        if dst.port() == DNS_PORT {
            match dst.ip() {
                IpAddr::V4(a) => {
                    if let Some((_, host)) = self.dns4.filter(|(m, _)| *m == a) {
                        return std::net::SocketAddr::new(host.into(), DNS_PORT);
                    }
                }
                IpAddr::V6(a) => {
                    if let Some((_, host)) = self.dns6.filter(|(m, _)| *m == a) {
                        return std::net::SocketAddr::new(host.into(), DNS_PORT);
                    }
                }
            }
        }
        std::net::SocketAddr::new(self.outbound(dst.ip()), dst.port())
    }

    /// Where a guest packet to `dst` really goes.
    pub fn outbound(&self, dst: IpAddr) -> IpAddr {
        match dst {
            IpAddr::V4(a) if Some(a) == self.v4 => super::loopback(false),
            IpAddr::V6(a) if Some(a) == self.v6 => super::loopback(true),
            IpAddr::V4(a) => match self.guest4 {
                Some((alias, own)) if alias == a => own.into(),
                _ => dst,
            },
            IpAddr::V6(a) => match self.guest6 {
                Some((alias, own)) if alias == a => own.into(),
                _ => dst,
            },
        }
    }

    /// The address the host's copy of the guest's own address `own`
    /// appears as (`--map-guest-addr`), if mapped.
    pub fn guest_alias(&self, own: IpAddr) -> Option<IpAddr> {
        match own {
            IpAddr::V4(a) => self.guest4.filter(|g| g.1 == a).map(|g| g.0.into()),
            IpAddr::V6(a) => self.guest6.filter(|g| g.1 == a).map(|g| g.0.into()),
        }
    }

    /// The address an outbound socket to `target` is bound to: the `-o`
    /// address of its family, except towards loopback (the mapped
    /// gateway), where the host's services see a loopback client as
    /// they would without us.
    pub fn source(&self, target: IpAddr) -> Option<IpAddr> {
        match target {
            t if t.is_loopback() => None,
            IpAddr::V4(_) => self.out4.map(IpAddr::V4),
            IpAddr::V6(_) => self.out6.map(IpAddr::V6),
        }
    }

    /// Which address the guest should see a reply from, for a flow whose
    /// guest-side destination was `guest_dst`.
    pub fn inbound(&self, src: IpAddr, guest_dst: IpAddr) -> IpAddr {
        let target = self.outbound(guest_dst);
        if (src.is_loopback() && target.is_loopback()) || (src == target && target != guest_dst) {
            guest_dst
        } else {
            src
        }
    }
}

struct Flow {
    sock: PingSocket,
    guest_id: u16,
    guest_addr: IpAddr,
    /// Destination as the guest addressed it.
    guest_dst: IpAddr,
    last: Instant,
    meta: Meta,
    /// A policy's rewrite: requests go to this host address instead, and
    /// its replies seem to come from `guest_dst`.
    redirect: Option<IpAddr>,
}

/// Where a new flow's requests go, if not where the guest sends them (a
/// policy's rewrite): the host address, and the address to send from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Via {
    pub target: Option<IpAddr>,
    pub bind: Option<IpAddr>,
}

/// Echo data in an ICMP echo message.
fn data_len(message: &[u8]) -> usize {
    message.len().saturating_sub(8)
}

/// An echo reply for the guest: the ICMP message with the guest's
/// identifier restored (checksum to be recomputed by the framer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub message: Vec<u8>,
}

#[derive(Debug)]
pub enum RequestError {
    TooManyFlows,
    Socket(io::Error),
}

pub struct IcmpFlows {
    slots: Slab<Flow>,
    /// (the guest's destination, its identifier).
    by_key: HashMap<(IpAddr, u16), usize>,
    pub map: GatewayMap,
    pub rec: Recorder,
}

impl IcmpFlows {
    pub fn new(map: GatewayMap) -> Self {
        IcmpFlows {
            slots: Slab::new(),
            by_key: HashMap::new(),
            map,
            rec: Recorder::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether echo identifier `id` to `dst` has a flow.
    pub fn has(&self, dst: IpAddr, id: u16) -> bool {
        self.by_key.contains_key(&(dst, id))
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Sends a guest's echo request (`message` = ICMP header + data).
    /// Returns `Some(index)` when a new flow was made, whose socket the
    /// caller must register for reading with that index.
    pub fn request(
        &mut self,
        guest_addr: IpAddr,
        dst: IpAddr,
        message: &[u8],
        now: Instant,
    ) -> Result<Option<(usize, u8)>, RequestError> {
        self.request_via(guest_addr, dst, message, now, Via::default())
    }

    /// As `request`; a new flow goes `via` (an existing one keeps its way).
    pub fn request_via(
        &mut self,
        guest_addr: IpAddr,
        dst: IpAddr,
        message: &[u8],
        now: Instant,
        via: Via,
    ) -> Result<Option<(usize, u8)>, RequestError> {
        let v6 = dst.is_ipv6();
        let id = message
            .get(4..6)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        let mut created = None;
        let index = match self.by_key.get(&(dst, id)) {
            Some(&i) => i,
            None => {
                if self.by_key.len() >= MAX_FLOWS {
                    return Err(RequestError::TooManyFlows);
                }
                let target = via.target.unwrap_or(self.map.outbound(dst));
                let at = via
                    .bind
                    .or_else(|| self.map.source(target))
                    .unwrap_or(super::unspecified(v6));
                // The kernel lets two ping sockets bind one identifier and
                // gives the replies to one of them: the identifier's flow
                // to another destination leaves this one a fresh one.
                let ours = self
                    .by_key
                    .keys()
                    .any(|&(d, i)| i == id && d.is_ipv6() == v6);
                let sock = if ours {
                    PingSocket::open_at(at, 0)
                } else {
                    PingSocket::open_at(at, id).or_else(|_| PingSocket::open_at(at, 0))
                }
                .map_err(RequestError::Socket)?;
                let info = FlowInfo {
                    proto: Proto::Icmp,
                    direction: Direction::Outbound,
                    src: std::net::SocketAddr::new(guest_addr, id),
                    dst: std::net::SocketAddr::new(dst, id),
                };
                // The identifier the host uses, only for someone watching.
                let host_id = if self.rec.on_open || self.rec.on_end {
                    sock.id().unwrap_or(id)
                } else {
                    id
                };
                let mapped = (
                    std::net::SocketAddr::new(at, host_id),
                    std::net::SocketAddr::new(target, host_id),
                );
                let meta = Meta::new(info, mapped, now);
                self.rec.open(&meta);
                let flow = Flow {
                    sock,
                    guest_id: id,
                    guest_addr,
                    guest_dst: dst,
                    last: now,
                    meta,
                    redirect: via.target,
                };
                let (i, gen) = self.slots.insert(flow);
                self.by_key.insert((dst, id), i);
                created = Some((i, gen));
                i
            }
        };
        let Some(flow) = self.slots.get_mut(index) else {
            return Ok(created);
        };
        flow.last = now;
        flow.guest_addr = guest_addr;
        flow.meta.from_guest(data_len(message));
        // A send error (unreachable, no route) is the host's answer; the
        // guest's ping times out as it would.
        let to = flow.redirect.unwrap_or_else(|| self.map.outbound(dst));
        let _ = flow.sock.send(message, to);
        Ok(created)
    }

    /// The socket of flow (index, gen), for epoll registration.
    pub fn socket(&self, index: usize, gen: u8) -> Option<&PingSocket> {
        self.slots.checked(index, gen).map(|f| &f.sock)
    }

    /// Reads the replies waiting on flow (index, gen); none for a stale
    /// (index, gen).
    pub fn replies(
        &mut self,
        (index, gen): (usize, u8),
        now: Instant,
        out: &mut Vec<Reply>,
    ) -> io::Result<()> {
        let map = self.map;
        let Some(flow) = self.slots.checked_mut(index, gen) else {
            return Ok(());
        };
        let mut buf = [0u8; 65536];
        for _ in 0..64 {
            let Some((n, src)) = flow.sock.recv(&mut buf)? else {
                break;
            };
            if n < 8 {
                continue;
            }
            flow.last = now;
            flow.meta.to_guest(data_len(&buf[..n]));
            let mut message = buf[..n].to_vec();
            message[4..6].copy_from_slice(&flow.guest_id.to_be_bytes());
            let src = match flow.redirect {
                Some(to) if to == src => flow.guest_dst,
                _ => map.inbound(src, flow.guest_dst),
            };
            out.push(Reply {
                src,
                dst: flow.guest_addr,
                message,
            });
        }
        Ok(())
    }

    /// Closes every flow (the guest is gone, or the engine stops).
    pub fn clear(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.bound() {
            if let Some(f) = self.slots.remove(i) {
                self.rec.end(&f.meta, End::Stopped, now);
            }
        }
        self.by_key.clear();
    }

    /// Payload bytes carried, ended flows included: [from, to the guest].
    pub fn bytes(&self) -> [u64; 2] {
        self.rec.bytes(self.slots.values().map(|f| &f.meta))
    }

    /// Closes flows idle since before `now - TIMEOUT`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let old = self.slots.select(|f| now.duration_since(f.last) >= TIMEOUT);
        for &i in &old {
            if let Some(f) = self.slots.remove(i) {
                self.by_key.remove(&(f.guest_dst, f.guest_id));
                self.rec.end(&f.meta, End::Timeout, now);
            }
        }
        old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_forwarding_takes_port_53_only() {
        let map = GatewayMap {
            v4: Some("192.0.2.1".parse().unwrap()),
            dns4: Some(("192.0.2.1".parse().unwrap(), "127.0.0.53".parse().unwrap())),
            dns6: Some(("fd00::53".parse().unwrap(), "::1".parse().unwrap())),
            ..GatewayMap::default()
        };
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert_eq!(map.outbound_sock(sa("192.0.2.1:53")), sa("127.0.0.53:53"));
        assert_eq!(map.outbound_sock(sa("192.0.2.1:80")), sa("127.0.0.1:80"));
        assert_eq!(map.outbound_sock(sa("[fd00::53]:53")), sa("[::1]:53"));
        assert_eq!(map.outbound_sock(sa("[fd00::53]:54")), sa("[fd00::53]:54"));
        assert_eq!(map.outbound_sock(sa("192.0.2.9:53")), sa("192.0.2.9:53"));
    }

    #[test]
    fn outbound_sockets_bind_to_the_o_address_of_their_family_but_not_towards_loopback() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let map = GatewayMap {
            out4: Some("198.51.100.3".parse().unwrap()),
            out6: Some("2001:db8:1::3".parse().unwrap()),
            ..GatewayMap::default()
        };
        assert_eq!(map.source(ip("198.51.100.2")), Some(ip("198.51.100.3")));
        assert_eq!(map.source(ip("2001:db8:1::2")), Some(ip("2001:db8:1::3")));
        assert_eq!(map.source(ip("127.0.0.1")), None);
        assert_eq!(map.source(ip("::1")), None);
        let v4_only = GatewayMap {
            out4: map.out4,
            ..GatewayMap::default()
        };
        assert_eq!(v4_only.source(ip("2001:db8:1::2")), None);
        assert_eq!(GatewayMap::default().source(ip("198.51.100.2")), None);
    }

    #[test]
    fn gateway_mapping_both_ways() {
        let map = GatewayMap {
            v4: Some("192.0.2.1".parse().unwrap()),
            v6: Some("fd00::1".parse().unwrap()),
            ..GatewayMap::default()
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(map.outbound(ip("192.0.2.1")), ip("127.0.0.1"));
        assert_eq!(map.outbound(ip("fd00::1")), ip("::1"));
        assert_eq!(map.outbound(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            map.inbound(ip("127.0.0.1"), ip("192.0.2.1")),
            ip("192.0.2.1")
        );
        assert_eq!(
            map.inbound(ip("192.0.2.7"), ip("192.0.2.7")),
            ip("192.0.2.7")
        );
        let off = GatewayMap::default();
        assert_eq!(off.outbound(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn the_guest_reaches_the_hosts_copy_of_its_address_through_map_guest_addr() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let map = GatewayMap {
            v4: Some("192.0.2.1".parse().unwrap()),
            guest4: Some(("169.254.1.2".parse().unwrap(), "192.0.2.2".parse().unwrap())),
            guest6: Some(("fd00::a".parse().unwrap(), "fd00::2".parse().unwrap())),
            ..GatewayMap::default()
        };
        assert_eq!(map.outbound(ip("169.254.1.2")), ip("192.0.2.2"));
        assert_eq!(map.outbound(ip("fd00::a")), ip("fd00::2"));
        assert_eq!(map.outbound(ip("169.254.1.3")), ip("169.254.1.3"));
        assert_eq!(map.outbound(ip("192.0.2.1")), ip("127.0.0.1"));
        assert_eq!(
            map.inbound(ip("192.0.2.2"), ip("169.254.1.2")),
            ip("169.254.1.2")
        );
        assert_eq!(map.inbound(ip("fd00::2"), ip("fd00::a")), ip("fd00::a"));
        assert_eq!(
            map.inbound(ip("192.0.2.9"), ip("192.0.2.9")),
            ip("192.0.2.9")
        );
        assert_eq!(map.guest_alias(ip("192.0.2.2")), Some(ip("169.254.1.2")));
        assert_eq!(map.guest_alias(ip("192.0.2.3")), None);
        assert_eq!(GatewayMap::default().guest_alias(ip("192.0.2.2")), None);
    }

    #[test]
    #[ignore = "needs ping_group_range: run in fakehost.sh with --ignored"]
    fn echo_through_the_gateway_keeps_the_identifier() {
        let map = GatewayMap {
            v4: Some("192.0.2.1".parse().unwrap()),
            ..GatewayMap::default()
        };
        let mut flows = IcmpFlows::new(map);
        let now = Instant::now();
        let guest: IpAddr = "192.0.2.2".parse().unwrap();
        let gw: IpAddr = "192.0.2.1".parse().unwrap();
        let req = [8, 0, 0, 0, 0x12, 0x34, 0, 1, b'x'];
        let idx = flows
            .request(guest, gw, &req, now)
            .unwrap()
            .expect("a new flow");
        assert_eq!(
            flows.request(guest, gw, &req, now).unwrap(),
            None,
            "same flow"
        );
        let mut out = Vec::new();
        for _ in 0..200 {
            flows.replies(idx, now, &mut out).unwrap();
            if !out.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let r = out.first().expect("a reply from the host's loopback");
        assert_eq!((r.src, r.dst), (gw, guest));
        assert_eq!(&r.message[..1], &[0]);
        assert_eq!(&r.message[4..], &[0x12, 0x34, 0, 1, b'x']);
        assert_eq!(flows.expire(now + TIMEOUT), 1);
        assert!(flows.is_empty());
    }
}
