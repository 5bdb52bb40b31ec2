//! Ethernet II frames (no FCS, as qemu and tap deliver them).

use super::{be16, DropReason};

pub const HEADER_LEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const BROADCAST: [u8; 6] = [0xff; 6];

pub type MacAddr = [u8; 6];

/// A checked view of a frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Self, DropReason> {
        if b.len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let mac = |at: usize| -> MacAddr {
            [b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]]
        };
        Ok(Frame {
            dst: mac(0),
            src: mac(6),
            ethertype: be16(b, 12),
            payload: &b[HEADER_LEN..],
        })
    }
}

/// Writes an Ethernet header into `b[..14]`.
pub fn emit_header(b: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) {
    b[0..6].copy_from_slice(&dst);
    b[6..12].copy_from_slice(&src);
    b[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// True for group (multicast and broadcast) addresses.
pub fn is_multicast(mac: MacAddr) -> bool {
    mac[0] & 1 == 1
}

pub fn format_mac(mac: MacAddr) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit_agree() {
        let mut b = [0u8; 20];
        emit_header(&mut b, BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE_ARP);
        let f = Frame::parse(&b).unwrap();
        assert_eq!(
            (f.dst, f.src, f.ethertype),
            (BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE_ARP)
        );
        assert_eq!(f.payload.len(), 6);
        assert!(is_multicast(f.dst) && !is_multicast(f.src));
        assert_eq!(Frame::parse(&b[..13]), Err(DropReason::Truncated));
        assert_eq!(format_mac(f.src), "02:00:00:00:00:01");
    }
}
