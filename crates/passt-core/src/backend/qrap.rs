//! qrap's side of the qemu socket: find a passt instance among
//! `/tmp/passt_N.socket` (N = 1..64) that answers, as `man qrap` says, a
//! dummy ARP request, and hand the connected socket to qemu. A socket file
//! nobody listens on, or a passt busy with another guest (the connection
//! waits in its backlog and nothing answers), is skipped.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::framing::prefix;
use super::qemu::PROBE_MAX;

/// How long a passt has to answer the probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// "who-has 169.254.2.1 tell 169.254.2.2" from a locally administered MAC:
/// link-local addresses no guest is given, so passt answers it.
fn probe_frame() -> Vec<u8> {
    let mac = [0x02, 0x71, 0x72, 0x61, 0x70, 0x01];
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[169, 254, 2, 2, 0, 0, 0, 0, 0, 0, 169, 254, 2, 1]);
    f
}

/// Connects to `path` and checks that a passt answers there.
pub fn probe(path: &Path) -> io::Result<UnixStream> {
    let mut s = UnixStream::connect(path)?;
    let frame = probe_frame();
    s.write_all(&prefix(frame.len()))?;
    s.write_all(&frame)?;
    s.set_read_timeout(Some(PROBE_TIMEOUT))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|_| io::Error::new(ErrorKind::TimedOut, "no answer"))?;
    let n = u32::from_be_bytes(len) as usize;
    let mut reply = vec![0u8; n.min(65536)];
    s.read_exact(&mut reply)?;
    // An ARP reply (EtherType 0x0806, op 2) to our probe.
    if reply.len() >= 22 && reply[12..14] == [0x08, 0x06] && reply[20..22] == [0, 2] {
        s.set_read_timeout(None)?;
        Ok(s)
    } else {
        Err(io::Error::new(ErrorKind::InvalidData, "not an ARP reply"))
    }
}

/// The first `dir/passt_N.socket` that answers.
pub fn connect(dir: &Path) -> io::Result<(UnixStream, PathBuf)> {
    for n in 1..=PROBE_MAX {
        let path = dir.join(format!("passt_{n}.socket"));
        if let Ok(s) = probe(&path) {
            return Ok((s, path));
        }
    }
    Err(io::Error::new(
        ErrorKind::NotFound,
        format!(
            "no passt instance answered on {}/passt_1.socket to passt_{PROBE_MAX}.socket",
            dir.display()
        ),
    ))
}
