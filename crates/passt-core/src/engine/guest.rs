//! The engine's link to the guest, whichever backend it is: a qemu socket
//! (listening for a guest, or connected to one) or pasta's tap. Knows when
//! to watch the listener, when to watch for writability, and what a
//! disconnect means; knows nothing of the frames' contents.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::backend::qemu::{Closed, QemuListener, QemuStream};
use crate::backend::tap::Tap;
use crate::backend::txqueue::TxQueue;
use crate::backend::vnet::Rx;
use crate::sys::Epoll;

use super::token::{Kind, Token};

/// How the guest reaches us (validated configuration).
#[derive(Debug)]
pub enum BackendSpec {
    /// passt: listen at `path`, or probe `/tmp/passt_N.socket` if `None`.
    QemuListen {
        path: Option<PathBuf>,
        one_off: bool,
    },
    /// passt `--fd`: an already connected socket; implies one-off.
    QemuFd(OwnedFd),
    /// pasta: the tap descriptor the namespace agent opened.
    Tap(OwnedFd),
}

pub enum GuestLink {
    Qemu {
        listener: Option<QemuListener>,
        stream: Option<QemuStream>,
        one_off: bool,
        writable_armed: bool,
    },
    Tap(Tap),
}

const LISTEN: Token = Token::of(Kind::Listen);
const GUEST: Token = Token::of(Kind::Guest);

/// What happened to the link while reading.
pub enum LinkState {
    Up,
    /// The guest left; the engine goes on waiting for another.
    Disconnected(String),
    /// The guest left and no other may come (`--one-off`, `--fd`).
    Finished(String),
}

impl GuestLink {
    pub fn open(spec: BackendSpec, epoll: &Epoll) -> io::Result<(GuestLink, Option<PathBuf>)> {
        match spec {
            BackendSpec::QemuListen { path, one_off } => {
                let listener = match path {
                    Some(p) => QemuListener::bind(&p)?,
                    None => QemuListener::bind_probe(&std::env::temp_dir())?,
                };
                epoll.add_readable(&listener, LISTEN.encode())?;
                let path = listener.path().map(PathBuf::from);
                Ok((
                    GuestLink::Qemu {
                        listener: Some(listener),
                        stream: None,
                        one_off,
                        writable_armed: false,
                    },
                    path,
                ))
            }
            BackendSpec::QemuFd(fd) => {
                let stream = QemuStream::new(UnixStream::from(fd))?;
                epoll.add_readable(&stream, GUEST.encode())?;
                Ok((
                    GuestLink::Qemu {
                        listener: None,
                        stream: Some(stream),
                        one_off: true,
                        writable_armed: false,
                    },
                    None,
                ))
            }
            BackendSpec::Tap(fd) => {
                let tap = Tap::new(fd);
                epoll.add_readable(&tap, GUEST.encode())?;
                Ok((GuestLink::Tap(tap), None))
            }
        }
    }

    /// Takes a waiting guest. While one is connected the listener is not
    /// watched: others wait in the backlog until it leaves.
    pub fn accept(&mut self, epoll: &Epoll) -> io::Result<bool> {
        let GuestLink::Qemu {
            listener: Some(l),
            stream,
            ..
        } = self
        else {
            return Ok(false);
        };
        if stream.is_some() {
            return Ok(false);
        }
        let Some(s) = l.accept()? else {
            return Ok(false);
        };
        epoll.delete(&*l)?;
        epoll.add_readable(&s, GUEST.encode())?;
        *stream = Some(s);
        Ok(true)
    }

    /// Reads frames from the guest into `frame`, with what the link says
    /// of their checksums (qemu's stream: nothing, `Plain`).
    pub fn receive(
        &mut self,
        epoll: &Epoll,
        mut frame: impl FnMut(&[u8], Rx),
    ) -> io::Result<LinkState> {
        match self {
            GuestLink::Tap(tap) => tap.receive(frame).map(|()| LinkState::Up),
            GuestLink::Qemu {
                listener,
                stream,
                one_off,
                writable_armed,
            } => {
                let Some(s) = stream else {
                    return Ok(LinkState::Up);
                };
                let reason = match s.receive(|f| frame(f, Rx::Plain)) {
                    Ok(()) => return Ok(LinkState::Up),
                    Err(Closed::Eof) => "guest closed the connection".to_owned(),
                    Err(Closed::Desync(b)) => {
                        format!("impossible frame length {}: connection reset", b.0)
                    }
                    Err(Closed::Error(e)) => format!("guest connection: {e}"),
                };
                // Dropping the stream closes it, which also unregisters it.
                *stream = None;
                *writable_armed = false;
                if *one_off {
                    return Ok(LinkState::Finished(reason));
                }
                if let Some(l) = listener {
                    epoll.add_readable(&*l, LISTEN.encode())?;
                }
                Ok(LinkState::Disconnected(reason))
            }
        }
    }

    /// Sends queued frames; returns how many were dropped.
    pub fn send(&mut self, epoll: &Epoll, q: &TxQueue) -> io::Result<usize> {
        match self {
            GuestLink::Tap(tap) => tap.send(q),
            GuestLink::Qemu {
                stream: Some(s),
                writable_armed,
                ..
            } => {
                let dropped = s.send(q)?;
                Self::arm(epoll, s, writable_armed)?;
                Ok(dropped)
            }
            // No guest: the frames have nowhere to go.
            GuestLink::Qemu { stream: None, .. } => Ok(q.len()),
        }
    }

    /// The guest's socket became writable: send what is pending.
    pub fn writable(&mut self, epoll: &Epoll) -> io::Result<()> {
        if let GuestLink::Qemu {
            stream: Some(s),
            writable_armed,
            ..
        } = self
        {
            s.flush()?;
            Self::arm(epoll, s, writable_armed)?;
        }
        Ok(())
    }

    fn arm(epoll: &Epoll, s: &QemuStream, armed: &mut bool) -> io::Result<()> {
        if s.wants_write() != *armed {
            *armed = s.wants_write();
            epoll.set_writable(s, GUEST.encode(), *armed)?;
        }
        Ok(())
    }
}
