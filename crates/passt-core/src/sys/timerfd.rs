//! A periodic monotonic timer as a descriptor, so timer expiry arrives
//! through the same epoll loop as I/O.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

pub struct IntervalTimer {
    fd: TimerFd,
}

impl IntervalTimer {
    pub fn new(interval: Duration) -> io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        fd.set(
            Expiration::Interval(TimeSpec::from_duration(interval)),
            TimerSetTimeFlags::empty(),
        )?;
        Ok(IntervalTimer { fd })
    }

    /// Number of intervals elapsed since the last read (0 if none).
    pub fn expirations(&self) -> io::Result<u64> {
        super::read_counter(self.fd.as_raw_fd())
    }
}

impl AsFd for IntervalTimer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the TimerFd owns this descriptor for as long as `self` lives.
        unsafe { BorrowedFd::borrow_raw(self.fd.as_raw_fd()) }
    }
}
