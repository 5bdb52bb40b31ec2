//! Counters the engine thread bumps and any thread may read. Relaxed
//! atomics: each counter is independent, readers want a recent value, not
//! a consistent snapshot across counters.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Stats {
    /// Timer intervals elapsed (a missed interval still counts).
    pub ticks: AtomicU64,
    /// Returns from epoll_wait that delivered at least one event.
    pub wakeups: AtomicU64,
    /// Events whose token we did not issue.
    pub bad_tokens: AtomicU64,
}

/// A plain copy of the counters, for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub ticks: u64,
    pub wakeups: u64,
    pub bad_tokens: u64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            ticks: self.ticks.load(Ordering::Relaxed),
            wakeups: self.wakeups.load(Ordering::Relaxed),
            bad_tokens: self.bad_tokens.load(Ordering::Relaxed),
        }
    }
}
