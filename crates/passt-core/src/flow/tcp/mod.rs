//! TCP without a stack of our own: each guest connection is mirrored by a
//! host socket, and the host kernel does the real TCP.
//!
//! Theory of operation (DESIGN.md, "TCP without a stack"):
//! - A guest SYN becomes a non-blocking `connect()`; when it completes the
//!   guest gets a SYN-ACK (MSS and window scale from its SYN), or a RST if
//!   the host refused. Inbound (`-t`), an accepted socket becomes our SYN
//!   to the guest; its SYN-ACK establishes the flow, its RST resets the
//!   client.
//! - Guest data goes straight into the socket; only what the socket took
//!   is acknowledged, and the window offered follows the socket's free
//!   send space, so the guest is paced by the host side. Data we drop
//!   (refused by a full socket, or after a gap: nothing is buffered) is
//!   asked for again with three duplicate ACKs carrying an unchanged
//!   window, which a guest takes as a fast retransmit, instead of being
//!   left to its retransmission timer and its backoff.
//! - Host data stays in the socket's receive queue until the guest
//!   acknowledges it: it is read with `MSG_PEEK` from `SO_PEEK_OFF`
//!   (past what is in flight), sent as segments of at most the guest's
//!   MSS within its window, and dropped with `MSG_TRUNC` when acknowledged.
//!   Three duplicate ACKs or `RTO` without progress rewind the peek offset
//!   and resend from the oldest unacknowledged byte.
//! - A guest FIN becomes `shutdown(SHUT_WR)`; host EOF becomes a FIN once
//!   everything before it was sent. A RST either way resets the other.
//!   A flow ends when both FINs are acknowledged, or on a RST.
//! - Timeouts, so that a guest that stops answering cannot hold a host
//!   socket (and its peer) forever. The retransmission timeout doubles
//!   with each expiry in a row (`RTO` up to `RTO_MAX`), and progress
//!   resets it; after `MAX_RETRANSMITS` (about a minute) of data, FIN or
//!   SYN-ACK unacknowledged, the flow is reset both ways: a RST to the
//!   guest, reset-on-close on the socket. An inbound SYN gives up after
//!   `SYN_TRIES`. A flow that heard nothing from either side for
//!   `IDLE_TIMEOUT` is reset the same way. The 20 ms timer does work only
//!   for busy flows; the idle check visits every flow, but at most once
//!   every `SWEEP_EVERY`, so ten thousand quiet flows cost nothing per tick.
//! - Flow logic takes `now` and works on a `FlowSocket`, so it runs over an
//!   in-memory socket and a made-up clock in its unit tests.
//!
//! Invariants: `snd_una <= snd_nxt`; the socket's receive queue starts at
//! `snd_una` and its peek offset is `snd_nxt - snd_una`; a slot's
//! generation changes when it is reused, so a stale epoll event for an
//! old flow is recognised and ignored.

pub mod seq;
pub mod socket;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::flow::icmp::GatewayMap;
use crate::flow::record::{Direction, End, FlowInfo, Meta, Proto, Recorder};
use crate::slab::Slab;
use crate::sys::tcp::{Read, TcpSocket};
use crate::wire::tcp::{self as tcpw, Options};
use crate::wire::DropReason;
pub use seq::Seq;
pub use socket::FlowSocket;

/// Retransmission timeout without acknowledgement progress (the first
/// one; each further timeout in a row doubles it, up to `RTO_MAX`).
pub const RTO: Duration = Duration::from_millis(400);
/// The longest wait between two retransmissions: past this, doubling only
/// delays noticing that the guest came back.
pub const RTO_MAX: Duration = Duration::from_secs(10);
/// Retransmissions in a row without acknowledgement progress before the
/// flow is reset both ways: 400 ms doubling to the 10 s cap puts the last
/// timeout about a minute (62.4 s) after the first loss. The guest is on a
/// local link that does not lose a minute of segments: a guest that silent
/// is gone or wedged, and the host peer should learn it in a minute, not
/// in the quarter of an hour a kernel would keep trying (tcp_retries2).
pub const MAX_RETRANSMITS: u8 = 9;
/// A flow with no segment from the guest and no event on its socket for
/// this long is reset both ways, so that a guest that vanished without a
/// trace does not pin a host socket forever. Two hours is the kernel's
/// default keepalive time: a guest that wants a quiet connection to live
/// longer has keepalives on, and each of them counts as a segment.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// How often the timer looks at every flow for `IDLE_TIMEOUT`: the 20 ms
/// tick only works on busy flows, so idle ones cost nothing between sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Most concurrent flows (a bound on memory; passt's is larger).
pub const MAX_FLOWS: usize = 32768;
/// Our window scale: up to 8 MiB of window.
const OUR_WSCALE: u8 = 7;
/// Peek buffer: the largest segment we send.
const PEEK_BUF: usize = 65536;
/// SYNs sent to the guest for an inbound connection before giving up.
const SYN_TRIES: u8 = 6;
/// How long dropped guest data may go without a retransmission before we
/// ask for one with duplicate ACKs (a few round trips on a local link, far
/// below the guest's retransmission timeout).
const NUDGE_AFTER: Duration = Duration::from_millis(10);
/// Segments per flow per event, for fairness between flows.
const SEGMENTS_PER_ROUND: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    guest: SocketAddr,
    dst: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// connect() in progress; the guest's SYN is not answered yet.
    Connecting,
    /// Inbound: our SYN sent to the guest, waiting for its SYN-ACK.
    SynSent,
    /// SYN-ACK sent, waiting for the guest's ACK of it.
    SynAckSent,
    Established,
}

struct Conn<S> {
    sock: S,
    key: Key,
    state: State,
    /// Next sequence number expected from the guest.
    rcv_nxt: Seq,
    /// Oldest byte sent to the guest and not acknowledged.
    snd_una: Seq,
    /// Next sequence number we send.
    snd_nxt: Seq,
    /// The guest's receive window (scaled) and segment size.
    guest_wnd: u32,
    guest_mss: u16,
    guest_wscale: u8,
    /// The MSS we announced in our SYN-ACK.
    our_mss: u16,
    /// Whether window scaling is on (both SYNs carried the option).
    scaling: bool,
    dup_acks: u8,
    /// When the retransmission timer last started: acknowledgement
    /// progress, a first segment in flight, or a retransmission.
    last_progress: Instant,
    /// Retransmission timeouts in a row without acknowledgement progress:
    /// the backoff exponent, and the count towards `MAX_RETRANSMITS`.
    timeouts: u8,
    /// When the guest sent a segment or the socket had an event: the
    /// flow's clock towards `IDLE_TIMEOUT`.
    last_active: Instant,
    /// The guest sent FIN (and we shut the socket's write side).
    guest_fin: bool,
    /// The host side reached EOF and we sent (seq of) FIN.
    fin_seq: Option<Seq>,
    /// An ACK to the guest is owed.
    ack_due: bool,
    /// The socket is watched for writability: the window we offered was
    /// nearly closed, and the guest needs an update when it opens.
    watch_write: bool,
    /// The window (bytes) in the last segment we sent.
    wnd_sent: u32,
    /// Inbound: SYNs sent to the guest so far.
    syn_tries: u8,
    /// Guest data up to here was dropped (the socket refused it, or it
    /// came after a gap): the guest must resend it. A window update does
    /// not make it (it waits for its retransmission timer, and after a
    /// timeout only another timeout, with backoff, finds the next loss);
    /// three duplicate ACKs do, a fast retransmit, once the socket has room.
    missing: Option<Seq>,
    /// When `rcv_nxt` last advanced or duplicate ACKs last went out.
    rcv_stamp: Instant,
    /// The acknowledgement and window field of the last segment we sent:
    /// an ACK that acknowledges nothing new repeats the window, or the
    /// guest does not count it as a duplicate (RFC 5681, 2).
    ack_sent: Seq,
    wnd_field: u16,
    /// The socket was full and has drained since: time to ask for what
    /// it refused.
    drained: bool,
    /// The socket's free send space as `push` last read it (after the
    /// guest's data went in), so a guest segment asks the kernel once.
    space_seen: u32,
    /// The guest link's queue refused a segment: push again on the timer.
    blocked: bool,
    /// The socket may have data past the peek offset: set by every
    /// socket event (edge-triggered: new data always brings one) and by a
    /// rewind, cleared when a peek finds nothing. A guest segment then
    /// costs no empty peek (on an upload, one per segment).
    host_readable: bool,
    /// Addresses, bytes, start: for flow records.
    meta: Meta,
    /// How the flow ended, when not by its last segment (a timeout).
    end: Option<End>,
}

impl<S> Conn<S> {
    /// A flow that has sent nothing and heard nothing beyond its SYN: the
    /// guest's parameters are the defaults until its SYN says otherwise.
    fn new(sock: S, key: Key, state: State, isn: Seq, meta: Meta, now: Instant) -> Self {
        Conn {
            sock,
            key,
            state,
            rcv_nxt: Seq(0),
            snd_una: isn,
            snd_nxt: isn,
            guest_wnd: 0,
            guest_mss: 536,
            guest_wscale: 0,
            our_mss: 536,
            scaling: false,
            dup_acks: 0,
            last_progress: now,
            timeouts: 0,
            last_active: now,
            guest_fin: false,
            fin_seq: None,
            ack_due: false,
            watch_write: false,
            wnd_sent: 0,
            syn_tries: 0,
            missing: None,
            rcv_stamp: now,
            ack_sent: Seq(0),
            wnd_field: 0,
            drained: false,
            space_seen: 0,
            blocked: false,
            host_readable: true,
            meta,
            end: None,
        }
    }

    /// How the flow ends now: as marked, else cleanly if both sides
    /// finished, else by a reset.
    fn ending(&self) -> End {
        let clean = self.guest_fin && self.fin_seq.is_some_and(|f| self.snd_una.after(f));
        self.end
            .unwrap_or(if clean { End::Closed } else { End::Reset })
    }
}

/// What a guest SYN asked for, kept while its flow waits for a policy
/// decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syn {
    seq: u32,
    window: u16,
    mss: Option<u16>,
    wscale: Option<u8>,
}

impl Syn {
    pub fn of(seg: &tcpw::Repr) -> Self {
        Syn {
            seq: seg.seq,
            window: seg.window,
            mss: seg.options.mss,
            wscale: seg.options.wscale,
        }
    }
}

/// Whether `seg` opens a connection (SYN without ACK or RST).
pub fn is_syn(seg: &tcpw::Repr) -> bool {
    seg.flags & (tcpw::SYN | tcpw::ACK | tcpw::RST) == tcpw::SYN
}

/// A segment for the guest, from `src` (the remote as the guest knows it)
/// to `dst` (the guest).
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Options,
    pub payload: &'a [u8],
}

/// What the engine must do with a flow's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// A new socket: watch it for reading and writing (connect).
    New { index: usize, gen: u8 },
    /// Connected: reading only from now on.
    Connected { index: usize, gen: u8 },
    /// Watch (or stop watching) the socket for writability.
    Writable { index: usize, gen: u8, on: bool },
    /// Inbound: the guest answered; start reading the accepted socket.
    Established { index: usize, gen: u8 },
}

pub struct TcpFlows<S: FlowSocket = TcpSocket> {
    slots: Slab<Conn<S>>,
    by_key: HashMap<Key, usize>,
    pub map: GatewayMap,
    buf: Box<[u8]>,
    /// MSS we announce: the guest link's MTU less headers.
    our_mss: u16,
    isn_seed: u32,
    /// When the timer last looked at every flow for `IDLE_TIMEOUT`.
    last_sweep: Option<Instant>,
    /// Opened and ended flows, for whoever listens.
    pub rec: Recorder,
}

fn window_field(space: u32, scale: u8) -> u16 {
    (space >> scale).min(u32::from(u16::MAX)) as u16
}

impl<S: FlowSocket> TcpFlows<S> {
    pub fn new(map: GatewayMap, mtu: u16) -> Self {
        TcpFlows {
            slots: Slab::new(),
            by_key: HashMap::new(),
            map,
            buf: vec![0; PEEK_BUF].into_boxed_slice(),
            our_mss: mtu.saturating_sub(60).max(536),
            isn_seed: std::process::id().wrapping_mul(2_654_435_761),
            last_sweep: None,
            rec: Recorder::default(),
        }
    }

    /// Whether the guest-side pair has a flow.
    pub fn has(&self, guest: SocketAddr, dst: SocketAddr) -> bool {
        self.by_key.contains_key(&Key { guest, dst })
    }

    /// Live flows by state, and their bytes [from, to the guest].
    pub fn census(&self) -> ([(&'static str, u64); 5], [u64; 2]) {
        let mut n = [0u64; 5];
        for c in self.slots.values() {
            let i = match c.state {
                State::Connecting => 0,
                State::SynSent => 1,
                State::SynAckSent => 2,
                State::Established if c.guest_fin || c.fin_seq.is_some() => 4,
                State::Established => 3,
            };
            n[i] += 1;
        }
        let bytes = self.rec.bytes(self.slots.values().map(|c| &c.meta));
        let names = [
            "connecting",
            "syn-sent",
            "syn-ack-sent",
            "established",
            "closing",
        ];
        (std::array::from_fn(|i| (names[i], n[i])), bytes)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn socket(&self, index: usize, gen: u8) -> Option<&S> {
        self.slots.checked(index, gen).map(|c| &c.sock)
    }

    fn isn(&mut self, key: &Key, now: Instant) -> Seq {
        // Not cryptographic: unpredictable enough for a private link.
        let mut h = self.isn_seed ^ (now.elapsed().subsec_nanos());
        for b in format!("{key:?}").bytes() {
            h = h.rotate_left(5) ^ u32::from(b).wrapping_mul(0x9e37_79b9);
        }
        self.isn_seed = self.isn_seed.wrapping_add(h | 1);
        Seq(h)
    }

    /// Inbound: a connection accepted on a forwarded port, for the guest's
    /// `guest` address and port, from `remote` as the guest will see it.
    /// Sends the guest a SYN; the socket is registered once it answers.
    /// `client` is its real address (for flow records).
    pub fn accepted(
        &mut self,
        sock: S,
        (client, remote): (SocketAddr, SocketAddr),
        guest: SocketAddr,
        now: Instant,
        out: &mut dyn FnMut(Segment) -> bool,
    ) {
        let key = Key { guest, dst: remote };
        let full = self.by_key.contains_key(&key) || self.by_key.len() >= MAX_FLOWS;
        // Peek offsets make MSG_PEEK continue where the last peek ended.
        if full || sock.set_peek_offset(0).is_err() {
            sock.set_reset_on_close();
            return;
        }
        let isn = self.isn(&key, now);
        let info = FlowInfo {
            proto: Proto::Tcp,
            direction: Direction::Inbound,
            src: client,
            dst: guest,
        };
        let meta = Meta::new(info, (remote, guest), now);
        let mut c = Conn::new(sock, key, State::SynSent, isn, meta, now);
        c.our_mss = self.our_mss;
        Self::send_syn(&mut c, out);
        self.insert(c);
    }

    /// Files a new flow in a free slot (or a new one) under a fresh
    /// generation, so stale events for the slot's last flow are ignored.
    fn insert(&mut self, c: Conn<S>) -> (usize, u8) {
        let key = c.key;
        self.rec.open(&c.meta);
        let (index, gen) = self.slots.insert(c);
        self.by_key.insert(key, index);
        (index, gen)
    }

    fn send_syn(c: &mut Conn<S>, out: &mut dyn FnMut(Segment) -> bool) {
        let space = usable(c.sock.send_space().unwrap_or(65535));
        out(Segment {
            src: c.key.dst,
            dst: c.key.guest,
            seq: c.snd_una.0,
            ack: 0,
            flags: tcpw::SYN,
            window: window_field(space, 0),
            options: Options {
                mss: Some(c.our_mss),
                wscale: Some(OUR_WSCALE),
                ..Options::default()
            },
            payload: &[],
        });
        c.snd_nxt = c.snd_una.plus(1);
        c.syn_tries += 1;
    }

    /// A TCP segment from the guest (`src` the guest, `dst` its peer).
    pub fn guest_segment(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        seg: &tcpw::Repr,
        now: Instant,
        out: &mut dyn FnMut(Segment) -> bool,
    ) -> Result<Option<Registration>, DropReason> {
        let key = Key { guest: src, dst };
        let Some(&index) = self.by_key.get(&key) else {
            return self.new_flow(key, seg, now, out);
        };
        let mut close = false;
        let mut reg = None;
        let gen = self.slots.gen(index);
        if let Some(c) = self.slots.get_mut(index) {
            c.last_active = now;
            if c.state == State::SynSent {
                let answer = Self::syn_answered(c, seg, (index, gen), now, out);
                if answer.is_err() {
                    self.free(index, now);
                }
                return Ok(answer.unwrap_or(None));
            }
            close = Self::on_segment(c, seg, now, out);
            if !close {
                close = Self::push(c, &mut self.buf, now, out);
            }
            // The guest's data filled the socket: it will need a window
            // update when the socket drains.
            if !close && !c.watch_write && c.state == State::Established && !c.guest_fin {
                // Read by `push` just now, after the guest's data went in.
                let space = c.space_seen;
                if space < u32::from(c.guest_mss).max(u32::from(c.our_mss)) {
                    c.watch_write = true;
                    reg = Some(Registration::Writable {
                        index,
                        gen,
                        on: true,
                    });
                }
            }
        }
        if close {
            self.free(index, now);
            return Ok(None);
        }
        Ok(reg)
    }

    fn new_flow(
        &mut self,
        key: Key,
        seg: &tcpw::Repr,
        now: Instant,
        out: &mut dyn FnMut(Segment) -> bool,
    ) -> Result<Option<Registration>, DropReason> {
        if seg.flags & tcpw::RST != 0 {
            return Ok(None);
        }
        if seg.flags & (tcpw::SYN | tcpw::ACK) != tcpw::SYN {
            // Not a connection we know: reset it (RFC 9293 §3.10.7.1).
            reset_for(key, seg, out);
            return Ok(None);
        }
        let host = self.map.outbound_sock(key.dst);
        self.open(key.guest, key.dst, Syn::of(seg), (host, None), now, out)
    }

    /// Opens the flow a guest SYN (`syn`, from `guest` to `dst`) asked
    /// for, connecting to `target` (from `bind`, if given, else from
    /// `-o`'s address) — the policy's rewrite, or the mapped destination.
    /// The guest gets a RST if the host cannot even start connecting.
    pub fn open(
        &mut self,
        guest: SocketAddr,
        dst: SocketAddr,
        syn: Syn,
        (target, bind): (SocketAddr, Option<SocketAddr>),
        now: Instant,
        out: &mut dyn FnMut(Segment) -> bool,
    ) -> Result<Option<Registration>, DropReason> {
        let key = Key { guest, dst };
        if self.by_key.contains_key(&key) {
            return Ok(None);
        }
        if self.by_key.len() >= MAX_FLOWS {
            Self::refuse(guest, dst, syn, out);
            return Err(DropReason::NoFlow);
        }
        let bind = bind.or_else(|| Some(SocketAddr::new(self.map.source(target.ip())?, 0)));
        let sock = match bind {
            Some(src) => S::connect_from(target, src),
            None => S::connect(target),
        };
        let Ok(sock) = sock else {
            Self::refuse(guest, dst, syn, out);
            return Ok(None);
        };
        let isn = self.isn(&key, now);
        let info = FlowInfo {
            proto: Proto::Tcp,
            direction: Direction::Outbound,
            src: guest,
            dst,
        };
        let local = sock.local().unwrap_or(SocketAddr::new(
            crate::flow::unspecified(target.is_ipv6()),
            0,
        ));
        let meta = Meta::new(info, (local, target), now);
        let conn = Conn {
            rcv_nxt: Seq(syn.seq).plus(1),
            guest_wnd: u32::from(syn.window),
            guest_mss: syn.mss.unwrap_or(536).max(64),
            guest_wscale: syn.wscale.unwrap_or(0),
            scaling: syn.wscale.is_some(),
            our_mss: self.our_mss,
            ..Conn::new(sock, key, State::Connecting, isn, meta, now)
        };
        let (index, gen) = self.insert(conn);
        Ok(Some(Registration::New { index, gen }))
    }

    /// Answers a guest SYN with a RST: the connection is refused.
    pub fn refuse(
        guest: SocketAddr,
        dst: SocketAddr,
        syn: Syn,
        out: &mut dyn FnMut(Segment) -> bool,
    ) {
        out(Segment {
            src: dst,
            dst: guest,
            seq: 0,
            ack: syn.seq.wrapping_add(1),
            flags: tcpw::RST | tcpw::ACK,
            window: 0,
            options: Options::default(),
            payload: &[],
        });
    }

    /// Readiness on flow `index`'s socket.
    pub fn socket_event(
        &mut self,
        index: usize,
        gen: u8,
        writable: bool,
        now: Instant,
        out: &mut dyn FnMut(Segment) -> bool,
    ) -> Option<Registration> {
        let mut reg = None;
        let mut close = false;
        if let Some(c) = self.slots.checked_mut(index, gen) {
            c.last_active = now;
            c.host_readable = true;
            if c.state == State::Connecting {
                if !writable {
                    return None;
                }
                match c.sock.take_error() {
                    Ok(None) => {
                        Self::syn_ack(c, out);
                        c.state = State::SynAckSent;
                        c.last_progress = now;
                        reg = Some(Registration::Connected { index, gen });
                    }
                    _ => {
                        send_rst(c, out);
                        close = true;
                    }
                }
            } else {
                if writable && c.watch_write {
                    c.watch_write = false;
                    c.drained = true;
                    c.ack_due = true; // window update
                    reg = Some(Registration::Writable {
                        index,
                        gen,
                        on: false,
                    });
                }
                close = Self::push(c, &mut self.buf, now, out);
            }
        }
        if close {
            self.free(index, now);
            return None;
        }
        reg
    }

    /// Inbound: the guest's answer to our SYN. `Err`: it refused (RST),
    /// and the host side is reset too.
    fn syn_answered(
        c: &mut Conn<S>,
        seg: &tcpw::Repr,
        (index, gen): (usize, u8),
        now: Instant,
        out: &mut dyn FnMut(Segment) -> bool,
    ) -> Result<Option<Registration>, ()> {
        let syn_ack = tcpw::SYN | tcpw::ACK;
        if seg.flags & tcpw::RST != 0 {
            c.sock.set_reset_on_close();
            return Err(());
        }
        if seg.flags & syn_ack != syn_ack || Seq(seg.ack) != c.snd_una.plus(1) {
            return Ok(None);
        }
        c.rcv_nxt = Seq(seg.seq).plus(1);
        c.snd_una = Seq(seg.ack);
        c.snd_nxt = c.snd_una;
        c.guest_mss = seg.options.mss.unwrap_or(536).max(64);
        c.scaling = seg.options.wscale.is_some();
        c.guest_wscale = seg.options.wscale.unwrap_or(0);
        // A SYN-ACK's window is never scaled (RFC 7323, 2.2).
        c.guest_wnd = u32::from(seg.window);
        c.state = State::Established;
        c.last_progress = now;
        c.ack_due = true;
        let mut buf = [0u8; 0];
        Self::push(c, &mut buf, now, out);
        Ok(Some(Registration::Established { index, gen }))
    }

    fn syn_ack(c: &mut Conn<S>, out: &mut dyn FnMut(Segment) -> bool) {
        let space = usable(c.sock.send_space().unwrap_or(65535));
        let options = Options {
            mss: Some(c.our_mss),
            wscale: c.scaling.then_some(OUR_WSCALE),
            ..Options::default()
        };
        out(Segment {
            src: c.key.dst,
            dst: c.key.guest,
            seq: c.snd_nxt.0,
            ack: c.rcv_nxt.0,
            flags: tcpw::SYN | tcpw::ACK,
            window: window_field(space, 0),
            options,
            payload: &[],
        });
        c.snd_una = c.snd_nxt;
        c.snd_nxt = c.snd_nxt.plus(1);
    }

    /// Applies a guest segment to its flow; `true` when the flow ends.
    fn on_segment(
        c: &mut Conn<S>,
        seg: &tcpw::Repr,
        now: Instant,
        out: &mut dyn FnMut(Segment) -> bool,
    ) -> bool {
        if seg.flags & tcpw::RST != 0 {
            c.sock.set_reset_on_close();
            return true;
        }
        if seg.flags & tcpw::SYN != 0 {
            // A retransmitted SYN: the SYN-ACK (if sent) went missing.
            if c.state == State::SynAckSent {
                c.ack_due = true;
            }
            return false;
        }
        if c.state == State::Connecting {
            return false;
        }
        let scale = if c.scaling { c.guest_wscale } else { 0 };
        let prev_wnd = c.guest_wnd;
        c.guest_wnd = u32::from(seg.window) << scale;
        if seg.flags & tcpw::ACK != 0 {
            let ack = Seq(seg.ack);
            if ack.after(c.snd_una) && c.snd_nxt.after_or_at(ack) {
                let mut acked = ack.since(c.snd_una);
                if c.state == State::SynAckSent {
                    c.state = State::Established;
                    acked -= 1; // the SYN
                }
                if c.fin_seq.is_some_and(|f| ack.after(f)) {
                    acked = acked.saturating_sub(1); // the FIN
                }
                if acked > 0 && c.sock.discard(acked as usize).is_err() {
                    send_rst(c, out);
                    return true;
                }
                c.meta.to_guest(acked as usize);
                c.snd_una = ack;
                c.dup_acks = 0;
                c.last_progress = now;
                c.timeouts = 0;
            } else if ack == c.snd_una
                && seg.payload.is_empty()
                && c.snd_nxt != c.snd_una
                && c.guest_wnd == prev_wnd
            {
                // A duplicate (RFC 5681, 2): a window update that
                // acknowledges nothing new is not one.
                c.dup_acks += 1;
                if c.dup_acks == 3 {
                    Self::rewind(c);
                }
            }
        }
        // Data and FIN: taken only in order.
        let seq = Seq(seg.seq);
        if seg.payload.is_empty() && seg.flags & tcpw::FIN == 0 && seq != c.rcv_nxt {
            // A window probe or a keepalive: it gets an ACK with our window.
            c.ack_due = true;
        }
        if !seg.payload.is_empty() || seg.flags & tcpw::FIN != 0 {
            if seq != c.rcv_nxt {
                c.ack_due = true; // duplicate ACK: tells the guest what we have
                if seq.after(c.rcv_nxt) {
                    note_missing(c, seq.plus(seg.payload.len() as u32));
                }
            } else {
                let taken = if seg.payload.is_empty() {
                    0
                } else {
                    match c.sock.send(seg.payload) {
                        Ok(n) => n,
                        Err(_) => {
                            send_rst(c, out);
                            return true;
                        }
                    }
                };
                c.rcv_nxt = c.rcv_nxt.plus(taken as u32);
                c.meta.from_guest(taken);
                if taken > 0 {
                    c.rcv_stamp = now;
                }
                if taken < seg.payload.len() {
                    note_missing(c, seq.plus(seg.payload.len() as u32));
                }
                if c.missing.is_some_and(|m| c.rcv_nxt.after_or_at(m)) {
                    c.missing = None;
                }
                if seg.flags & tcpw::FIN != 0 && taken == seg.payload.len() && !c.guest_fin {
                    c.guest_fin = true;
                    c.rcv_nxt = c.rcv_nxt.plus(1);
                    let _ = c.sock.shutdown_write();
                }
                c.ack_due = true;
            }
        }
        // Both directions closed and our FIN acknowledged: done.
        let done = c.guest_fin && c.fin_seq.is_some_and(|f| c.snd_una.after(f));
        if done && c.ack_due {
            // The guest's FIN closed the flow: no push follows to
            // acknowledge it, and without an ACK the guest resends the FIN
            // and gets a RST (the flow is gone) instead of a clean close.
            send_ack(c, out);
        }
        done
    }

    /// Resends from the oldest unacknowledged byte.
    fn rewind(c: &mut Conn<S>) {
        c.snd_nxt = c.snd_una;
        c.host_readable = true;
        if c.fin_seq.is_some_and(|f| !c.snd_una.after(f)) {
            c.fin_seq = None;
        }
        let _ = c.sock.set_peek_offset(0);
        c.dup_acks = 0;
    }

    /// Sends what the host sent (within the guest's window), a FIN after
    /// EOF, and any ACK owed. `true` when the flow ends.
    fn push(
        c: &mut Conn<S>,
        buf: &mut [u8],
        now: Instant,
        out: &mut dyn FnMut(Segment) -> bool,
    ) -> bool {
        if matches!(c.state, State::Connecting | State::SynSent) {
            return false;
        }
        if c.state == State::SynAckSent {
            if c.ack_due {
                c.snd_nxt = c.snd_una;
                Self::syn_ack(c, out);
                c.ack_due = false;
            }
            return false;
        }
        let scale = if c.scaling { OUR_WSCALE } else { 0 };
        c.space_seen = c.sock.send_space().unwrap_or(0);
        let space = usable(c.space_seen);
        // A window that opened a lot since we last said (a lost update, or
        // none sent): tell the guest, or it waits for its probe timer.
        let opened =
            !c.guest_fin && space >= c.wnd_sent.saturating_mul(2).max(u32::from(c.guest_mss));
        c.ack_due |= opened;
        let our_wnd = if c.rcv_nxt == c.ack_sent && !opened {
            c.wnd_field
        } else {
            window_field(space, scale)
        };
        c.ack_sent = c.rcv_nxt;
        c.wnd_field = our_wnd;
        let wnd_bytes = u32::from(our_wnd) << scale;
        let mut sent_any = false;
        c.blocked = false;
        for _ in 0..SEGMENTS_PER_ROUND {
            if c.fin_seq.is_some() || !c.host_readable {
                break;
            }
            let in_flight = c.snd_nxt.since(c.snd_una);
            let room = c.guest_wnd.saturating_sub(in_flight);
            let len = room.min(u32::from(c.guest_mss)).min(buf.len() as u32) as usize;
            if len == 0 {
                break;
            }
            match c.sock.peek(&mut buf[..len]) {
                Ok(Read::Data(n)) => {
                    let queued = out(Segment {
                        src: c.key.dst,
                        dst: c.key.guest,
                        seq: c.snd_nxt.0,
                        ack: c.rcv_nxt.0,
                        flags: tcpw::ACK | tcpw::PSH,
                        window: our_wnd,
                        options: Options::default(),
                        payload: &buf[..n],
                    });
                    if !queued {
                        // The guest link's queue is full this round: the
                        // data stays in the socket, sent next time, and the
                        // peek offset (which the peek moved) goes back.
                        c.blocked = true;
                        if c.sock.set_peek_offset(c.snd_nxt.since(c.snd_una)).is_err() {
                            send_rst(c, out);
                            return true;
                        }
                        break;
                    }
                    sent_any = true;
                    if c.snd_nxt == c.snd_una {
                        c.last_progress = now;
                    }
                    c.snd_nxt = c.snd_nxt.plus(n as u32);
                    c.ack_due = false;
                }
                Ok(Read::WouldBlock) => {
                    c.host_readable = false;
                    break;
                }
                Ok(Read::Eof) => {
                    let queued = out(Segment {
                        src: c.key.dst,
                        dst: c.key.guest,
                        seq: c.snd_nxt.0,
                        ack: c.rcv_nxt.0,
                        flags: tcpw::ACK | tcpw::FIN,
                        window: our_wnd,
                        options: Options::default(),
                        payload: &[],
                    });
                    if !queued {
                        c.blocked = true;
                        break;
                    }
                    c.fin_seq = Some(c.snd_nxt);
                    sent_any = true;
                    if c.snd_nxt == c.snd_una {
                        c.last_progress = now;
                    }
                    c.snd_nxt = c.snd_nxt.plus(1);
                    c.ack_due = false;
                }
                Err(_) => {
                    send_rst(c, out);
                    return true;
                }
            }
        }
        // Data the guest must resend, room for it, and nothing arriving
        // (or the socket just drained): ask for a fast retransmit.
        let nudge = c.missing.is_some()
            && space >= u32::from(c.guest_mss)
            && (std::mem::take(&mut c.drained) || now.duration_since(c.rcv_stamp) >= NUDGE_AFTER);
        if c.ack_due || nudge {
            let acks = if nudge { 3 } else { 1 };
            for _ in 0..acks {
                out(Segment {
                    src: c.key.dst,
                    dst: c.key.guest,
                    seq: c.snd_nxt.0,
                    ack: c.rcv_nxt.0,
                    flags: tcpw::ACK,
                    window: our_wnd,
                    options: Options::default(),
                    payload: &[],
                });
            }
            c.ack_due = false;
            if nudge {
                c.rcv_stamp = now;
            }
            sent_any = true;
        }
        if sent_any {
            c.wnd_sent = wnd_bytes;
        }
        c.guest_fin && c.fin_seq.is_some_and(|f| c.snd_una.after(f))
    }

    /// Periodic work: retransmission on timeout, window re-checks, and,
    /// at most every `SWEEP_EVERY`, the idle timeout.
    pub fn timer(&mut self, now: Instant, out: &mut dyn FnMut(Segment) -> bool) {
        let sweep = self.sweep_due(now);
        let mut ended = Vec::new();
        for (i, c) in self.slots.iter_mut() {
            if Self::tick(c, &mut self.buf, now, sweep, out) {
                ended.push(i);
            }
        }
        for i in ended {
            self.free(i, now);
        }
    }

    fn sweep_due(&mut self, now: Instant) -> bool {
        if self
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < SWEEP_EVERY)
        {
            return false;
        }
        self.last_sweep = Some(now);
        true
    }

    /// One flow's periodic work; `true` when the flow ends.
    fn tick(
        c: &mut Conn<S>,
        buf: &mut [u8],
        now: Instant,
        sweep: bool,
        out: &mut dyn FnMut(Segment) -> bool,
    ) -> bool {
        if sweep && now.duration_since(c.last_active) >= IDLE_TIMEOUT {
            send_rst(c, out);
            c.end = Some(End::Timeout);
            return true;
        }
        if c.state == State::SynSent {
            return Self::syn_timer(c, now, out);
        }
        let timer = Self::retransmit_timer(c, now);
        if timer == Retransmit::GiveUp {
            send_rst(c, out);
            c.end = Some(End::Timeout);
            return true;
        }
        // Only flows with something to resend, to ask for, or a small
        // window the guest may not know has opened: an idle flow costs
        // nothing here, so the table can grow large. A rewind leaves
        // nothing in flight, so it must count by itself, or the
        // retransmission waits for the next event on the flow.
        let busy = timer == Retransmit::Resent
            || c.snd_nxt != c.snd_una
            || c.missing.is_some()
            || c.ack_due
            || c.blocked
            || c.wnd_sent < 4 * u32::from(c.guest_mss);
        c.state != State::Connecting && busy && Self::push(c, buf, now, out)
    }

    /// Inbound: our SYN again, until the guest has had `SYN_TRIES`; `true`
    /// when we give up (and reset the client).
    fn syn_timer(c: &mut Conn<S>, now: Instant, out: &mut dyn FnMut(Segment) -> bool) -> bool {
        if now.duration_since(c.last_progress) < RTO {
            return false;
        }
        if c.syn_tries >= SYN_TRIES {
            c.sock.set_reset_on_close();
            c.end = Some(End::Timeout);
            return true;
        }
        c.last_progress = now;
        Self::send_syn(c, out);
        false
    }

    /// The retransmission timer of what we sent and the guest has not
    /// acknowledged: our SYN-ACK, or data and FIN.
    fn retransmit_timer(c: &mut Conn<S>, now: Instant) -> Retransmit {
        let waiting = match c.state {
            State::SynAckSent => true,
            State::Established => c.snd_nxt != c.snd_una,
            State::Connecting | State::SynSent => false,
        };
        if !waiting || now.duration_since(c.last_progress) < backoff(c.timeouts) {
            return Retransmit::Wait;
        }
        if c.timeouts >= MAX_RETRANSMITS {
            return Retransmit::GiveUp;
        }
        c.timeouts += 1;
        c.last_progress = now;
        if c.state == State::SynAckSent {
            c.ack_due = true; // push sends the SYN-ACK again
        } else {
            Self::rewind(c);
        }
        Retransmit::Resent
    }

    /// Resets every flow (the guest is gone: nothing will acknowledge).
    pub fn clear(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.bound() {
            if let Some(c) = self.slots.remove(i) {
                c.sock.set_reset_on_close();
                self.rec.end(&c.meta, End::Stopped, now);
            }
        }
        self.by_key.clear();
    }

    fn free(&mut self, index: usize, now: Instant) {
        if let Some(c) = self.slots.remove(index) {
            self.by_key.remove(&c.key);
            self.rec.end(&c.meta, c.ending(), now);
        }
    }
}

/// What a retransmission timer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retransmit {
    /// Not expired (or nothing to resend).
    Wait,
    /// Expired: what the guest has not acknowledged goes again.
    Resent,
    /// Expired once too often in a row: the guest is not answering.
    GiveUp,
}

/// The retransmission timeout after `timeouts` expiries in a row:
/// exponential backoff (RFC 6298, 5.5), capped.
fn backoff(timeouts: u8) -> Duration {
    RTO.saturating_mul(1 << timeouts.min(16)).min(RTO_MAX)
}

/// The window we offer out of `space` bytes of socket buffer: the kernel
/// charges its own overhead to the same buffer (a few percent for full
/// segments, more for small ones), and a window the socket cannot honour
/// loses data the guest has already sent.
fn usable(space: u32) -> u32 {
    space - space / 8
}

/// Records that guest data up to `end` was dropped and must come again.
fn note_missing<S>(c: &mut Conn<S>, end: Seq) {
    if c.missing.is_none_or(|m| end.after(m)) {
        c.missing = Some(end);
    }
}

/// A bare ACK of what we have, with the window last announced.
fn send_ack<S>(c: &Conn<S>, out: &mut dyn FnMut(Segment) -> bool) {
    out(Segment {
        src: c.key.dst,
        dst: c.key.guest,
        seq: c.snd_nxt.0,
        ack: c.rcv_nxt.0,
        flags: tcpw::ACK,
        window: c.wnd_field,
        options: Options::default(),
        payload: &[],
    });
}

fn send_rst<S: FlowSocket>(c: &Conn<S>, out: &mut dyn FnMut(Segment) -> bool) {
    c.sock.set_reset_on_close();
    out(Segment {
        src: c.key.dst,
        dst: c.key.guest,
        seq: c.snd_nxt.0,
        ack: c.rcv_nxt.0,
        flags: tcpw::RST | tcpw::ACK,
        window: 0,
        options: Options::default(),
        payload: &[],
    });
}

/// A RST answering `seg`, for which there is no flow.
fn reset_for(key: Key, seg: &tcpw::Repr, out: &mut dyn FnMut(Segment) -> bool) {
    let (seq, ack, flags) = if seg.flags & tcpw::ACK != 0 {
        (seg.ack, 0, tcpw::RST)
    } else {
        let len = seg.payload.len() as u32
            + u32::from(seg.flags & tcpw::SYN != 0)
            + u32::from(seg.flags & tcpw::FIN != 0);
        (0, seg.seq.wrapping_add(len), tcpw::RST | tcpw::ACK)
    };
    out(Segment {
        src: key.dst,
        dst: key.guest,
        seq,
        ack,
        flags,
        window: 0,
        options: Options::default(),
        payload: &[],
    });
}
