//! The engine: one thread per instance running an epoll loop over every
//! descriptor the instance owns, plus a 20 ms interval timer for periodic
//! work (TCP ACK and retransmission deadlines, flow expiry).
//!
//! Theory of operation: `spawn` creates the epoll instance, the waker
//! (eventfd) and the timer on the caller's thread, so that a failure is
//! reported before any thread exists, then moves them into the engine
//! thread. Every registration carries a `Token`. The loop blocks in
//! epoll_wait with no timeout: the timer is a descriptor like any other,
//! so there is exactly one place the thread sleeps.
//!
//! Stopping: `EngineHandle::stop` raises a flag and signals the waker; the
//! loop sees the waker, notices the flag and returns, dropping (closing)
//! everything it owns. The handle's share of the waker is dropped after
//! the join, so when `stop` returns no descriptor of the instance is open.
//!
//! Readiness is level-triggered: a handler that leaves data unread is
//! called again on the next round instead of stalling, which makes bounded
//! batches per round (fairness between flows) safe.

mod stats;
pub mod token;

pub use stats::{Snapshot, Stats};
pub use token::{Kind, Token};

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sys::{Epoll, EventFd, Events, IntervalTimer};

/// Period of the engine's timer (DESIGN.md: ACK/retransmission timers).
pub const TICK: Duration = Duration::from_millis(20);

/// How long `stop` waits for the thread before giving up on it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Events fetched per epoll_wait: a bound on work per round, not on flows.
const EVENT_BATCH: usize = 256;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub tick: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { tick: TICK }
    }
}

/// State shared between the engine thread and its handle.
struct Shared {
    stop: AtomicBool,
    waker: EventFd,
    stats: Stats,
}

struct Engine {
    epoll: Epoll,
    timer: IntervalTimer,
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub enum StopError {
    /// The thread did not finish within `STOP_TIMEOUT`; it was left running.
    Timeout,
    /// The engine loop ended with an error (reported, resources released).
    Failed(io::Error),
    /// The engine thread panicked.
    Panicked,
}

impl std::fmt::Display for StopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopError::Timeout => write!(f, "engine thread did not stop within {STOP_TIMEOUT:?}"),
            StopError::Failed(e) => write!(f, "engine failed: {e}"),
            StopError::Panicked => write!(f, "engine thread panicked"),
        }
    }
}

impl std::error::Error for StopError {}

pub struct EngineHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<io::Result<()>>>,
    done: mpsc::Receiver<()>,
}

/// Starts an engine thread. Errors creating its descriptors are returned
/// here, on the caller's thread.
pub fn spawn(config: EngineConfig) -> io::Result<EngineHandle> {
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        waker: EventFd::new()?,
        stats: Stats::default(),
    });
    let epoll = Epoll::new()?;
    let timer = IntervalTimer::new(config.tick)?;
    epoll.add_readable(&shared.waker, Token::of(Kind::Waker).encode())?;
    epoll.add_readable(&timer, Token::of(Kind::Timer).encode())?;
    let engine = Engine {
        epoll,
        timer,
        shared: Arc::clone(&shared),
    };
    let (done_tx, done) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("passt-engine".into())
        .spawn(move || {
            let result = engine.run();
            drop(engine);
            let _ = done_tx.send(());
            result
        })?;
    Ok(EngineHandle {
        shared,
        thread: Some(thread),
        done,
    })
}

impl EngineHandle {
    pub fn stats(&self) -> Snapshot {
        self.shared.stats.snapshot()
    }

    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Asks the thread to finish and joins it within `STOP_TIMEOUT`.
    pub fn stop(mut self) -> Result<(), StopError> {
        self.request_stop();
        match self.done.recv_timeout(STOP_TIMEOUT) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Detach: joining would block past the promise.
                self.thread.take();
                return Err(StopError::Timeout);
            }
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(e))) => Err(StopError::Failed(e)),
            Some(Err(_)) => Err(StopError::Panicked),
        }
    }

    fn request_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        // If signalling fails the thread cannot be told; stop() then
        // reports a timeout rather than hanging.
        let _ = self.shared.waker.signal();
    }
}

impl Drop for EngineHandle {
    /// A handle dropped without `stop` still stops its thread.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.request_stop();
            if self.done.recv_timeout(STOP_TIMEOUT).is_ok() {
                let _ = thread.join();
            }
        }
    }
}

impl Engine {
    fn run(&self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENT_BATCH);
        let stats = &self.shared.stats;
        loop {
            self.epoll.wait(&mut events, None)?;
            let mut woke = false;
            for (data, _readable, _writable, _error) in events.iter() {
                woke = true;
                match Token::decode(data) {
                    Ok(t) => match t.kind {
                        Kind::Waker => {
                            self.shared.waker.drain()?;
                            if self.shared.stop.load(Ordering::Acquire) {
                                return Ok(());
                            }
                        }
                        Kind::Timer => {
                            let n = self.timer.expirations()?;
                            Stats::add(&stats.ticks, n);
                        }
                    },
                    Err(_) => Stats::add(&stats.bad_tokens, 1),
                }
            }
            if woke {
                Stats::add(&stats.wakeups, 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn ticks_and_stops_promptly() {
        let handle = spawn(EngineConfig::default()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while handle.stats().ticks < 3 {
            assert!(Instant::now() < deadline, "timer never ticked");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(handle.is_running());
        let t0 = Instant::now();
        handle.stop().unwrap();
        assert!(t0.elapsed() < STOP_TIMEOUT);
    }

    #[test]
    fn dropping_the_handle_stops_the_thread() {
        let handle = spawn(EngineConfig::default()).unwrap();
        let shared = Arc::downgrade(&handle.shared);
        drop(handle);
        // The thread held the other reference; both are gone after the join.
        assert!(shared.upgrade().is_none());
    }

    #[test]
    fn closes_every_descriptor() {
        // Other tests run on parallel threads and open fds too: retry a few
        // times and accept the first quiet measurement.
        for _ in 0..20 {
            let before = open_fds();
            let handle = spawn(EngineConfig::default()).unwrap();
            let during = open_fds();
            handle.stop().unwrap();
            let after = open_fds();
            if during == before + 3 && after == before {
                return;
            }
        }
        panic!("engine leaked descriptors");
    }
}
