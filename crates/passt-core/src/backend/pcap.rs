//! `--pcap FILE`: every frame exchanged with the guest, both ways, in the
//! classic pcap format (microsecond timestamps, Ethernet link type), which
//! `tcpdump -r` and Wireshark read. Frames are buffered and flushed once
//! per engine round, so capturing costs no syscall per frame.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const MAGIC_USEC: u32 = 0xa1b2_c3d4;
const LINKTYPE_ETHERNET: u32 = 1;
/// Larger frames are cut to this length in the capture (and say so).
pub const SNAPLEN: u32 = 65535;

pub struct PcapWriter<W: Write> {
    out: W,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (truncates) `path` and writes the file header.
    pub fn create(path: &Path) -> io::Result<Self> {
        PcapWriter::new(BufWriter::with_capacity(1 << 20, File::create(path)?))
    }
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_USEC.to_ne_bytes());
        h.extend_from_slice(&2u16.to_ne_bytes());
        h.extend_from_slice(&4u16.to_ne_bytes());
        h.extend_from_slice(&0i32.to_ne_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_ne_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Records one frame seen at `when`.
    pub fn frame(&mut self, frame: &[u8], when: SystemTime) -> io::Result<()> {
        let t = when.duration_since(UNIX_EPOCH).unwrap_or_default();
        let caplen = (frame.len() as u32).min(SNAPLEN);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&(t.as_secs() as u32).to_ne_bytes());
        rec[4..8].copy_from_slice(&t.subsec_micros().to_ne_bytes());
        rec[8..12].copy_from_slice(&caplen.to_ne_bytes());
        rec[12..16].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&frame[..caplen as usize])
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn header_and_records_follow_the_format() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let when = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000);
        w.frame(&[0xab; 60], when).unwrap();
        let out = w.into_inner();
        assert_eq!(out.len(), 24 + 16 + 60);
        let word = |i: usize| u32::from_ne_bytes(out[i..i + 4].try_into().unwrap());
        assert_eq!(word(0), 0xa1b2_c3d4);
        assert_eq!(word(20), 1);
        assert_eq!(word(24), 1_700_000_000);
        assert_eq!(word(28), 123_456);
        assert_eq!((word(32), word(36)), (60, 60));
        assert!(out[40..].iter().all(|&b| b == 0xab));
    }

    #[test]
    fn tcpdump_reads_it() {
        let path = std::env::temp_dir().join(format!("passt-pcap-{}.pcap", std::process::id()));
        let mut w = PcapWriter::create(&path).unwrap();
        // An Ethernet frame carrying an ARP request 192.0.2.2 -> 192.0.2.1.
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 1, 192, 0, 2, 2]);
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&[192, 0, 2, 1]);
        w.frame(&arp, SystemTime::now()).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut tcpdump = std::process::Command::new("tcpdump");
        // As root, tcpdump switches to its own user, which a user namespace
        // (where tests run) does not map: stay root there.
        if nix::unistd::geteuid().is_root() {
            tcpdump.args(["-Z", "root"]);
        }
        let out = tcpdump
            .args(["-nr"])
            .arg(&path)
            .output()
            .expect("tcpdump (scripts/setup-deps.sh installs it)");
        std::fs::remove_file(&path).ok();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Request who-has 192.0.2.1 tell 192.0.2.2"),
            "{text}"
        );
    }
}
