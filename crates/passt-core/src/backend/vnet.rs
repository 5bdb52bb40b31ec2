//! The virtio-net header in front of every frame on pasta's tap
//! (`IFF_VNET_HDR`, 10 bytes, little-endian; virtio spec 5.1.6). We use
//! its checksum fields only, no segmentation offload:
//! - from the namespace, `NEEDS_CSUM` means the kernel left the TCP/UDP
//!   checksum for the device to fill (it holds the pseudo-header sum
//!   only), and `DATA_VALID` that it was verified already: either way the
//!   bytes came through memory, not a wire, and are not verified again;
//! - to the namespace, our TCP and UDP frames carry `NEEDS_CSUM` with the
//!   pseudo-header sum in place, so neither side sums the payload: the
//!   namespace's stack takes such a packet as checked (Linux's
//!   CHECKSUM_PARTIAL) and computes the sum only if it forwards it.

/// Bytes of the header (`struct virtio_net_hdr`, no `num_buffers`).
pub const LEN: usize = 10;
/// The checksum is to be completed from `csum_start`, into `csum_offset`.
pub const NEEDS_CSUM: u8 = 1;
/// The checksum was verified.
pub const DATA_VALID: u8 = 2;
/// `gso_type` for a frame that is not a segmentation batch.
pub const GSO_NONE: u8 = 0;

/// What a received header says about the frame after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rx {
    /// A plain frame whose checksums are complete: verify them.
    Plain,
    /// Checksums left to us or verified already: trusted.
    Trusted,
    /// Something we did not ask for (segmentation): drop.
    Unsupported,
}

pub fn parse(hdr: &[u8]) -> Rx {
    if hdr.len() < LEN {
        return Rx::Unsupported;
    }
    match hdr {
        [flags, GSO_NONE, ..] if flags & (NEEDS_CSUM | DATA_VALID) != 0 => Rx::Trusted,
        [0, GSO_NONE, ..] => Rx::Plain,
        _ => Rx::Unsupported,
    }
}

/// Writes a header: no offload, or checksum to complete from `start`
/// into `start + offset` (offsets from the frame's first byte).
pub fn emit(hdr: &mut [u8], csum: Option<(u16, u16)>) {
    hdr[..LEN].fill(0);
    if let Some((start, offset)) = csum {
        hdr[0] = NEEDS_CSUM;
        hdr[6..8].copy_from_slice(&start.to_le_bytes());
        hdr[8..10].copy_from_slice(&offset.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(parse(&[0; LEN]), Rx::Plain);
        assert_eq!(
            parse(&[NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 16, 0]),
            Rx::Trusted
        );
        assert_eq!(parse(&[DATA_VALID, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Rx::Trusted);
        // TCPv4 segmentation: not asked for, not taken.
        assert_eq!(
            parse(&[NEEDS_CSUM, 1, 0, 0, 0, 0, 34, 0, 16, 0]),
            Rx::Unsupported
        );
        assert_eq!(parse(&[0; 4]), Rx::Unsupported);
        let mut h = [0xff; LEN];
        emit(&mut h, Some((34, 16)));
        assert_eq!(h, [NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 16, 0]);
        emit(&mut h, None);
        assert_eq!(h, [0; LEN]);
    }
}
