//! passt mode's guest link: a UNIX stream socket in qemu's framing.
//!
//! Theory of operation: `QemuListener` owns the listening socket (`-s
//! PATH`, or the first free `/tmp/passt_N.socket`). One guest is served at
//! a time, as a `QemuStream`; further connections wait in the backlog
//! until the current guest leaves. A stream reads as much as is there
//! (bounded per call), hands out whole frames, and keeps a partial one for
//! later. Writes go out as one buffer per batch; what the socket does not
//! take is kept (a stream cannot lose half a frame) and sent when it is
//! writable again; while that backlog is over `MAX_PENDING`, new frames
//! are dropped whole and counted.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::framing::{BadLength, StreamRx};
use super::txqueue::TxQueue;

/// Receive buffer: many frames per read.
const RX_BUFFER: usize = 1 << 20;
/// Reads per `receive` call before yielding to other descriptors.
const MAX_READS: usize = 16;
/// Unsent bytes kept for a slow guest before new frames are dropped.
pub const MAX_PENDING: usize = 4 << 20;
/// How many `/tmp/passt_N.socket` paths are probed.
pub const PROBE_MAX: u32 = 64;

pub struct QemuListener {
    listener: UnixListener,
    path: Option<PathBuf>,
}

impl QemuListener {
    /// Listens at `path`. A socket file nobody answers on is stale and
    /// replaced; one that answers is in use and an error.
    pub fn bind(path: &Path) -> io::Result<Self> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    ErrorKind::AddrInUse,
                    format!("{}: another process is listening", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(QemuListener {
            listener,
            path: Some(path.to_owned()),
        })
    }

    /// The first free `/tmp/passt_N.socket`, N = 1..=64 (`dir` for tests).
    pub fn bind_probe(dir: &Path) -> io::Result<Self> {
        for n in 1..=PROBE_MAX {
            match Self::bind(&dir.join(format!("passt_{n}.socket"))) {
                Ok(l) => return Ok(l),
                Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
                Err(e) if e.kind() == ErrorKind::PermissionDenied => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            ErrorKind::AddrInUse,
            format!(
                "no free passt_N.socket in {} (N = 1..{PROBE_MAX})",
                dir.display()
            ),
        ))
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A waiting guest, if any.
    pub fn accept(&self) -> io::Result<Option<QemuStream>> {
        match self.listener.accept() {
            Ok((s, _)) => Ok(Some(QemuStream::new(s)?)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsFd for QemuListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl Drop for QemuListener {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Why a guest connection ended.
#[derive(Debug)]
pub enum Closed {
    /// The guest closed it.
    Eof,
    /// The framing broke: the length prefix was impossible.
    Desync(BadLength),
    Error(io::Error),
}

pub struct QemuStream {
    sock: UnixStream,
    rx: StreamRx,
    pending: Vec<u8>,
}

impl QemuStream {
    pub fn new(sock: UnixStream) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        Ok(QemuStream {
            sock,
            rx: StreamRx::new(RX_BUFFER),
            pending: Vec::new(),
        })
    }

    /// Reads what is available and calls `frame` for each whole frame.
    /// `Err` means the connection is over and must be dropped.
    pub fn receive(&mut self, mut frame: impl FnMut(&[u8])) -> Result<(), Closed> {
        for _ in 0..MAX_READS {
            let n = match self.sock.read(self.rx.spare()) {
                Ok(0) => return Err(Closed::Eof),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(Closed::Error(e)),
            };
            self.rx.filled(n);
            while let Some(r) = self.rx.next_frame() {
                frame(self.rx.frame(r.map_err(Closed::Desync)?));
            }
        }
        Ok(())
    }

    /// Sends the queued frames. Returns how many frames were dropped
    /// because the guest is not reading; `wants_write` tells whether
    /// bytes are still pending.
    pub fn send(&mut self, q: &TxQueue) -> io::Result<usize> {
        if q.is_empty() {
            return Ok(0);
        }
        if self.pending.len() > MAX_PENDING {
            return Ok(q.len());
        }
        if self.pending.is_empty() {
            let bytes = q.stream_bytes();
            let sent = self.write_some(bytes)?;
            self.pending.extend_from_slice(&bytes[sent..]);
        } else {
            self.pending.extend_from_slice(q.stream_bytes());
            self.flush()?;
        }
        Ok(0)
    }

    /// Sends pending bytes; call when the socket is writable.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        let sent = self.write_some(&pending)?;
        pending.drain(..sent);
        self.pending = pending;
        Ok(())
    }

    pub fn wants_write(&self) -> bool {
        !self.pending.is_empty()
    }

    fn write_some(&mut self, mut bytes: &[u8]) -> io::Result<usize> {
        let total = bytes.len();
        while !bytes.is_empty() {
            match self.sock.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(total - bytes.len())
    }
}

impl AsFd for QemuStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("passt-qemu-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn probing_skips_sockets_in_use_and_replaces_stale_ones() {
        let dir = tmpdir("probe");
        let first = QemuListener::bind_probe(&dir).unwrap();
        assert_eq!(first.path(), Some(dir.join("passt_1.socket").as_path()));
        let second = QemuListener::bind_probe(&dir).unwrap();
        assert_eq!(second.path(), Some(dir.join("passt_2.socket").as_path()));
        // A stale file (nobody listening) is taken over.
        drop(first);
        std::fs::write(dir.join("passt_1.socket"), b"").unwrap();
        let again = QemuListener::bind_probe(&dir).unwrap();
        assert_eq!(again.path(), Some(dir.join("passt_1.socket").as_path()));
        assert_eq!(
            QemuListener::bind(&dir.join("passt_2.socket"))
                .err()
                .map(|e| e.kind()),
            Some(ErrorKind::AddrInUse)
        );
        drop((second, again));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn frames_cross_a_real_socket_both_ways() {
        let dir = tmpdir("xfer");
        let l = QemuListener::bind(&dir.join("s")).unwrap();
        let mut guest = UnixStream::connect(dir.join("s")).unwrap();
        let mut s = l.accept().unwrap().expect("a guest is waiting");

        // Guest to us: two frames, the second split across writes.
        guest.write_all(&[0, 0, 0, 2, 7, 7, 0, 0, 0, 3, 1]).unwrap();
        let mut got = Vec::new();
        s.receive(|f| got.push(f.to_vec())).unwrap();
        guest.write_all(&[2, 3]).unwrap();
        s.receive(|f| got.push(f.to_vec())).unwrap();
        assert_eq!(got, vec![vec![7, 7], vec![1, 2, 3]]);

        // Us to guest.
        let mut q = TxQueue::new(1 << 16);
        q.push_frame(&[5; 10]);
        q.push_frame(&[6; 3]);
        assert_eq!(s.send(&q).unwrap(), 0);
        let mut buf = [0u8; 21];
        guest.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 10]);
        assert_eq!(&buf[14..18], &[0, 0, 0, 3]);

        // A length no frame can have ends the connection.
        guest.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        assert!(matches!(s.receive(|_| {}), Err(Closed::Desync(_))));
        drop(guest);
        std::fs::remove_dir_all(&dir).ok();

        // A guest that leaves is an end of file.
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut s2 = QemuStream::new(ours).unwrap();
        drop(theirs);
        assert!(matches!(s2.receive(|_| {}), Err(Closed::Eof)));
    }

    #[test]
    fn a_guest_that_stops_reading_keeps_whole_frames_then_drops() {
        let (ours, guest) = UnixStream::pair().unwrap();
        let mut s = QemuStream::new(ours).unwrap();
        let mut q = TxQueue::new(1 << 20);
        q.push_frame(&vec![1u8; 60000]);
        let mut dropped = 0;
        for _ in 0..200 {
            dropped += s.send(&q).unwrap();
        }
        assert!(s.wants_write());
        assert!(
            dropped > 0,
            "a stuck guest makes us drop, not buffer forever"
        );
        drop(guest);
    }
}
