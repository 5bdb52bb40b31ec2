//! Counters the engine thread bumps and any thread may read. Relaxed
//! atomics: each counter is independent, readers want a recent value, not
//! a consistent snapshot across counters.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::DropReason;

#[derive(Debug, Default)]
pub struct Stats {
    /// Timer intervals elapsed (a missed interval still counts).
    pub ticks: AtomicU64,
    /// Returns from epoll_wait that delivered at least one event.
    pub wakeups: AtomicU64,
    /// Events whose token we did not issue.
    pub bad_tokens: AtomicU64,
    /// Frames received from the guest, whatever became of them.
    pub frames_in: AtomicU64,
    /// Frames queued to the guest.
    pub frames_out: AtomicU64,
    /// Frames to the guest the link could not take.
    pub tx_dropped: AtomicU64,
    /// Flow sockets that failed (the flow is closed, the rest go on).
    pub flow_errors: AtomicU64,
    /// Guest frames dropped, by reason (indexed by `DropReason::index`).
    drops: [AtomicU64; DropReason::COUNT],
}

/// A plain copy of the counters, for reporting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub ticks: u64,
    pub wakeups: u64,
    pub bad_tokens: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub tx_dropped: u64,
    pub flow_errors: u64,
    /// (reason, count) for every reason that has dropped something.
    pub drops: Vec<(DropReason, u64)>,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        // Callers add per batch, often nothing: no write to a shared line.
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn drop(&self, reason: DropReason) {
        self.drop_n(reason, 1);
    }

    pub fn drop_n(&self, reason: DropReason, n: u64) {
        Stats::add(&self.drops[reason.index()], n);
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            ticks: get(&self.ticks),
            wakeups: get(&self.wakeups),
            bad_tokens: get(&self.bad_tokens),
            frames_in: get(&self.frames_in),
            frames_out: get(&self.frames_out),
            tx_dropped: get(&self.tx_dropped),
            flow_errors: get(&self.flow_errors),
            drops: DropReason::ALL
                .iter()
                .map(|r| (*r, get(&self.drops[r.index()])))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}
