//! Wire formats: typed views over byte slices, with parse and emit, and
//! the checksums they need. No I/O and no state.
//!
//! Contract, as in smoltcp: a view made with `new_checked` has verified
//! that the buffer is long enough for every fixed field it exposes, so no
//! accessor panics afterwards. Guest input is only ever viewed through
//! `new_checked`; `Repr::parse` then checks semantics (lengths that agree,
//! checksums). Emitting writes into a buffer the caller sized with
//! `buffer_len()`; emitters never allocate.
//!
//! Every refusal names its reason, a `DropReason`, which the engine
//! counts: a malformed frame is dropped and counted, never a panic.

pub mod arp;
pub mod checksum;
pub mod dhcpv4;
pub mod dhcpv6;
pub mod dnsname;
pub mod ethernet;
pub mod frame;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod ndisc;
pub mod tcp;
pub mod udp;

/// Why a frame from the guest was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than its headers say or need.
    Truncated,
    /// A length, offset or option that cannot be right.
    Malformed,
    /// A checksum that does not verify.
    BadChecksum,
    /// An EtherType we do not handle.
    UnknownEtherType,
    /// A protocol, version or message we do not handle.
    Unsupported,
    /// IPv4 fragments and IPv6 fragment headers: the guest's stack
    /// fragments only above the MTU we gave it.
    Fragment,
    /// Addressed to neither us nor anything we forward (e.g. another MAC).
    NotForUs,
    /// A protocol switched off by configuration (`--no-udp`, ...).
    Disabled,
    /// No resources for a new flow (table full, socket refused).
    NoFlow,
}

impl DropReason {
    pub const COUNT: usize = 9;
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::Malformed,
        DropReason::BadChecksum,
        DropReason::UnknownEtherType,
        DropReason::Unsupported,
        DropReason::Fragment,
        DropReason::NotForUs,
        DropReason::Disabled,
        DropReason::NoFlow,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Stable name, as counters are reported.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Malformed => "malformed",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::UnknownEtherType => "unknown_ethertype",
            DropReason::Unsupported => "unsupported",
            DropReason::Fragment => "fragment",
            DropReason::NotForUs => "not_for_us",
            DropReason::Disabled => "disabled",
            DropReason::NoFlow => "no_flow",
        }
    }
}

/// Big-endian u16 at `at` (callers have checked the length).
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_indexed_in_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(!r.as_str().is_empty());
        }
    }
}
