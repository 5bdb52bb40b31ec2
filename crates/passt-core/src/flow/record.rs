//! What a flow is, for the people watching: its addresses on both sides,
//! its bytes, when it started and how it ended. Every flow table keeps a
//! `Meta` per flow (a few counters, no allocation) and one `Recorder`,
//! which collects opened and ended flows only while someone listens
//! (a flow-end hook, `--log-flows`, an API user), so a flow costs nothing
//! more when no one does.
//!
//! Invariant: `Recorder::totals` plus the live flows' `Meta::bytes` is
//! every payload byte the table carried.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Started by the guest.
    Outbound,
    /// Started by a host-side client of a forward.
    Inbound,
}

impl Direction {
    pub fn of(inbound: bool) -> Self {
        if inbound {
            Direction::Inbound
        } else {
            Direction::Outbound
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// A flow as its originator addressed it. Outbound: `src` the guest,
/// `dst` what it addressed. Inbound: `src` the client's real address,
/// `dst` the guest address and port it reaches. ICMP echo: the port is
/// the echo identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowInfo {
    pub proto: Proto,
    pub direction: Direction,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// How a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides finished (TCP).
    Closed,
    /// Either side reset it, or the host refused the connection.
    Reset,
    /// Idle (datagram flows end this way), or the peer stopped answering.
    Timeout,
    /// A policy hook said no.
    Rejected,
    /// A socket failed.
    Error,
    /// The engine stopped or the guest went away.
    Stopped,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::Reset => "reset",
            End::Timeout => "timeout",
            End::Rejected => "rejected",
            End::Error => "error",
            End::Stopped => "stopped",
        }
    }
}

/// A flow that was opened: `mapped` is (source, destination) on the other
/// side of the engine (outbound: the host socket's local and remote
/// address; inbound: what the guest sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub info: FlowInfo,
    pub mapped: (SocketAddr, SocketAddr),
}

/// A flow that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    pub info: FlowInfo,
    pub mapped: (SocketAddr, SocketAddr),
    pub bytes_from_guest: u64,
    pub bytes_to_guest: u64,
    pub started: SystemTime,
    pub duration: Duration,
    pub end: End,
}

/// Per-flow bookkeeping.
#[derive(Debug, Clone)]
pub struct Meta {
    pub info: FlowInfo,
    pub mapped: (SocketAddr, SocketAddr),
    /// Payload bytes: [from the guest, to the guest].
    pub bytes: [u64; 2],
    started: SystemTime,
    t0: Instant,
}

impl Meta {
    pub fn new(info: FlowInfo, mapped: (SocketAddr, SocketAddr), now: Instant) -> Self {
        Meta {
            info,
            mapped,
            bytes: [0; 2],
            started: SystemTime::now(),
            t0: now,
        }
    }

    pub fn from_guest(&mut self, n: usize) {
        self.bytes[0] += n as u64;
    }

    pub fn to_guest(&mut self, n: usize) {
        self.bytes[1] += n as u64;
    }
}

/// One table's record of opened and ended flows.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Collect ended flows (someone listens).
    pub on_end: bool,
    /// Collect opened flows.
    pub on_open: bool,
    pub ended: Vec<FlowRecord>,
    pub opened: Vec<Opened>,
    /// Bytes of flows that ended: [from the guest, to the guest].
    pub totals: [u64; 2],
}

impl Recorder {
    pub fn open(&mut self, m: &Meta) {
        if self.on_open {
            self.opened.push(Opened {
                info: m.info,
                mapped: m.mapped,
            });
        }
    }

    /// Bytes of every flow, ended and `live`: [from, to the guest].
    pub fn bytes<'a>(&self, live: impl Iterator<Item = &'a Meta>) -> [u64; 2] {
        live.fold(self.totals, |b, m| [b[0] + m.bytes[0], b[1] + m.bytes[1]])
    }

    /// A flow a policy refused: it never opened.
    pub fn rejected(&mut self, info: FlowInfo, now: Instant) {
        if self.on_end {
            let m = Meta::new(info, (info.src, info.dst), now);
            self.end(&m, End::Rejected, now);
        }
    }

    pub fn end(&mut self, m: &Meta, end: End, now: Instant) {
        self.totals[0] += m.bytes[0];
        self.totals[1] += m.bytes[1];
        if self.on_end {
            self.ended.push(FlowRecord {
                info: m.info,
                mapped: m.mapped,
                bytes_from_guest: m.bytes[0],
                bytes_to_guest: m.bytes[1],
                started: m.started,
                duration: now.saturating_duration_since(m.t0),
                end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_flows_are_kept_only_while_someone_listens() {
        let a: SocketAddr = "10.0.2.15:40000".parse().unwrap();
        let b: SocketAddr = "10.0.2.2:80".parse().unwrap();
        let info = FlowInfo {
            proto: Proto::Tcp,
            direction: Direction::Outbound,
            src: a,
            dst: b,
        };
        let t0 = Instant::now();
        let mut m = Meta::new(info, (a, b), t0);
        m.from_guest(100);
        m.to_guest(7);
        let mut r = Recorder::default();
        r.end(&m, End::Closed, t0);
        assert!(r.ended.is_empty());
        assert_eq!(r.totals, [100, 7]);
        r.on_end = true;
        r.end(&m, End::Reset, t0 + Duration::from_millis(5));
        assert_eq!(r.ended.len(), 1);
        assert_eq!(r.ended[0].bytes_from_guest, 100);
        assert_eq!(r.ended[0].duration, Duration::from_millis(5));
        assert_eq!(r.ended[0].end, End::Reset);
        assert_eq!(r.totals, [200, 14]);
    }
}
