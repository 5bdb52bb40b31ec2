//! rtnetlink: reading the host's links, addresses and routes (what passt
//! copies to the guest by default), and configuring a namespace's
//! interface for `--config-net`.
//!
//! A `Netlink` works on the network namespace its socket was opened in:
//! `open()` is the host's; a socket the namespace agent opened is the
//! namespace's. Requests are synchronous (setup time only). Message
//! formats come from the `netlink-packet-route` crate; the socket is a
//! plain one from `sys`.
//!
//! `select` is the pure part of discovery, tested on fixtures: among the
//! routes of one family, the default route in the main table with the
//! lowest metric picks the interface (unless one is named), whose global
//! addresses and gateway are taken.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use netlink_packet_route::address::Nla as AddrNla;
use netlink_packet_route::link::nlas::Nla as LinkNla;
use netlink_packet_route::route::Nla as RouteNla;
use netlink_packet_route::{
    AddressMessage, LinkMessage, NetlinkHeader, NetlinkMessage, NetlinkPayload, RouteMessage,
    RtnlMessage, AF_INET, AF_INET6, IFF_UP, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST, RTN_UNICAST, RTPROT_BOOT, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN,
};

use crate::sys::socket::socket;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub mac: Option<[u8; 6]>,
    pub up: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// RT_SCOPE_*: 0 global, 253 link, 254 host.
    pub scope: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub v6: bool,
    pub ifindex: Option<u32>,
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub gateway: Option<IpAddr>,
    pub table: u32,
    pub metric: u32,
}

/// What discovery found for one IP version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFamily {
    pub ifindex: u32,
    pub ifname: String,
    pub mtu: u32,
    pub mac: Option<[u8; 6]>,
    /// Global addresses of the interface, in the order the kernel lists them.
    pub addrs: Vec<(IpAddr, u8)>,
    /// Link-local addresses (IPv6), for NDP and DHCPv6 sources.
    pub link_local: Vec<IpAddr>,
    pub gateway: Option<IpAddr>,
}

/// Picks the interface, addresses and gateway for one family (`v6`).
/// `ifname` forces the interface (`-i`, `--outbound-if4/6`); otherwise the
/// default route with the lowest metric decides.
pub fn select(
    links: &[Link],
    addrs: &[Address],
    routes: &[Route],
    v6: bool,
    ifname: Option<&str>,
) -> Option<HostFamily> {
    let family = |a: &IpAddr| a.is_ipv6() == v6;
    let default = routes
        .iter()
        .filter(|r| r.dst_len == 0 && r.table == RT_TABLE_MAIN as u32 && r.ifindex.is_some())
        .filter(|r| r.v6 == v6)
        .filter(|r| match ifname {
            Some(n) => links
                .iter()
                .any(|l| Some(l.index) == r.ifindex && l.name == n),
            None => true,
        })
        .min_by_key(|r| r.metric);
    let link = match (ifname, default) {
        (_, Some(r)) => links.iter().find(|l| Some(l.index) == r.ifindex)?,
        (Some(n), None) => links.iter().find(|l| l.name == n)?,
        (None, None) => return None,
    };
    let mine = addrs
        .iter()
        .filter(|a| a.ifindex == link.index && family(&a.addr));
    Some(HostFamily {
        ifindex: link.index,
        ifname: link.name.clone(),
        mtu: link.mtu,
        mac: link.mac,
        addrs: mine
            .clone()
            .filter(|a| a.scope == RT_SCOPE_UNIVERSE)
            .map(|a| (a.addr, a.prefix_len))
            .collect(),
        link_local: mine
            .filter(|a| a.scope == RT_SCOPE_LINK)
            .map(|a| a.addr)
            .collect(),
        gateway: default.and_then(|r| r.gateway),
    })
}

pub struct Netlink {
    sock: OwnedFd,
    seq: u32,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {what}"))
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(bytes).ok()?,
        ))),
        _ => None,
    }
}

fn ip_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn af(a: &IpAddr) -> u8 {
    if a.is_ipv6() {
        AF_INET6 as u8
    } else {
        AF_INET as u8
    }
}

impl Netlink {
    /// A route socket in our own network namespace.
    pub fn open() -> io::Result<Self> {
        Self::from_socket(socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW,
            libc::NETLINK_ROUTE,
        )?)
    }

    /// Wraps a NETLINK_ROUTE socket opened elsewhere (in a namespace).
    pub fn from_socket(sock: OwnedFd) -> io::Result<Self> {
        Ok(Netlink { sock, seq: 0 })
    }

    /// Sends one request and collects the messages that answer it, up to
    /// the end of a dump or the acknowledgement.
    fn request(&mut self, msg: RtnlMessage, flags: u16) -> io::Result<Vec<RtnlMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut packet = NetlinkMessage {
            header: NetlinkHeader::default(),
            payload: NetlinkPayload::from(msg),
        };
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        nix::sys::socket::send(
            self.sock.as_raw_fd(),
            &out,
            nix::sys::socket::MsgFlags::empty(),
        )?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut answers = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = nix::sys::socket::recv(
                self.sock.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            )?;
            let mut off = 0;
            while off < n {
                let msg: NetlinkMessage<RtnlMessage> =
                    NetlinkMessage::deserialize(&buf[off..n]).map_err(|e| bad(&e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(bad("zero-length message"));
                }
                off += len;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done => return Ok(answers),
                    NetlinkPayload::Error(e) if e.code != 0 => {
                        return Err(io::Error::from_raw_os_error(-e.code))
                    }
                    NetlinkPayload::Error(_) | NetlinkPayload::Ack(_) if !dump => {
                        return Ok(answers)
                    }
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    _ => {}
                }
            }
        }
    }

    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let msgs = self.request(RtnlMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RtnlMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .map(|l| {
                let mut link = Link {
                    index: l.header.index,
                    name: String::new(),
                    mtu: 0,
                    mac: None,
                    up: l.header.flags & IFF_UP != 0,
                };
                for nla in l.nlas {
                    match nla {
                        LinkNla::IfName(n) => link.name = n,
                        LinkNla::Mtu(m) => link.mtu = m,
                        LinkNla::Address(a) if a.len() == 6 => {
                            link.mac = <[u8; 6]>::try_from(&a[..]).ok()
                        }
                        _ => {}
                    }
                }
                link
            })
            .collect())
    }

    pub fn addresses(&mut self) -> io::Result<Vec<Address>> {
        let msgs = self.request(
            RtnlMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RtnlMessage::NewAddress(a) => Some(a),
                _ => None,
            })
            .filter_map(|a| {
                // IFA_LOCAL is the address itself on point-to-point links,
                // where IFA_ADDRESS is the peer; prefer it when present.
                let mut local = None;
                let mut address = None;
                for nla in &a.nlas {
                    match nla {
                        AddrNla::Local(b) => local = ip_from(b),
                        AddrNla::Address(b) => address = ip_from(b),
                        _ => {}
                    }
                }
                Some(Address {
                    ifindex: a.header.index,
                    addr: local.or(address)?,
                    prefix_len: a.header.prefix_len,
                    scope: a.header.scope,
                })
            })
            .collect())
    }

    pub fn routes(&mut self) -> io::Result<Vec<Route>> {
        let mut all = Vec::new();
        for family in [AF_INET, AF_INET6] {
            let mut req = RouteMessage::default();
            req.header.address_family = family as u8;
            for m in self.request(RtnlMessage::GetRoute(req), NLM_F_DUMP)? {
                let RtnlMessage::NewRoute(r) = m else {
                    continue;
                };
                let mut route = Route {
                    v6: family == AF_INET6,
                    ifindex: None,
                    dst: None,
                    dst_len: r.header.destination_prefix_length,
                    gateway: None,
                    table: r.header.table as u32,
                    metric: 0,
                };
                for nla in r.nlas {
                    match nla {
                        RouteNla::Oif(i) => route.ifindex = Some(i),
                        RouteNla::Destination(b) => route.dst = ip_from(&b),
                        RouteNla::Gateway(b) => route.gateway = ip_from(&b),
                        RouteNla::Priority(p) => route.metric = p,
                        RouteNla::Table(t) => route.table = t,
                        _ => {}
                    }
                }
                all.push(route);
            }
        }
        Ok(all)
    }

    /// Discovery for both families (see `select`).
    pub fn discover(
        &mut self,
        ifname4: Option<&str>,
        ifname6: Option<&str>,
    ) -> io::Result<(Option<HostFamily>, Option<HostFamily>)> {
        let (links, addrs, routes) = (self.links()?, self.addresses()?, self.routes()?);
        Ok((
            select(&links, &addrs, &routes, false, ifname4),
            select(&links, &addrs, &routes, true, ifname6),
        ))
    }

    pub fn link_index(&mut self, name: &str) -> io::Result<u32> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))
    }

    /// Brings a link up, optionally setting its MTU and MAC address.
    pub fn set_link(
        &mut self,
        index: u32,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
    ) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = IFF_UP;
        msg.header.change_mask = IFF_UP;
        msg.nlas.extend(mtu.map(LinkNla::Mtu));
        msg.nlas.extend(mac.map(|m| LinkNla::Address(m.to_vec())));
        self.request(RtnlMessage::SetLink(msg), NLM_F_ACK).map(drop)
    }

    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = af(&addr);
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        msg.header.scope = RT_SCOPE_UNIVERSE;
        msg.nlas.push(AddrNla::Local(ip_bytes(&addr)));
        msg.nlas.push(AddrNla::Address(ip_bytes(&addr)));
        if addr.is_ipv6() {
            // IFA_F_NODAD: the guest's address is known unique (it is the
            // host's), and DAD would hold it unusable for a second.
            msg.header.flags = 0x02;
        }
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        self.request(RtnlMessage::NewAddress(msg), flags).map(drop)
    }

    /// Adds a route via `gateway` (or on-link with `None`).
    pub fn add_route(
        &mut self,
        index: u32,
        dst: IpAddr,
        dst_len: u8,
        gateway: Option<IpAddr>,
    ) -> io::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = af(&dst);
        msg.header.destination_prefix_length = dst_len;
        msg.header.table = RT_TABLE_MAIN;
        msg.header.protocol = RTPROT_BOOT;
        msg.header.scope = if gateway.is_some() {
            RT_SCOPE_UNIVERSE
        } else {
            RT_SCOPE_LINK
        };
        msg.header.kind = RTN_UNICAST;
        if dst_len > 0 {
            msg.nlas.push(RouteNla::Destination(ip_bytes(&dst)));
        }
        msg.nlas
            .extend(gateway.map(|g| RouteNla::Gateway(ip_bytes(&g))));
        msg.nlas.push(RouteNla::Oif(index));
        let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        self.request(RtnlMessage::NewRoute(msg), flags).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            mtu: 1500,
            mac: Some([2, 0, 0, 0, 0, index as u8]),
            up: true,
        }
    }

    fn addr(ifindex: u32, a: &str, len: u8, scope: u8) -> Address {
        Address {
            ifindex,
            addr: a.parse().unwrap(),
            prefix_len: len,
            scope,
        }
    }

    fn default_via(ifindex: u32, gw: &str, metric: u32) -> Route {
        Route {
            v6: gw.contains(':'),
            ifindex: Some(ifindex),
            dst: None,
            dst_len: 0,
            gateway: Some(gw.parse().unwrap()),
            table: RT_TABLE_MAIN as u32,
            metric,
        }
    }

    #[test]
    fn picks_the_default_route_with_the_lowest_metric() {
        let links = [link(1, "lo"), link(2, "eth0"), link(3, "wlan0")];
        let addrs = [
            addr(1, "127.0.0.1", 8, 254),
            addr(2, "192.0.2.2", 24, 0),
            addr(3, "198.51.100.7", 24, 0),
            addr(2, "fd00::2", 64, 0),
            addr(2, "fe80::1", 64, 253),
        ];
        let routes = [
            default_via(3, "198.51.100.1", 600),
            default_via(2, "192.0.2.1", 100),
            default_via(2, "fd00::1", 1024),
        ];
        let v4 = select(&links, &addrs, &routes, false, None).unwrap();
        assert_eq!(v4.ifname, "eth0");
        assert_eq!(v4.addrs, vec![("192.0.2.2".parse().unwrap(), 24)]);
        assert_eq!(v4.gateway, Some("192.0.2.1".parse().unwrap()));
        let v6 = select(&links, &addrs, &routes, true, None).unwrap();
        assert_eq!(v6.addrs, vec![("fd00::2".parse().unwrap(), 64)]);
        assert_eq!(v6.link_local, vec!["fe80::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(v6.gateway, Some("fd00::1".parse().unwrap()));

        let forced = select(&links, &addrs, &routes, false, Some("wlan0")).unwrap();
        assert_eq!(forced.addrs, vec![("198.51.100.7".parse().unwrap(), 24)]);
        assert_eq!(forced.gateway, Some("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn no_default_route_means_no_family_unless_named() {
        let links = [link(2, "eth0")];
        let addrs = [addr(2, "192.0.2.2", 24, 0)];
        assert_eq!(select(&links, &addrs, &[], false, None), None);
        let named = select(&links, &addrs, &[], false, Some("eth0")).unwrap();
        assert_eq!(named.gateway, None);
        assert_eq!(select(&links, &addrs, &[], false, Some("nope")), None);
    }
}
