//! What the engine tells its owner, as it happens: the guest link's life,
//! the pasta command's exit, why the engine stopped by itself, and, when
//! asked for, every frame (`--trace`). The
//! owner supplies the sink; the engine never waits for it.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// passt mode: the UNIX socket qemu should connect to.
    Listening {
        path: PathBuf,
    },
    GuestConnected,
    GuestDisconnected {
        reason: String,
    },
    /// pasta mode: the command in the namespace exited with this status.
    CommandExited {
        status: i32,
    },
    /// Something went wrong that costs one flow, not the engine (a failed
    /// accept, say); the owner logs it.
    Warning {
        message: String,
    },
    /// `--trace`: a line per frame each way (`wire::describe`), "in" from
    /// the guest, "out" to it, batched per turn of the event loop.
    Trace {
        lines: Vec<String>,
    },
    /// The engine thread ended on its own (not through `stop`).
    Stopped {
        reason: String,
    },
}

pub trait EventSink: Send {
    fn event(&self, event: Event);
}

/// A sink that forgets everything (tests, embedders that poll stats).
pub struct Discard;

impl EventSink for Discard {
    fn event(&self, _: Event) {}
}

impl<F: Fn(Event) + Send> EventSink for F {
    fn event(&self, event: Event) {
        self(event)
    }
}
