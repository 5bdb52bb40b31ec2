//! The flow logic driven as the engine drives it (guest segments, socket
//! events, timer ticks), over `FakeSocket` and a made-up clock; what
//! matters is what goes on the wire to the guest and what the host socket
//! is made to do.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::fake::FakeSocket;
use super::*;

const GUEST: &str = "192.0.2.2:40000";
const REMOTE: &str = "203.0.113.5:80";
const GUEST_ISN: u32 = 1_000_000;
/// The guest link's MTU: our MSS is 1440.
const MTU: u16 = 1500;
const OUR_MSS: u16 = 1440;
/// The guest's window field after the handshake (scaled by 2^7): 64 KiB.
const GUEST_WND_FIELD: u16 = 512;
/// The engine's timer period.
const TICK: Duration = Duration::from_millis(20);

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// A segment we sent, copied out of the `out` callback.
#[derive(Debug, Clone)]
struct Sent {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: Options,
    payload: Vec<u8>,
}

impl Sent {
    fn from(s: &Segment) -> Sent {
        Sent {
            src: s.src,
            dst: s.dst,
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            window: s.window,
            options: s.options,
            payload: s.payload.to_vec(),
        }
    }
}

/// A guest segment to build a `tcpw::Repr` from.
struct Guest<'a> {
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    options: Options,
    payload: &'a [u8],
}

impl<'a> Guest<'a> {
    fn repr(&self) -> tcpw::Repr<'a> {
        tcpw::Repr {
            src_port: addr(GUEST).port(),
            dst_port: addr(REMOTE).port(),
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            options: self.options,
            payload: self.payload,
        }
    }
}

fn syn_options() -> Options {
    Options {
        mss: Some(1460),
        wscale: Some(7),
        ..Options::default()
    }
}

/// The flow table, a clock and the guest link, as the engine has them.
struct Net {
    flows: TcpFlows<FakeSocket>,
    base: Instant,
    now: Instant,
    sent: Vec<Sent>,
    /// The guest link's queue refuses segments (`out` returns false).
    link_full: bool,
    refused: usize,
}

/// An outbound flow after its handshake.
struct Open {
    sock: FakeSocket,
    index: usize,
    gen: u8,
    /// Our ISN: our first data byte is `isn + 1`.
    isn: u32,
}

impl Open {
    fn data_seq(&self, offset: u32) -> u32 {
        self.isn.wrapping_add(1).wrapping_add(offset)
    }
}

impl Net {
    fn new() -> Net {
        let base = Instant::now();
        Net {
            flows: TcpFlows::new(GatewayMap::default(), MTU),
            base,
            now: base,
            sent: Vec::new(),
            link_full: false,
            refused: 0,
        }
    }

    fn at(&mut self, since_base: Duration) {
        self.now = self.base + since_base;
    }

    fn later(&mut self, d: Duration) {
        self.now += d;
    }

    fn take(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }

    /// Runs `f` with an `out` that records segments (or refuses them when
    /// the link is full).
    fn run<R>(
        &mut self,
        f: impl FnOnce(&mut TcpFlows<FakeSocket>, Instant, &mut dyn FnMut(Segment) -> bool) -> R,
    ) -> R {
        let (sent, refused, full) = (&mut self.sent, &mut self.refused, self.link_full);
        let mut out = |s: Segment| {
            if full {
                *refused += 1;
                return false;
            }
            sent.push(Sent::from(&s));
            true
        };
        f(&mut self.flows, self.now, &mut out)
    }

    fn guest(&mut self, g: Guest) -> Result<Option<Registration>, DropReason> {
        let repr = g.repr();
        self.run(|flows, now, out| flows.guest_segment(addr(GUEST), addr(REMOTE), &repr, now, out))
    }

    fn event(&mut self, index: usize, gen: u8, writable: bool) -> Option<Registration> {
        self.run(|flows, now, out| flows.socket_event(index, gen, writable, now, out))
    }

    fn tick(&mut self) {
        self.run(|flows, now, out| flows.timer(now, out));
    }

    fn accept(&mut self, sock: FakeSocket) {
        self.run(|flows, now, out| {
            flows.accepted(sock, (addr(REMOTE), addr(REMOTE)), addr(GUEST), now, out)
        });
    }

    fn syn(&mut self) -> Result<Option<Registration>, DropReason> {
        self.guest(Guest {
            flags: tcpw::SYN,
            seq: GUEST_ISN,
            ack: 0,
            window: 64240,
            options: syn_options(),
            payload: &[],
        })
    }

    /// A guest ACK (with data, maybe) at the guest's `offset`-th byte.
    fn ack(&mut self, offset: u32, ack: u32, payload: &[u8]) -> Option<Registration> {
        self.segment(tcpw::ACK, offset, ack, payload)
    }

    /// A guest segment at the guest's `offset`-th byte, to the open flow.
    fn segment(
        &mut self,
        flags: u8,
        offset: u32,
        ack: u32,
        payload: &[u8],
    ) -> Option<Registration> {
        self.guest(Guest {
            flags,
            seq: GUEST_ISN.wrapping_add(1).wrapping_add(offset),
            ack,
            window: GUEST_WND_FIELD,
            options: Options::default(),
            payload,
        })
        .expect("segment for a known flow")
    }

    /// Guest SYN, connect completes, SYN-ACK, guest ACK; the segments of
    /// the handshake are taken.
    fn open(&mut self) -> Open {
        let Ok(Some(Registration::New { index, gen })) = self.syn() else {
            panic!("a SYN makes a new flow");
        };
        let sock = FakeSocket::last_connected().expect("connect called");
        assert_eq!(
            self.event(index, gen, true),
            Some(Registration::Connected { index, gen })
        );
        let isn = self.take()[0].seq;
        let o = Open {
            sock,
            index,
            gen,
            isn,
        };
        self.ack(0, isn.wrapping_add(1), &[]);
        self.take();
        o
    }

    /// Ticks every `TICK` from now until `until` (since base), and returns
    /// when (since base) each segment went out.
    fn tick_until(&mut self, until: Duration) -> Vec<(Duration, Sent)> {
        let mut log = Vec::new();
        while self.now - self.base + TICK <= until {
            self.later(TICK);
            self.tick();
            let when = self.now - self.base;
            log.extend(self.take().into_iter().map(|s| (when, s)));
        }
        log
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Our window field for `space` bytes of free send buffer, scaled by 2^7.
fn scaled_window(space: u32) -> u16 {
    ((space - space / 8) >> 7) as u16
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// --- Handshake ------------------------------------------------------------

#[test]
fn outbound_syn_is_answered_once_connect_completes() {
    let mut net = Net::new();
    let Ok(Some(Registration::New { index, gen })) = net.syn() else {
        panic!("a SYN makes a new flow");
    };
    assert!(
        net.take().is_empty(),
        "nothing for the guest before connect"
    );
    let sock = FakeSocket::last_connected().expect("connect called");
    assert_eq!(sock.state().dst, Some(addr(REMOTE)));

    // Readable-only events while connecting change nothing.
    assert_eq!(net.event(index, gen, false), None);
    assert!(net.take().is_empty());

    assert_eq!(
        net.event(index, gen, true),
        Some(Registration::Connected { index, gen })
    );
    let out = net.take();
    assert_eq!(out.len(), 1);
    let s = &out[0];
    assert_eq!(s.flags, tcpw::SYN | tcpw::ACK);
    assert_eq!(s.ack, GUEST_ISN + 1);
    assert_eq!((s.src, s.dst), (addr(REMOTE), addr(GUEST)));
    assert_eq!(s.options.mss, Some(OUR_MSS));
    assert_eq!(s.options.wscale, Some(7));
    assert!(s.payload.is_empty());
    // The SYN-ACK's window is not scaled.
    assert_eq!(s.window, u16::MAX);
    assert_eq!(net.flows.len(), 1);
}

#[test]
fn syn_without_window_scaling_gets_none_back() {
    let mut net = Net::new();
    let r = net.guest(Guest {
        flags: tcpw::SYN,
        seq: GUEST_ISN,
        ack: 0,
        window: 64240,
        options: Options {
            mss: Some(1460),
            ..Options::default()
        },
        payload: &[],
    });
    let Ok(Some(Registration::New { index, gen })) = r else {
        panic!("a SYN makes a new flow");
    };
    net.event(index, gen, true);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].options.wscale, None);
    assert_eq!(out[0].options.mss, Some(OUR_MSS));
}

#[test]
fn connect_error_resets_the_guest_and_frees_the_flow() {
    let mut net = Net::new();
    let Ok(Some(Registration::New { index, gen })) = net.syn() else {
        panic!("a SYN makes a new flow");
    };
    let sock = FakeSocket::last_connected().expect("connect called");
    sock.state().connect_error = Some(libc::ECONNREFUSED);
    assert_eq!(net.event(index, gen, true), None);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::RST | tcpw::ACK);
    assert_eq!(out[0].ack, GUEST_ISN + 1);
    assert!(sock.state().reset_on_close);
    assert_eq!(net.flows.len(), 0);
    assert!(net.flows.socket(index, gen).is_none());

    // The guest tries again: a new flow, a new socket, a new generation.
    let before = FakeSocket::connected_count();
    let Ok(Some(Registration::New { index: i2, gen: g2 })) = net.syn() else {
        panic!("a new SYN makes a new flow");
    };
    assert_eq!(FakeSocket::connected_count(), before + 1);
    assert_ne!((i2, g2), (index, gen));
    assert_eq!(net.flows.len(), 1);
    // A stale event for the old flow is ignored.
    assert_eq!(net.event(index, gen, true), None);
    assert!(net.take().is_empty());
}

#[test]
fn connect_failing_at_once_resets_the_guest() {
    let mut net = Net::new();
    FakeSocket::refuse_next_connect();
    assert_eq!(net.syn(), Ok(None));
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::RST | tcpw::ACK);
    assert_eq!(out[0].ack, GUEST_ISN + 1);
    assert_eq!(net.flows.len(), 0);
}

#[test]
fn retransmitted_syn_gets_the_syn_ack_again() {
    let mut net = Net::new();
    let Ok(Some(Registration::New { index, gen })) = net.syn() else {
        panic!("a SYN makes a new flow");
    };
    net.event(index, gen, true);
    let first = net.take();
    assert_eq!(net.syn(), Ok(None));
    let again = net.take();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].flags, tcpw::SYN | tcpw::ACK);
    assert_eq!(again[0].seq, first[0].seq);
    assert_eq!(again[0].ack, GUEST_ISN + 1);
}

// --- Guest data -----------------------------------------------------------

#[test]
fn guest_data_is_acknowledged_only_as_far_as_the_socket_took_it() {
    let mut net = Net::new();
    let o = net.open();
    let una = o.data_seq(0);
    o.sock.state().capacity = 5000;
    let d = data(6000);

    assert_eq!(net.ack(0, una, &d[..2000]), None);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::ACK);
    assert_eq!(out[0].ack, GUEST_ISN + 1 + 2000);

    // Only 3000 bytes fit: only they are acknowledged, and the full socket
    // is watched for room.
    let reg = net.ack(2000, una, &d[2000..]);
    assert_eq!(
        reg,
        Some(Registration::Writable {
            index: o.index,
            gen: o.gen,
            on: true
        })
    );
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, GUEST_ISN + 1 + 5000);
    assert_eq!(out[0].window, 0);
    assert_eq!(o.sock.all_sent(), d[..5000]);
}

#[test]
fn advertised_window_follows_the_socket_free_space() {
    let mut net = Net::new();
    let o = net.open();
    let una = o.data_seq(0);
    o.sock.state().capacity = 100_000;
    let d = data(2 * 1460);

    net.ack(0, una, &d[..1460]);
    let w1 = net.take()[0].window;
    assert_eq!(w1, scaled_window(100_000 - 1460));
    net.ack(1460, una, &d[1460..]);
    let w2 = net.take()[0].window;
    assert_eq!(w2, scaled_window(100_000 - 2 * 1460));
    assert!(w2 < w1);
}

#[test]
fn drained_socket_opens_the_window_and_asks_for_refused_data() {
    let mut net = Net::new();
    let o = net.open();
    let una = o.data_seq(0);
    o.sock.state().capacity = 5000;
    let d = data(6000);
    net.ack(0, una, &d[..2000]);
    net.ack(2000, una, &d[2000..]);
    net.take();

    o.sock.drain(5000);
    assert_eq!(
        net.event(o.index, o.gen, true),
        Some(Registration::Writable {
            index: o.index,
            gen: o.gen,
            on: false
        })
    );
    let out = net.take();
    // Three duplicate ACKs in the window update: a fast retransmit of
    // what the socket refused.
    assert_eq!(out.len(), 3);
    for s in &out {
        assert_eq!(s.flags, tcpw::ACK);
        assert_eq!(s.ack, GUEST_ISN + 1 + 5000);
        assert_eq!(s.window, scaled_window(5000));
    }

    // The guest resends: taken and acknowledged.
    net.ack(5000, una, &d[5000..]);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, GUEST_ISN + 1 + 6000);
    assert_eq!(o.sock.all_sent(), d);
}

#[test]
fn data_after_a_gap_is_not_acknowledged() {
    let mut net = Net::new();
    let o = net.open();
    let una = o.data_seq(0);
    let d = data(3000);

    net.ack(1000, una, &d[1000..2000]);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, GUEST_ISN + 1, "nothing past the gap");
    assert!(o.sock.all_sent().is_empty(), "nothing buffered");
}

#[test]
fn a_hole_is_asked_for_with_three_duplicate_acks_after_nudge_after() {
    let mut net = Net::new();
    let o = net.open();
    let una = o.data_seq(0);
    let d = data(3000);

    net.at(ms(100));
    net.ack(0, una, &d[..1000]);
    net.ack(2000, una, &d[2000..]); // bytes 1000..2000 lost
    let out = net.take();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|s| s.ack == GUEST_ISN + 1 + 1000));

    net.at(ms(100) + NUDGE_AFTER - ms(1));
    net.tick();
    assert!(net.take().is_empty(), "too early to ask");

    net.at(ms(100) + NUDGE_AFTER);
    net.tick();
    let out = net.take();
    assert_eq!(out.len(), 3);
    let window = out[0].window;
    for s in &out {
        assert_eq!(s.flags, tcpw::ACK);
        assert_eq!(s.ack, GUEST_ISN + 1 + 1000);
        // An unchanged window, or the guest does not count duplicates.
        assert_eq!(s.window, window);
        assert!(s.payload.is_empty());
    }
    net.later(ms(1));
    net.tick();
    assert!(net.take().is_empty(), "asked once, not every tick");

    // The guest fills the hole and resends what followed.
    net.ack(1000, una, &d[1000..]);
    assert_eq!(net.take().last().map(|s| s.ack), Some(GUEST_ISN + 1 + 3000));
    assert_eq!(o.sock.all_sent(), d);
    net.later(NUDGE_AFTER * 2);
    net.tick();
    assert!(net.take().is_empty(), "nothing missing any more");
}

#[test]
fn keepalive_gets_an_ack_with_rcv_nxt() {
    let mut net = Net::new();
    let o = net.open();
    let una = o.data_seq(0);
    net.ack(0, una, &data(10));
    net.take();
    // seq = rcv_nxt - 1, no data.
    net.ack(9, una, &[]);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::ACK);
    assert_eq!(out[0].ack, GUEST_ISN + 1 + 10);
    assert_eq!(out[0].seq, una);
    assert_eq!(net.flows.len(), 1);
}

// --- Host data ------------------------------------------------------------

#[test]
fn host_data_goes_in_guest_mss_segments_within_the_guest_window() {
    let mut net = Net::new();
    let o = net.open();
    let d = data(10_000);
    // A 5120-byte guest window.
    net.guest(Guest {
        flags: tcpw::ACK,
        seq: GUEST_ISN + 1,
        ack: o.data_seq(0),
        window: 40,
        options: Options::default(),
        payload: &[],
    })
    .expect("known flow");
    net.take();

    o.sock.host_sends(&d);
    assert_eq!(net.event(o.index, o.gen, false), None);
    let out = net.take();
    let lens: Vec<usize> = out.iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, [1460, 1460, 1460, 740]);
    let mut off = 0;
    for s in &out {
        assert_eq!(s.seq, o.data_seq(off as u32));
        assert_eq!(s.ack, GUEST_ISN + 1);
        assert_eq!(s.flags, tcpw::ACK | tcpw::PSH);
        assert_eq!(s.payload, d[off..off + s.payload.len()]);
        off += s.payload.len();
    }

    // The guest acknowledges two segments: exactly those bytes go, and
    // the window they free is filled from where we were.
    net.guest(Guest {
        flags: tcpw::ACK,
        seq: GUEST_ISN + 1,
        ack: o.data_seq(2920),
        window: 40,
        options: Options::default(),
        payload: &[],
    })
    .expect("known flow");
    assert_eq!(o.sock.state().discards, [2920]);
    assert_eq!(o.sock.state().rx.len(), 10_000 - 2920);
    let out = net.take();
    let lens: Vec<usize> = out.iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, [1460, 1460]);
    assert_eq!(out[0].seq, o.data_seq(5120));
    assert_eq!(out[1].seq, o.data_seq(5120 + 1460));
    assert_eq!(out[0].payload, d[5120..5120 + 1460]);
}

#[test]
fn three_duplicate_acks_resend_from_snd_una() {
    let mut net = Net::new();
    let o = net.open();
    let d = data(5000);
    o.sock.host_sends(&d);
    net.event(o.index, o.gen, false);
    let first = net.take();
    assert_eq!(first.len(), 4);

    // The guest got the first segment only.
    let una = o.data_seq(1460);
    net.ack(0, una, &[]);
    assert!(net.take().is_empty());
    for _ in 0..2 {
        net.ack(0, una, &[]);
        assert!(net.take().is_empty(), "two duplicates are not enough");
    }
    net.ack(0, una, &[]);
    let out = net.take();
    let seqs: Vec<u32> = out.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [o.data_seq(1460), o.data_seq(2920), o.data_seq(4380)]);
    assert_eq!(out[0].payload, d[1460..2920]);
    assert_eq!(out[2].payload, d[4380..]);
}

#[test]
fn a_window_update_is_not_a_duplicate_ack() {
    let mut net = Net::new();
    let o = net.open();
    o.sock.host_sends(&data(5000));
    net.event(o.index, o.gen, false);
    net.take();
    for w in [500, 510, 520] {
        net.guest(Guest {
            flags: tcpw::ACK,
            seq: GUEST_ISN + 1,
            ack: o.data_seq(0),
            window: w,
            options: Options::default(),
            payload: &[],
        })
        .expect("known flow");
    }
    assert!(net.take().is_empty(), "no resend for window updates");
}

#[test]
fn rto_without_progress_resends_from_snd_una() {
    let mut net = Net::new();
    let o = net.open();
    let d = data(3000);
    o.sock.host_sends(&d);
    net.event(o.index, o.gen, false);
    assert_eq!(net.take().len(), 3);

    net.at(RTO - ms(1));
    net.tick();
    assert!(net.take().is_empty());
    net.at(RTO);
    net.tick();
    let out = net.take();
    let seqs: Vec<u32> = out.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [o.data_seq(0), o.data_seq(1460), o.data_seq(2920)]);
    assert_eq!(out[0].payload, d[..1460]);
    assert!(o.sock.state().discards.is_empty());
}

#[test]
fn a_full_guest_link_keeps_the_data_for_the_next_tick() {
    let mut net = Net::new();
    let o = net.open();
    let d = data(1000);
    o.sock.host_sends(&d);
    net.link_full = true;
    net.event(o.index, o.gen, false);
    assert_eq!(net.refused, 1);
    assert_eq!(o.sock.state().peek_off, 0, "peek offset rewound");

    net.link_full = false;
    net.later(TICK);
    net.tick();
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].seq, o.data_seq(0));
    assert_eq!(out[0].payload, d);
}

// --- Timeouts -------------------------------------------------------------

/// Retransmission times expected for a flow whose guest never answers:
/// 400 ms doubling to 10 s, nine times; the reset at the tenth expiry.
fn expected_backoff() -> (Vec<Duration>, Duration) {
    let resends = [
        400, 1200, 2800, 6000, 12_400, 22_400, 32_400, 42_400, 52_400,
    ];
    (resends.iter().map(|&t| ms(t)).collect(), ms(62_400))
}

/// Ticks a flow that gets no answer; returns when `what` went out again,
/// and when the flow was reset.
fn silent_guest(net: &mut Net, o: &Open, what: u8) -> (Vec<Duration>, Option<Duration>) {
    let start = net.now - net.base;
    let log = net.tick_until(start + ms(70_000));
    let resends = log
        .iter()
        .filter(|(_, s)| s.flags & what == what && s.flags & tcpw::RST == 0)
        .map(|(t, _)| *t - start)
        .collect();
    let reset = log
        .iter()
        .find(|(_, s)| s.flags & tcpw::RST != 0)
        .map(|(t, _)| *t - start);
    if reset.is_some() {
        assert!(o.sock.state().reset_on_close);
        assert_eq!(net.flows.len(), 0);
        assert!(net.flows.socket(o.index, o.gen).is_none());
    }
    (resends, reset)
}

#[test]
fn retransmissions_back_off_and_give_up_after_about_a_minute() {
    let mut net = Net::new();
    let o = net.open();
    o.sock.host_sends(&data(100));
    net.event(o.index, o.gen, false);
    assert_eq!(net.take().len(), 1);

    let (resends, reset) = silent_guest(&mut net, &o, tcpw::PSH);
    let (want, give_up) = expected_backoff();
    assert_eq!(resends, want);
    assert_eq!(reset, Some(give_up));
}

#[test]
fn the_reset_after_giving_up_goes_to_the_guest() {
    let mut net = Net::new();
    let o = net.open();
    o.sock.host_sends(&data(100));
    net.event(o.index, o.gen, false);
    net.take();
    let log = net.tick_until(ms(63_000));
    let (_, rst) = log.last().expect("something was sent");
    assert_eq!(rst.flags, tcpw::RST | tcpw::ACK);
    assert_eq!((rst.src, rst.dst), (addr(REMOTE), addr(GUEST)));
    assert_eq!(rst.ack, GUEST_ISN + 1);
}

#[test]
fn progress_resets_the_backoff() {
    let mut net = Net::new();
    let o = net.open();
    o.sock.host_sends(&data(3000));
    net.event(o.index, o.gen, false);
    net.take();
    // Two timeouts: at 400 and 1200 ms.
    let log = net.tick_until(ms(1300));
    let times: Vec<Duration> = log.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        times,
        [ms(400), ms(400), ms(400), ms(1200), ms(1200), ms(1200)]
    );

    net.at(ms(1300));
    net.ack(0, o.data_seq(1460), &[]);
    assert!(net.take().is_empty());
    // The next timeout is one RTO after the progress, not 1.6 s.
    let log = net.tick_until(ms(1300) + RTO);
    let first: Vec<(Duration, u32)> = log.iter().map(|(t, s)| (*t, s.seq)).collect();
    assert_eq!(
        first,
        [(ms(1700), o.data_seq(1460)), (ms(1700), o.data_seq(2920))]
    );
}

#[test]
fn a_fin_never_acknowledged_gives_up_too() {
    let mut net = Net::new();
    let o = net.open();
    o.sock.state().eof = true;
    net.event(o.index, o.gen, false);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::ACK | tcpw::FIN);

    let (resends, reset) = silent_guest(&mut net, &o, tcpw::FIN);
    let (want, give_up) = expected_backoff();
    assert_eq!(resends, want);
    assert_eq!(reset, Some(give_up));
}

#[test]
fn an_unanswered_syn_ack_is_resent_and_given_up() {
    let mut net = Net::new();
    let Ok(Some(Registration::New { index, gen })) = net.syn() else {
        panic!("a SYN makes a new flow");
    };
    let sock = FakeSocket::last_connected().expect("connect called");
    net.event(index, gen, true);
    let syn_ack = net.take();
    assert_eq!(syn_ack.len(), 1);
    let o = Open {
        sock,
        index,
        gen,
        isn: syn_ack[0].seq,
    };
    let (resends, reset) = silent_guest(&mut net, &o, tcpw::SYN | tcpw::ACK);
    let (want, give_up) = expected_backoff();
    assert_eq!(resends, want);
    assert_eq!(reset, Some(give_up));
}

#[test]
fn an_idle_flow_is_reset_after_the_idle_timeout() {
    let mut net = Net::new();
    let o = net.open();
    net.at(IDLE_TIMEOUT - Duration::from_secs(1));
    net.tick();
    assert!(net.take().is_empty());
    assert_eq!(net.flows.len(), 1);

    net.at(IDLE_TIMEOUT);
    net.tick();
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::RST | tcpw::ACK);
    assert_eq!(out[0].seq, o.data_seq(0));
    assert_eq!(out[0].ack, GUEST_ISN + 1);
    assert!(o.sock.state().reset_on_close);
    assert_eq!(net.flows.len(), 0);
}

#[test]
fn a_guest_keepalive_keeps_a_flow_alive() {
    let mut net = Net::new();
    let o = net.open();
    let hour = Duration::from_secs(3600);
    net.at(hour);
    net.guest(Guest {
        flags: tcpw::ACK,
        seq: GUEST_ISN, // rcv_nxt - 1
        ack: o.data_seq(0),
        window: GUEST_WND_FIELD,
        options: Options::default(),
        payload: &[],
    })
    .expect("known flow");
    assert_eq!(net.take().len(), 1, "the keepalive is answered");

    net.at(IDLE_TIMEOUT + Duration::from_secs(1));
    net.tick();
    assert!(net.take().is_empty());
    assert_eq!(net.flows.len(), 1);
    assert!(!o.sock.state().reset_on_close);

    net.at(hour + IDLE_TIMEOUT);
    net.tick();
    assert_eq!(net.flows.len(), 0);
    assert!(o.sock.state().reset_on_close);
}

#[test]
fn host_data_keeps_a_flow_alive() {
    let mut net = Net::new();
    let o = net.open();
    let hour = Duration::from_secs(3600);
    // The guest closes its window at one hour; the host sends at two,
    // and the data waits in the socket.
    net.at(hour);
    net.guest(Guest {
        flags: tcpw::ACK,
        seq: GUEST_ISN + 1,
        ack: o.data_seq(0),
        window: 0,
        options: Options::default(),
        payload: &[],
    })
    .expect("known flow");
    net.at(2 * hour);
    o.sock.host_sends(b"x");
    net.event(o.index, o.gen, false);
    assert!(net.take().is_empty(), "the guest's window is closed");

    net.at(hour + IDLE_TIMEOUT + Duration::from_secs(1));
    net.tick();
    assert_eq!(net.flows.len(), 1);
    net.at(2 * hour + IDLE_TIMEOUT);
    net.tick();
    assert_eq!(net.flows.len(), 0);
    assert!(o.sock.state().reset_on_close);
}

#[test]
fn the_idle_check_runs_once_a_second_not_every_tick() {
    let mut net = Net::new();
    let _o = net.open();
    let sweep = IDLE_TIMEOUT - ms(10);
    net.at(sweep);
    net.tick();
    // Past the idle timeout, but within a second of the last sweep.
    net.at(sweep + TICK);
    net.tick();
    assert_eq!(net.flows.len(), 1);
    assert!(net.take().is_empty());
    net.at(sweep + Duration::from_secs(1));
    net.tick();
    assert_eq!(net.flows.len(), 0);
}

// --- Closing --------------------------------------------------------------

#[test]
fn guest_fin_shuts_the_socket_write_side_and_is_acknowledged() {
    let mut net = Net::new();
    let o = net.open();
    let d = data(100);
    net.segment(tcpw::ACK | tcpw::FIN, 0, o.data_seq(0), &d);
    assert_eq!(o.sock.all_sent(), d);
    assert!(o.sock.state().shut_wr);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, GUEST_ISN + 1 + 100 + 1);
    assert_eq!(net.flows.len(), 1, "the host may still send");

    // The host still sends: delivered as usual.
    o.sock.host_sends(b"reply");
    net.event(o.index, o.gen, false);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, b"reply");
}

#[test]
fn guest_fin_refused_with_its_data_is_not_taken() {
    let mut net = Net::new();
    let o = net.open();
    o.sock.state().capacity = 50;
    net.segment(tcpw::ACK | tcpw::FIN, 0, o.data_seq(0), &data(100));
    assert!(
        !o.sock.state().shut_wr,
        "the FIN comes after data we refused"
    );
    assert_eq!(net.take()[0].ack, GUEST_ISN + 1 + 50);
}

#[test]
fn host_eof_becomes_a_fin_after_the_data() {
    let mut net = Net::new();
    let o = net.open();
    let d = data(1000);
    o.sock.host_sends(&d);
    o.sock.state().eof = true;
    net.event(o.index, o.gen, false);
    let out = net.take();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].payload, d);
    assert_eq!(out[0].flags & tcpw::FIN, 0);
    assert_eq!(out[1].flags, tcpw::ACK | tcpw::FIN);
    assert_eq!(out[1].seq, o.data_seq(1000));
    assert_eq!(net.flows.len(), 1);
}

#[test]
fn the_flow_ends_when_both_fins_are_acknowledged_guest_first() {
    let mut net = Net::new();
    let o = net.open();
    net.segment(tcpw::ACK | tcpw::FIN, 0, o.data_seq(0), &[]);
    assert_eq!(net.take()[0].ack, GUEST_ISN + 2);

    o.sock.state().eof = true;
    net.event(o.index, o.gen, false);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::ACK | tcpw::FIN);
    assert_eq!(out[0].ack, GUEST_ISN + 2);
    assert_eq!(net.flows.len(), 1, "our FIN is not acknowledged yet");

    net.ack(1, o.data_seq(1), &[]);
    assert_eq!(net.flows.len(), 0);
    assert!(!o.sock.state().reset_on_close, "a clean close");
    assert!(net.take().is_empty(), "an ACK is not acknowledged");
}

#[test]
fn the_flow_ends_when_both_fins_are_acknowledged_host_first() {
    let mut net = Net::new();
    let o = net.open();
    o.sock.state().eof = true;
    net.event(o.index, o.gen, false);
    let fin = net.take();
    assert_eq!(fin[0].flags, tcpw::ACK | tcpw::FIN);
    net.ack(0, o.data_seq(1), &[]);
    assert_eq!(net.flows.len(), 1, "the guest may still send");

    net.segment(tcpw::ACK | tcpw::FIN, 0, o.data_seq(1), &[]);
    assert!(o.sock.state().shut_wr);
    assert_eq!(net.flows.len(), 0);
    assert!(!o.sock.state().reset_on_close, "a clean close");
    // The guest's FIN is acknowledged even though the flow is gone.
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::ACK);
    assert_eq!(out[0].ack, GUEST_ISN + 2);
    assert_eq!(out[0].seq, o.data_seq(1));
}

#[test]
fn guest_rst_resets_the_socket_and_frees_the_flow() {
    let mut net = Net::new();
    let o = net.open();
    net.segment(tcpw::RST, 0, 0, &[]);
    assert!(o.sock.state().reset_on_close);
    assert_eq!(net.flows.len(), 0);
    assert!(net.take().is_empty(), "no answer to a RST");
    assert!(net.flows.socket(o.index, o.gen).is_none());
}

#[test]
fn an_ack_for_an_unknown_flow_gets_a_rst_with_its_ack_as_seq() {
    let mut net = Net::new();
    net.guest(Guest {
        flags: tcpw::ACK,
        seq: 5,
        ack: 777_777,
        window: 100,
        options: Options::default(),
        payload: &[],
    })
    .expect("answered");
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::RST);
    assert_eq!(out[0].seq, 777_777);
    assert_eq!((out[0].src, out[0].dst), (addr(REMOTE), addr(GUEST)));
    assert_eq!(net.flows.len(), 0);

    // A RST for an unknown flow gets nothing.
    net.guest(Guest {
        flags: tcpw::RST,
        seq: 5,
        ack: 0,
        window: 0,
        options: Options::default(),
        payload: &[],
    })
    .expect("ignored");
    assert!(net.take().is_empty());
}

// --- Inbound --------------------------------------------------------------

#[test]
fn inbound_syn_is_resent_on_rto_and_given_up_after_syn_tries() {
    let mut net = Net::new();
    let sock = FakeSocket::new();
    net.accept(sock.clone());
    let first = net.take();
    assert_eq!(first.len(), 1);
    let syn = &first[0];
    assert_eq!(syn.flags, tcpw::SYN);
    assert_eq!((syn.src, syn.dst), (addr(REMOTE), addr(GUEST)));
    assert_eq!(syn.options.mss, Some(OUR_MSS));
    assert_eq!(syn.options.wscale, Some(7));
    assert_eq!(net.flows.len(), 1);

    let log = net.tick_until(ms(5000));
    let resends: Vec<Duration> = log.iter().map(|(t, _)| *t).collect();
    assert_eq!(resends, [ms(400), ms(800), ms(1200), ms(1600), ms(2000)]);
    assert!(log
        .iter()
        .all(|(_, s)| s.flags == tcpw::SYN && s.seq == syn.seq));
    assert_eq!(1 + resends.len(), usize::from(SYN_TRIES));
    assert!(sock.state().reset_on_close);
    assert_eq!(net.flows.len(), 0);
}

fn syn_ack_from_guest(syn_seq: u32) -> Guest<'static> {
    Guest {
        flags: tcpw::SYN | tcpw::ACK,
        seq: GUEST_ISN,
        ack: syn_seq.wrapping_add(1),
        window: 64240,
        options: syn_options(),
        payload: &[],
    }
}

#[test]
fn inbound_guest_syn_ack_establishes_and_is_acknowledged() {
    let mut net = Net::new();
    let sock = FakeSocket::new();
    net.accept(sock.clone());
    let syn_seq = net.take()[0].seq;

    // A SYN-ACK for something else changes nothing.
    let wrong = net.guest(syn_ack_from_guest(syn_seq.wrapping_add(5)));
    assert_eq!(wrong, Ok(None));
    assert!(net.take().is_empty());

    let reg = net.guest(syn_ack_from_guest(syn_seq));
    let Ok(Some(Registration::Established { index, gen })) = reg else {
        panic!("the SYN-ACK establishes the flow: {reg:?}");
    };
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, tcpw::ACK);
    assert_eq!(out[0].seq, syn_seq.wrapping_add(1));
    assert_eq!(out[0].ack, GUEST_ISN + 1);

    // Host data flows once the socket is watched.
    sock.host_sends(b"hello");
    net.event(index, gen, false);
    let out = net.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].seq, syn_seq.wrapping_add(1));
    assert_eq!(out[0].payload, b"hello");

    // Established: no more SYNs on the timer.
    let log = net.tick_until(ms(300));
    assert!(log.iter().all(|(_, s)| s.flags & tcpw::SYN == 0));
}

#[test]
fn inbound_guest_rst_resets_the_host_socket() {
    let mut net = Net::new();
    let sock = FakeSocket::new();
    net.accept(sock.clone());
    let syn_seq = net.take()[0].seq;
    net.guest(Guest {
        flags: tcpw::RST | tcpw::ACK,
        seq: 0,
        ack: syn_seq.wrapping_add(1),
        window: 0,
        options: Options::default(),
        payload: &[],
    })
    .expect("known flow");
    assert!(sock.state().reset_on_close);
    assert_eq!(net.flows.len(), 0);
    assert!(net.take().is_empty());
}

#[test]
fn a_second_connection_for_the_same_ports_is_refused() {
    let mut net = Net::new();
    let a = FakeSocket::new();
    let b = FakeSocket::new();
    net.accept(a.clone());
    net.take();
    net.accept(b.clone());
    assert!(net.take().is_empty());
    assert!(b.state().reset_on_close);
    assert!(!a.state().reset_on_close);
    assert_eq!(net.flows.len(), 1);
}
