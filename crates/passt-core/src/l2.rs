//! The guest side of the engine: parses each frame from the guest and
//! sends it where it belongs — ARP, DHCP, NDP and DHCPv6 to the services,
//! which answer at once; echo requests to the ICMP flows; TCP and UDP to
//! their flows (later issues). Also frames what flows send back.
//!
//! Every frame is either used or dropped with a `DropReason` the engine
//! counts. Replies go into the round's `TxQueue`; nothing is allocated
//! per frame except by the services' replies (rare, setup-time traffic).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use crate::backend::txqueue::TxQueue;
use crate::config::GuestConfig;
use crate::flow::icmp::{self as icmp_flow, IcmpFlows, RequestError};
use crate::flow::policy::{Gate, Parked};
use crate::flow::record::{Direction, FlowInfo, Proto};
use crate::flow::tcp::{self as tcp_flow, TcpFlows};
use crate::flow::udp::{self as udp_flow, Route, UdpError, UdpFlows, UdpForward};
use crate::services::{arp as arp_svc, dhcp, dhcpv6 as dhcpv6_svc, ndp};
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::frame::{parse_frame_with, Payload, L4};
use crate::wire::{arp, dhcpv4, dhcpv6, icmp, ipv4, ipv6, ndisc, tcp, udp, DropReason};

/// The flow tables frames from the guest may open flows in.
pub struct Flows {
    pub icmp: IcmpFlows,
    pub tcp: TcpFlows,
    pub udp: UdpFlows,
    /// `-u` listeners: the guest's replies to their clients leave by them.
    /// (A removed forward leaves its slot empty: flows name listeners by
    /// position.)
    pub udp_forwards: Vec<Option<UdpForward>>,
    /// Policy hooks: new flows wait here for their decision.
    pub gate: Option<Gate>,
}

/// The gate, when an outbound hook exists (checked first: without one,
/// a new flow costs no extra lookup).
fn outbound_gate(gate: &mut Option<Gate>) -> Option<&mut Gate> {
    gate.as_mut().filter(|g| g.hooks.outbound)
}

/// Outbound flow `(src, dst)` of `proto`, as a hook sees it.
fn outbound(proto: Proto, (src, dst): (std::net::SocketAddr, std::net::SocketAddr)) -> FlowInfo {
    FlowInfo {
        proto,
        direction: Direction::Outbound,
        src,
        dst,
    }
}

/// A socket the engine must (re)register after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewSocket {
    /// A new echo flow's socket: (index, generation).
    Icmp(usize, u8),
    Tcp(tcp_flow::Registration),
    /// A new UDP flow's socket: (index, generation).
    Udp(usize, u8),
}

pub struct L2 {
    cfg: GuestConfig,
    /// The guest's MAC, learned from its frames.
    guest_mac: Option<MacAddr>,
    /// The addresses the guest last sent from, which may not be the ones
    /// we assigned (a SLAAC address, a static one): inbound connections
    /// go where the guest is, not where we told it to be.
    seen4: Option<std::net::Ipv4Addr>,
    seen6: Option<std::net::Ipv6Addr>,
    /// IPv4 identification for the packets we originate.
    ip_id: u16,
}

impl L2 {
    pub fn new(cfg: GuestConfig) -> Self {
        L2 {
            cfg,
            guest_mac: None,
            seen4: None,
            seen6: None,
            ip_id: 0,
        }
    }

    pub fn config(&self) -> &GuestConfig {
        &self.cfg
    }

    /// Where to reach the guest over IPv4 or IPv6: the address it last
    /// sent from, else the one assigned; `None` without that family.
    pub fn guest_addr(&self, v6: bool) -> Option<IpAddr> {
        if v6 {
            let assigned = self.cfg.v6.as_ref()?.addr;
            Some(IpAddr::V6(self.seen6.unwrap_or(assigned)))
        } else {
            let assigned = self.cfg.v4.as_ref()?.addr;
            Some(IpAddr::V4(self.seen4.unwrap_or(assigned)))
        }
    }

    /// Remembers a guest source address that can be connected to: not
    /// the unspecified address of a DHCP client, not a link-local one.
    fn note_source(&mut self, src: IpAddr) {
        match src {
            IpAddr::V4(a) if !a.is_unspecified() && !a.is_link_local() && !a.is_multicast() => {
                self.seen4 = Some(a);
            }
            IpAddr::V6(a)
                if !a.is_unspecified() && !a.is_multicast() && !a.is_unicast_link_local() =>
            {
                self.seen6 = Some(a);
            }
            _ => {}
        }
    }

    /// Handles one frame from the guest. `trusted`: the link vouches for
    /// its TCP and UDP checksums (they are not verified). `Ok(Some(_))`:
    /// a flow was created and its socket needs registering.
    pub fn guest_frame(
        &mut self,
        frame: &[u8],
        trusted: bool,
        now: Instant,
        tx: &mut TxQueue,
        flows: &mut Flows,
    ) -> Result<Option<NewSocket>, DropReason> {
        let f = parse_frame_with(frame, !trusted)?;
        if !ethernet::is_multicast(f.src_mac) {
            self.guest_mac = Some(f.src_mac);
        }
        if let Payload::Ip(ip) = &f.payload {
            self.note_source(ip.src);
        }
        match f.payload {
            Payload::Arp(a) => {
                if a.op == arp::OP_REQUEST {
                    let q = arp_svc::Query {
                        sender_mac: a.sender_mac,
                        sender_ip: a.sender_ip,
                        target_ip: a.target_ip,
                    };
                    if let Some(r) = arp_svc::answer(&q, &self.cfg) {
                        self.arp_reply(tx, &r);
                    }
                }
                Ok(None)
            }
            Payload::Ip(ip) => match ip.l4 {
                L4::Udp(u) if u.dst_port == dhcpv4::SERVER_PORT && ip.src.is_ipv4() => {
                    self.dhcp(tx, u.payload, f.src_mac)?;
                    Ok(None)
                }
                L4::Udp(u) if u.dst_port == dhcpv6::SERVER_PORT && ip.src.is_ipv6() => {
                    // Source port 0 means "no reply expected" (RFC 768),
                    // and a reply to port 0 is a frame no one may send.
                    if u.src_port == 0 {
                        return Err(DropReason::BadPort);
                    }
                    self.dhcpv6(tx, u.payload, ip.src, u.src_port, f.src_mac)?;
                    Ok(None)
                }
                L4::Icmp { repr, message }
                    if ip.src.is_ipv6()
                        && (ndisc::ROUTER_SOLICIT..=ndisc::NEIGHBOR_ADVERT)
                            .contains(&repr.kind) =>
                {
                    let IpAddr::V6(src) = ip.src else {
                        return Err(DropReason::Malformed);
                    };
                    let m = ndisc::parse(message)?;
                    if let Some(a) = ndp::answer(&m, src, f.src_mac, &self.cfg) {
                        self.icmpv6_frame(tx, a.dst_mac, a.src_ip, a.dst_ip, &a.message);
                    }
                    Ok(None)
                }
                L4::Icmp { repr, message }
                    if repr.kind == icmp::V4_ECHO_REQUEST || repr.kind == icmp::V6_ECHO_REQUEST =>
                {
                    if self.cfg.disabled.icmp {
                        return Err(DropReason::Disabled);
                    }
                    let id = message
                        .get(4..6)
                        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                    let ends = (
                        std::net::SocketAddr::new(ip.src, id),
                        std::net::SocketAddr::new(ip.dst, id),
                    );
                    if let Some(gate) = outbound_gate(&mut flows.gate) {
                        if !flows.icmp.has(ip.dst, id) {
                            let (src, dst) = (ip.src, ip.dst);
                            let make = || Parked::IcmpOut {
                                src,
                                dst,
                                queue: vec![message.to_vec()],
                            };
                            if gate.admit(outbound(Proto::Icmp, ends), make, message, now) {
                                return Ok(None);
                            }
                        }
                    }
                    match flows.icmp.request(ip.src, ip.dst, message, now) {
                        Ok(created) => Ok(created.map(|(i, gen)| NewSocket::Icmp(i, gen))),
                        Err(RequestError::TooManyFlows | RequestError::Socket(_)) => {
                            Err(DropReason::NoFlow)
                        }
                    }
                }
                // Other ICMP (errors, MLD, our own advertisements echoed).
                L4::Icmp { .. } => Err(DropReason::Unsupported),
                L4::Tcp(_) if self.cfg.disabled.tcp => Err(DropReason::Disabled),
                L4::Tcp(t) => {
                    let src = std::net::SocketAddr::new(ip.src, t.src_port);
                    let dst = std::net::SocketAddr::new(ip.dst, t.dst_port);
                    if let Some(gate) = outbound_gate(&mut flows.gate) {
                        if tcp_flow::is_syn(&t) && !flows.tcp.has(src, dst) {
                            let syn = tcp_flow::Syn::of(&t);
                            let make = || Parked::TcpOut { src, dst, syn };
                            // A SYN again while parked: the first one waits.
                            if gate.admit(outbound(Proto::Tcp, (src, dst)), make, &[], now) {
                                return Ok(None);
                            }
                        }
                    }
                    let (our_mac, guest_mac) = (self.cfg.our_mac, f.src_mac);
                    let ip_id = &mut self.ip_id;
                    let reg = flows.tcp.guest_segment(src, dst, &t, now, &mut |seg| {
                        push_tcp(tx, our_mac, guest_mac, ip_id, &seg)
                    })?;
                    Ok(reg.map(NewSocket::Tcp))
                }
                L4::Udp(_) if self.cfg.disabled.udp => Err(DropReason::Disabled),
                L4::Udp(u) => {
                    if u.src_port == 0 || u.dst_port == 0 {
                        return Err(DropReason::BadPort);
                    }
                    let src = std::net::SocketAddr::new(ip.src, u.src_port);
                    let dst = std::net::SocketAddr::new(ip.dst, u.dst_port);
                    if let Some(gate) = outbound_gate(&mut flows.gate) {
                        if !flows.udp.has(src, dst) {
                            let make = || Parked::UdpOut {
                                src,
                                dst,
                                queue: vec![u.payload.to_vec()],
                            };
                            let info = outbound(Proto::Udp, (src, dst));
                            if gate.admit(info, make, u.payload, now) {
                                return Ok(None);
                            }
                        }
                    }
                    match flows.udp.guest_datagram(src, dst, u.payload, now) {
                        Ok(Route::Socket { index, gen, new }) => {
                            Ok(new.then_some(NewSocket::Udp(index, gen)))
                        }
                        Ok(Route::Listener { listener, to }) => {
                            match flows.udp_forwards.get(listener).and_then(Option::as_ref) {
                                Some(f) if f.sock.send_to(u.payload, to).is_ok() => Ok(None),
                                _ => Err(DropReason::NoFlow),
                            }
                        }
                        Err(UdpError::Connect(_)) => {
                            // No route on the host: tell the guest, as a
                            // router would (host / address unreachable).
                            let (kind, code) = if src.is_ipv6() { (1, 3) } else { (3, 1) };
                            self.udp_error(tx, src, dst, None, kind, code, u.payload);
                            Err(DropReason::NoFlow)
                        }
                        Err(UdpError::TooManyFlows | UdpError::Socket(_)) => {
                            Err(DropReason::NoFlow)
                        }
                    }
                }
                L4::Other(..) => Err(DropReason::Unsupported),
            },
        }
    }

    /// Frames TCP segments a flow produces outside of a guest frame
    /// (socket events, timers); `f` gets the framing callback.
    pub fn with_tcp_framer<R>(
        &mut self,
        tx: &mut TxQueue,
        f: impl FnOnce(&mut dyn FnMut(tcp_flow::Segment) -> bool) -> R,
    ) -> Option<R> {
        let guest_mac = self.guest_mac?;
        let our_mac = self.cfg.our_mac;
        let ip_id = &mut self.ip_id;
        Some(f(&mut |seg| push_tcp(tx, our_mac, guest_mac, ip_id, &seg)))
    }

    /// Frames what a UDP flow produced: a datagram for the guest, or an
    /// ICMP error for one of its datagrams.
    pub fn udp_event(&mut self, tx: &mut TxQueue, ev: udp_flow::Event<'_>) {
        match ev {
            udp_flow::Event::Datagram(d) => {
                let Some(mac) = self.guest_mac else { return };
                let our_mac = self.cfg.our_mac;
                push_udp(tx, our_mac, mac, &mut self.ip_id, d.src, d.dst, d.payload);
            }
            udp_flow::Event::Unreachable(u) => {
                let (kind, code) = (u.icmp_type, u.icmp_code);
                self.udp_error(tx, u.guest, u.remote, u.offender, kind, code, u.original);
            }
        }
    }

    /// Tells the guest a policy refused its datagram from `guest` to
    /// `remote`: administratively prohibited (RFC 1812 5.2.7.1, RFC 4443
    /// 3.1), quoting it.
    pub fn udp_refused(
        &mut self,
        tx: &mut TxQueue,
        guest: std::net::SocketAddr,
        remote: std::net::SocketAddr,
        original: &[u8],
    ) {
        let (kind, code) = if remote.is_ipv6() { (1, 1) } else { (3, 13) };
        self.udp_error(tx, guest, remote, None, kind, code, original);
    }

    /// The same for an echo request (`echo`, the ICMP message).
    pub fn echo_refused(&mut self, tx: &mut TxQueue, guest: IpAddr, remote: IpAddr, echo: &[u8]) {
        let Some(mac) = self.guest_mac else { return };
        let v6 = remote.is_ipv6();
        let (kind, code) = if v6 { (1, 1) } else { (3, 13) };
        let ip_len = if v6 {
            ipv6::HEADER_LEN
        } else {
            ipv4::HEADER_LEN
        };
        let room: usize = if v6 { 1280 - 40 } else { 576 - 20 };
        let quoted = echo.len().min(room - icmp::HEADER_LEN - ip_len);
        let mut msg = vec![0u8; icmp::HEADER_LEN + ip_len];
        msg[0] = kind;
        msg[1] = code;
        match (guest, remote) {
            (IpAddr::V4(g), IpAddr::V4(r)) => {
                ipv4::emit_header(
                    &mut msg[icmp::HEADER_LEN..],
                    g,
                    r,
                    ipv4::PROTO_ICMP,
                    echo.len(),
                    0,
                );
                msg.extend_from_slice(&echo[..quoted]);
                icmp::fill_checksum_v4(&mut msg);
                self.ipv4_frame(tx, mac, r, g, ipv4::PROTO_ICMP, &msg);
            }
            (IpAddr::V6(g), IpAddr::V6(r)) => {
                ipv6::emit_header(
                    &mut msg[icmp::HEADER_LEN..],
                    g,
                    r,
                    ipv6::NEXT_ICMPV6,
                    echo.len(),
                    64,
                );
                msg.extend_from_slice(&echo[..quoted]);
                self.icmpv6_frame(tx, mac, r, g, &msg);
            }
            _ => {}
        }
    }

    /// An ICMP(v6) error to the guest about its datagram from `guest` to
    /// `remote`, sent by `offender` (else the remote itself), quoting as
    /// much of `original` (the payload) as the minimum MTU allows.
    #[allow(clippy::too_many_arguments)]
    fn udp_error(
        &mut self,
        tx: &mut TxQueue,
        guest: std::net::SocketAddr,
        remote: std::net::SocketAddr,
        offender: Option<IpAddr>,
        kind: u8,
        code: u8,
        original: &[u8],
    ) {
        let Some(mac) = self.guest_mac else { return };
        let Some(mut msg) = udp_error_message(guest, remote, original.len(), kind, code) else {
            return;
        };
        // RFC 1812 4.3.2.3 / RFC 4443 2.4(c): no more than 576 / 1280
        // bytes in all.
        let room: usize = if remote.is_ipv6() {
            1280 - 40
        } else {
            576 - 20
        };
        let quoted = original.len().min(room.saturating_sub(msg.len()));
        msg.extend_from_slice(&original[..quoted]);
        let from = offender.unwrap_or(remote.ip());
        match (from, guest.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                icmp::fill_checksum_v4(&mut msg);
                self.ipv4_frame(tx, mac, s, d, ipv4::PROTO_ICMP, &msg);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => self.icmpv6_frame(tx, mac, s, d, &msg),
            _ => {}
        }
    }

    /// Frames an echo reply from a flow.
    pub fn icmp_reply(&mut self, r: &icmp_flow::Reply, tx: &mut TxQueue) {
        let Some(mac) = self.guest_mac else { return };
        match (r.src, r.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut msg = r.message.clone();
                icmp::fill_checksum_v4(&mut msg);
                self.ipv4_frame(tx, mac, s, d, ipv4::PROTO_ICMP, &msg);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => self.icmpv6_frame(tx, mac, s, d, &r.message),
            _ => {}
        }
    }

    fn arp_reply(&self, tx: &mut TxQueue, r: &arp_svc::Reply) {
        let our_mac = self.cfg.our_mac;
        tx.push(ethernet::HEADER_LEN + arp::LEN, |b| {
            ethernet::emit_header(b, r.dst_mac, our_mac, ethernet::ETHERTYPE_ARP);
            arp::Repr {
                op: arp::OP_REPLY,
                sender_mac: r.our_mac,
                sender_ip: r.our_ip,
                target_mac: r.dst_mac,
                target_ip: r.dst_ip,
            }
            .emit(&mut b[ethernet::HEADER_LEN..]);
        });
    }

    fn dhcp(
        &mut self,
        tx: &mut TxQueue,
        payload: &[u8],
        src_mac: MacAddr,
    ) -> Result<(), DropReason> {
        let p = dhcpv4::Packet::new_checked(payload)?;
        let req = dhcpv4::Request::parse(&p)?;
        if req.chaddr != src_mac {
            // A relay or a spoof: we serve the one guest on this link.
            return Err(DropReason::NotForUs);
        }
        let Some(a) = dhcp::answer(&req, &self.cfg) else {
            return Ok(());
        };
        let Some(v4) = &self.cfg.v4 else {
            return Ok(());
        };
        let mut msg = vec![0u8; a.reply.buffer_len()];
        a.reply.emit(&mut msg);
        let gw = v4.gateway;
        self.udp4_frame(
            tx,
            a.dst_mac,
            gw,
            a.dst_ip,
            dhcpv4::SERVER_PORT,
            dhcpv4::CLIENT_PORT,
            &msg,
        );
        Ok(())
    }

    fn dhcpv6(
        &mut self,
        tx: &mut TxQueue,
        payload: &[u8],
        src: IpAddr,
        src_port: u16,
        src_mac: MacAddr,
    ) -> Result<(), DropReason> {
        let req = dhcpv6::parse(payload)?;
        let (Some(reply), Some(v6), IpAddr::V6(dst)) =
            (dhcpv6_svc::answer(&req, &self.cfg), &self.cfg.v6, src)
        else {
            return Ok(());
        };
        let msg = reply.emit();
        let from = v6.router_ll;
        let len = udp::HEADER_LEN + msg.len();
        let our_mac = self.cfg.our_mac;
        tx.push(ethernet::HEADER_LEN + ipv6::HEADER_LEN + len, |b| {
            ethernet::emit_header(b, src_mac, our_mac, ethernet::ETHERTYPE_IPV6);
            let ip = &mut b[ethernet::HEADER_LEN..];
            ipv6::emit_header(ip, from, dst, ipv6::NEXT_UDP, len, 255);
            let l4 = &mut ip[ipv6::HEADER_LEN..];
            l4[udp::HEADER_LEN..].copy_from_slice(&msg);
            udp::emit(
                l4,
                from.into(),
                dst.into(),
                dhcpv6::SERVER_PORT,
                src_port,
                msg.len(),
            );
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn udp4_frame(
        &mut self,
        tx: &mut TxQueue,
        dst_mac: MacAddr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sport: u16,
        dport: u16,
        payload: &[u8],
    ) {
        let len = udp::HEADER_LEN + payload.len();
        let our_mac = self.cfg.our_mac;
        self.ip_id = self.ip_id.wrapping_add(1);
        let id = self.ip_id;
        tx.push(ethernet::HEADER_LEN + ipv4::HEADER_LEN + len, |b| {
            ethernet::emit_header(b, dst_mac, our_mac, ethernet::ETHERTYPE_IPV4);
            let ip = &mut b[ethernet::HEADER_LEN..];
            ipv4::emit_header(ip, src, dst, ipv4::PROTO_UDP, len, id);
            let l4 = &mut ip[ipv4::HEADER_LEN..];
            l4[udp::HEADER_LEN..].copy_from_slice(payload);
            udp::emit(l4, src.into(), dst.into(), sport, dport, payload.len());
        });
    }

    fn ipv4_frame(
        &mut self,
        tx: &mut TxQueue,
        dst_mac: MacAddr,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        l4: &[u8],
    ) {
        let our_mac = self.cfg.our_mac;
        self.ip_id = self.ip_id.wrapping_add(1);
        let id = self.ip_id;
        tx.push(ethernet::HEADER_LEN + ipv4::HEADER_LEN + l4.len(), |b| {
            ethernet::emit_header(b, dst_mac, our_mac, ethernet::ETHERTYPE_IPV4);
            let ip = &mut b[ethernet::HEADER_LEN..];
            ipv4::emit_header(ip, src, dst, proto, l4.len(), id);
            ip[ipv4::HEADER_LEN..].copy_from_slice(l4);
        });
    }

    /// An ICMPv6 message (checksum computed here); NDP needs hop limit 255.
    fn icmpv6_frame(
        &self,
        tx: &mut TxQueue,
        dst_mac: MacAddr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        msg: &[u8],
    ) {
        let our_mac = self.cfg.our_mac;
        tx.push(ethernet::HEADER_LEN + ipv6::HEADER_LEN + msg.len(), |b| {
            ethernet::emit_header(b, dst_mac, our_mac, ethernet::ETHERTYPE_IPV6);
            let ip = &mut b[ethernet::HEADER_LEN..];
            ipv6::emit_header(ip, src, dst, ipv6::NEXT_ICMPV6, msg.len(), 255);
            let m = &mut ip[ipv6::HEADER_LEN..];
            m.copy_from_slice(msg);
            icmp::fill_checksum_v6(m, src.into(), dst.into());
        });
    }
}

/// Where the transport header starts in our frames (we send no IP
/// options or extension headers), and where its checksum is.
const L4_V4: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
const L4_V6: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
const TCP_CSUM: usize = 16;
const UDP_CSUM: usize = 6;

/// Queues a frame of `len` bytes whose transport header starts at byte
/// `csum.0`, its checksum `csum.1` bytes in; `fill` is told whether the
/// link completes that checksum (`TxQueue::offloads_checksum`): then only
/// the pseudo-header sum goes in, and the payload is never summed.
fn push_l4(
    tx: &mut TxQueue,
    len: usize,
    csum: (usize, usize),
    fill: impl FnOnce(&mut [u8], bool),
) -> bool {
    if tx.offloads_checksum() {
        tx.push_partial(len, (csum.0 as u16, csum.1 as u16), |b| fill(b, true))
    } else {
        tx.push(len, |b| fill(b, false))
    }
}

/// Frames one UDP datagram for the guest, from `src` to `dst`.
fn push_udp(
    tx: &mut TxQueue,
    our_mac: MacAddr,
    guest_mac: MacAddr,
    ip_id: &mut u16,
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    payload: &[u8],
) -> bool {
    let len = udp::HEADER_LEN + payload.len();
    let (sport, dport) = (src.port(), dst.port());
    let fill_l4 = |l4: &mut [u8], s: IpAddr, d: IpAddr, offload: bool| {
        l4[udp::HEADER_LEN..].copy_from_slice(payload);
        if offload {
            udp::emit_offload(l4, s, d, sport, dport, payload.len());
        } else {
            udp::emit(l4, s, d, sport, dport, payload.len());
        }
    };
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            *ip_id = ip_id.wrapping_add(1);
            let id = *ip_id;
            push_l4(tx, L4_V4 + len, (L4_V4, UDP_CSUM), |b, offload| {
                ethernet::emit_header(b, guest_mac, our_mac, ethernet::ETHERTYPE_IPV4);
                let ip = &mut b[ethernet::HEADER_LEN..];
                ipv4::emit_header(ip, s, d, ipv4::PROTO_UDP, len, id);
                fill_l4(&mut ip[ipv4::HEADER_LEN..], s.into(), d.into(), offload);
            })
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            push_l4(tx, L4_V6 + len, (L4_V6, UDP_CSUM), |b, offload| {
                ethernet::emit_header(b, guest_mac, our_mac, ethernet::ETHERTYPE_IPV6);
                let ip = &mut b[ethernet::HEADER_LEN..];
                ipv6::emit_header(ip, s, d, ipv6::NEXT_UDP, len, 64);
                fill_l4(&mut ip[ipv6::HEADER_LEN..], s.into(), d.into(), offload);
            })
        }
        _ => false,
    }
}

/// The ICMP error message (checksum left zero) that tells the guest its
/// datagram from `guest` to `remote` (`len` bytes of payload) failed:
/// the fixed header, then the start of the offending packet as the guest
/// sent it, its IP header and UDP header (RFC 792, RFC 4443 §2.4: as much
/// as fits; these 28 or 48 bytes are what stacks match on).
fn udp_error_message(
    guest: std::net::SocketAddr,
    remote: std::net::SocketAddr,
    len: usize,
    kind: u8,
    code: u8,
) -> Option<Vec<u8>> {
    let udp_len = udp::HEADER_LEN + len;
    let ip_len = match remote {
        std::net::SocketAddr::V4(_) => ipv4::HEADER_LEN,
        std::net::SocketAddr::V6(_) => ipv6::HEADER_LEN,
    };
    let mut m = vec![0u8; icmp::HEADER_LEN + ip_len + udp::HEADER_LEN];
    m[0] = kind;
    m[1] = code;
    let inner = &mut m[icmp::HEADER_LEN..];
    match (guest.ip(), remote.ip()) {
        (IpAddr::V4(g), IpAddr::V4(r)) => {
            ipv4::emit_header(inner, g, r, ipv4::PROTO_UDP, udp_len, 0)
        }
        (IpAddr::V6(g), IpAddr::V6(r)) => {
            ipv6::emit_header(inner, g, r, ipv6::NEXT_UDP, udp_len, 64)
        }
        _ => return None,
    }
    let u = &mut inner[ip_len..];
    u[0..2].copy_from_slice(&guest.port().to_be_bytes());
    u[2..4].copy_from_slice(&remote.port().to_be_bytes());
    u[4..6].copy_from_slice(&(u16::try_from(udp_len).unwrap_or(u16::MAX)).to_be_bytes());
    Some(m)
}

/// Frames one TCP segment for the guest.
fn push_tcp(
    tx: &mut TxQueue,
    our_mac: MacAddr,
    guest_mac: MacAddr,
    ip_id: &mut u16,
    seg: &tcp_flow::Segment,
) -> bool {
    let repr = tcp::Repr {
        src_port: seg.src.port(),
        dst_port: seg.dst.port(),
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        window: seg.window,
        options: seg.options,
        payload: seg.payload,
    };
    let l4_len = repr.header_len() + seg.payload.len();
    // The payload is copied once, straight to its place in the frame.
    let fill_l4 = |l4: &mut [u8], s: IpAddr, d: IpAddr, offload: bool| {
        l4[repr.header_len()..l4_len].copy_from_slice(seg.payload);
        if offload {
            repr.emit_header_offload(l4, seg.payload.len(), s, d);
        } else {
            repr.emit_header(l4, seg.payload.len(), s, d);
        }
    };
    match (seg.src.ip(), seg.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            *ip_id = ip_id.wrapping_add(1);
            let id = *ip_id;
            push_l4(tx, L4_V4 + l4_len, (L4_V4, TCP_CSUM), |b, offload| {
                ethernet::emit_header(b, guest_mac, our_mac, ethernet::ETHERTYPE_IPV4);
                let ip = &mut b[ethernet::HEADER_LEN..];
                ipv4::emit_header(ip, s, d, ipv4::PROTO_TCP, l4_len, id);
                fill_l4(&mut ip[ipv4::HEADER_LEN..], s.into(), d.into(), offload);
            })
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            push_l4(tx, L4_V6 + l4_len, (L4_V6, TCP_CSUM), |b, offload| {
                ethernet::emit_header(b, guest_mac, our_mac, ethernet::ETHERTYPE_IPV6);
                let ip = &mut b[ethernet::HEADER_LEN..];
                ipv6::emit_header(ip, s, d, ipv6::NEXT_TCP, l4_len, 64);
                fill_l4(&mut ip[ipv6::HEADER_LEN..], s.into(), d.into(), offload);
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_error_quotes_the_guests_datagram() {
        let guest: std::net::SocketAddr = "192.0.2.2:40000".parse().unwrap();
        let remote: std::net::SocketAddr = "192.0.2.1:53".parse().unwrap();
        let m = udp_error_message(guest, remote, 12, 3, 3).unwrap();
        assert_eq!(m.len(), 8 + 20 + 8);
        assert_eq!(&m[..8], &[3, 3, 0, 0, 0, 0, 0, 0]);
        let ip = &m[8..28];
        assert_eq!(ip[0], 0x45);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 20 + 8 + 12);
        assert_eq!(ip[9], 17);
        assert_eq!(&ip[12..16], &[192, 0, 2, 2]);
        assert_eq!(&ip[16..20], &[192, 0, 2, 1]);
        assert_eq!(&m[28..], &[0x9c, 0x40, 0, 53, 0, 20, 0, 0]);
        let v6 = udp_error_message(
            "[fd00::2]:5000".parse().unwrap(),
            "[fd00::1]:53".parse().unwrap(),
            0,
            1,
            4,
        )
        .unwrap();
        assert_eq!(v6.len(), 8 + 40 + 8);
        assert_eq!((v6[0], v6[1]), (1, 4));
        assert_eq!(v6[8] >> 4, 6);
        assert_eq!(v6[8 + 6], 17);
        assert_eq!(&v6[48..], &[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
    }

    #[test]
    fn inbound_goes_to_the_address_the_guest_uses() {
        let mut l2 = L2::new(GuestConfig::example());
        let assigned6: IpAddr = "fd00::2".parse().unwrap();
        assert_eq!(l2.guest_addr(true), Some(assigned6));
        // A DHCP client's 0.0.0.0 and a link-local source teach nothing.
        l2.note_source("0.0.0.0".parse().unwrap());
        l2.note_source("fe80::5054:ff:fe12:3456".parse().unwrap());
        assert_eq!(l2.guest_addr(false), Some("192.0.2.2".parse().unwrap()));
        assert_eq!(l2.guest_addr(true), Some(assigned6));
        // A SLAAC address in use is where the guest is.
        let slaac: IpAddr = "fd00::5054:ff:fe12:3456".parse().unwrap();
        l2.note_source(slaac);
        assert_eq!(l2.guest_addr(true), Some(slaac));
        assert_eq!(l2.guest_addr(false), Some("192.0.2.2".parse().unwrap()));
    }
}
