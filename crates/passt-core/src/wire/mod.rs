//! Wire formats: typed views over byte slices, with parse and emit, and
//! the checksums they need. No I/O, no state, no allocation on the frame
//! path, no `unsafe`. Nothing here imports from the rest of the crate.
//!
//! # Two levels per protocol
//!
//! - `Packet<T: AsRef<[u8]>>` is a zero-copy view: one-line getters over
//!   named field ranges (`mod field`), setters when `T: AsMut<[u8]>`.
//! - `Repr` is the meaning of a header: `Repr::parse` checks semantics
//!   (version, lengths that agree, checksums, options) and `Repr::emit`
//!   writes a header (checksum filled) into a buffer of `buffer_len()`
//!   bytes, copying a payload slice or around a payload already in place.
//!   Emitters never allocate.
//!
//! # The contract
//!
//! **If `Packet::new_checked` returned `Ok`, no accessor panics.** It
//! verifies that the buffer holds every fixed field the view exposes and
//! every variable part a length field of its own points at (IPv4 options,
//! TCP options, the UDP length, the IPv6 payload length). It checks
//! lengths only: the values can still be nonsense, which `Repr::parse`
//! refuses. Guest input is only ever viewed through `new_checked`.
//!
//! `new_unchecked` is for emitting into a buffer we sized ourselves with
//! `buffer_len()`; over stale or short bytes its accessors may panic, and
//! that is a bug of ours, not of the guest's. `Repr::parse` accepts a
//! `Packet` or any byte buffer and runs `new_checked` itself, so it never
//! depends on how the caller made the view.
//!
//! `frame::parse_frame` is the one entry point for guest frames: Ethernet
//! down to TCP, UDP, ICMP or ICMPv6, checksums verified, plus the rules a
//! guest's packet must follow to be used (no fragments, unicast sources,
//! non-zero ports). Every refusal names a `DropReason`, which the engine
//! counts: a malformed frame is dropped and counted, never a panic.

pub mod arp;
pub mod checksum;
pub mod describe;
pub mod dhcpv4;
pub mod dhcpv6;
pub mod dnsname;
pub mod ethernet;
pub mod frame;
pub mod icmp;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ndisc;
pub mod tcp;
pub mod udp;

use std::fmt;

/// Why a frame from the guest was not used. The engine keeps one counter
/// per reason; `as_str` names are what reports show, so they are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than its headers say or need.
    Truncated,
    /// A length field that cannot be right (IPv4 total length shorter
    /// than its header, UDP length under 8).
    BadLength,
    /// An IPv4 IHL or TCP data offset under the fixed header's size.
    BadHeaderLength,
    /// A checksum that does not verify.
    BadChecksum,
    /// An option (IPv4, IPv6 Hop-by-Hop or Destination, TCP) that runs
    /// past its header, has the wrong length, or must not be skipped.
    BadOption,
    /// A source address no sender may use (multicast, broadcast).
    BadAddress,
    /// Port zero where a real port is needed.
    BadPort,
    /// An EtherType we do not handle (including 802.1Q tags).
    UnknownEtherType,
    /// An IP header whose version is not the one its EtherType says.
    UnsupportedVersion,
    /// ARP for something other than IPv4 over Ethernet, or an operation
    /// other than request and reply.
    UnsupportedArp,
    /// An IPv6 extension header chain longer than we walk, or out of
    /// order (Hop-by-Hop not first).
    ExtHeaderChain,
    /// IPv4 fragments and IPv6 fragment headers: the guest's stack
    /// fragments only above the MTU we gave it.
    Fragment,
    /// A message body (DHCP, NDP) that cannot be right.
    Malformed,
    /// A protocol, version or message we do not handle.
    Unsupported,
    /// Addressed to neither us nor anything we forward (e.g. another MAC).
    NotForUs,
    /// A protocol switched off by configuration (`--no-udp`, ...).
    Disabled,
    /// No resources for a new flow (table full, socket refused).
    NoFlow,
    /// A datagram the host socket would not take (its buffer full).
    SocketFull,
}

impl DropReason {
    pub const COUNT: usize = 18;
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::BadLength,
        DropReason::BadHeaderLength,
        DropReason::BadChecksum,
        DropReason::BadOption,
        DropReason::BadAddress,
        DropReason::BadPort,
        DropReason::UnknownEtherType,
        DropReason::UnsupportedVersion,
        DropReason::UnsupportedArp,
        DropReason::ExtHeaderChain,
        DropReason::Fragment,
        DropReason::Malformed,
        DropReason::Unsupported,
        DropReason::NotForUs,
        DropReason::Disabled,
        DropReason::NoFlow,
        DropReason::SocketFull,
    ];

    /// Position in `ALL`, for arrays of counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name, as counters are reported.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadLength => "bad_length",
            DropReason::BadHeaderLength => "bad_header_length",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::BadOption => "bad_option",
            DropReason::BadAddress => "bad_address",
            DropReason::BadPort => "bad_port",
            DropReason::UnknownEtherType => "unknown_ethertype",
            DropReason::UnsupportedVersion => "unsupported_version",
            DropReason::UnsupportedArp => "unsupported_arp",
            DropReason::ExtHeaderChain => "ext_header_chain",
            DropReason::Fragment => "fragment",
            DropReason::Malformed => "malformed",
            DropReason::Unsupported => "unsupported",
            DropReason::NotForUs => "not_for_us",
            DropReason::Disabled => "disabled",
            DropReason::NoFlow => "no_flow",
            DropReason::SocketFull => "socket_full",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for DropReason {}

/// Big-endian reads and writes of fields whose range the caller took
/// from a `field` module (so the slice has exactly the right length).
fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn write_u16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}

fn write_u32(b: &mut [u8], v: u32) {
    b[..4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn reasons_are_indexed_in_order_with_unique_names() {
        let mut names = HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            let name = r.as_str();
            assert!(!name.is_empty() && name.bytes().all(|c| c.is_ascii_lowercase() || c == b'_'));
            assert!(names.insert(name), "{name} twice");
            assert_eq!(r.to_string(), name);
        }
    }

    #[test]
    fn big_endian_helpers() {
        let mut b = [0u8; 6];
        write_u16(&mut b[0..2], 0x1234);
        write_u32(&mut b[2..6], 0xdead_beef);
        assert_eq!(b, [0x12, 0x34, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(
            (read_u16(&b[0..2]), read_u32(&b[2..6])),
            (0x1234, 0xdead_beef)
        );
    }
}
