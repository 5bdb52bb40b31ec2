//! The Internet checksum (RFC 1071): the one's-complement sum of 16-bit
//! big-endian words, the IPv4 and IPv6 pseudo-headers that TCP, UDP and
//! ICMPv6 add to it (RFC 9293 §3.1, RFC 768, RFC 8200 §8.1), and
//! incremental update when one field changes (RFC 1624).
//!
//! A running sum is a `u32` that has not been folded to 16 bits; carries
//! out of bit 31 are added back in, so sums of any length stay correct
//! (2^32 and 2^16 are both 1 modulo 0xffff). When a checksum covers
//! several slices, every slice but the last must have an even length, or
//! the words of the next one would be misaligned.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One's-complement addition of two running sums.
fn add(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s.wrapping_add(u32::from(carry))
}

/// Adds `data` to the running sum `acc`; an odd last byte is padded with
/// a zero byte on the right.
pub fn sum(acc: u32, data: &[u8]) -> u32 {
    // The bulk in native byte order, 8 bytes a step into two 64-bit
    // accumulators (no byte swap per word, and a loop the compiler
    // vectorises): the one's-complement sum does not depend on byte order
    // but for a swap of the folded result (RFC 1071 §2(B)). No carry is
    // lost for any buffer shorter than 16 GiB.
    let mut chunks = data.chunks_exact(8);
    let (mut lo, mut hi) = (0u64, 0u64);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        lo += v & 0xffff_ffff;
        hi += v >> 32;
    }
    let bulk = u16::from_be(fold16(lo + hi));
    // The tail (under 8 bytes, starting at an even offset) big-endian.
    let mut wide = u64::from(bulk);
    let mut words = chunks.remainder().chunks_exact(4);
    for w in &mut words {
        wide += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let tail = match *words.remainder() {
        [a, b, c] => u32::from_be_bytes([a, b, c, 0]),
        [a, b] => u32::from_be_bytes([0, 0, a, b]),
        [a] => u32::from(a) << 8,
        _ => 0,
    };
    wide += u64::from(tail);
    let folded = add((wide >> 32) as u32, wide as u32);
    add(acc, folded)
}

/// A 64-bit one's-complement sum folded to 16 bits (2^16 = 1 mod 0xffff).
fn fold16(mut x: u64) -> u16 {
    while x >> 16 != 0 {
        x = (x & 0xffff) + (x >> 16);
    }
    x as u16
}

/// Folds a running sum to 16 bits and complements it.
pub fn finish(acc: u32) -> u16 {
    let mut a = acc;
    while a >> 16 != 0 {
        a = (a & 0xffff) + (a >> 16);
    }
    !(a as u16)
}

/// Checksum of `data` alone (IPv4 header, ICMPv4). A buffer that
/// contains a correct checksum field checks to zero.
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// Running sum of the IPv4 pseudo-header for an upper-layer packet of
/// `length` bytes.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, length: usize) -> u32 {
    let acc = sum(sum(0, &src.octets()), &dst.octets());
    // The IPv4 pseudo-header's length is 16 bits: an IPv4 payload can
    // hold no more.
    add(acc, u32::from(proto) + (length as u32 & 0xffff))
}

/// Running sum of the IPv6 pseudo-header (32-bit upper-layer length).
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, length: usize) -> u32 {
    let acc = sum(sum(0, &src.octets()), &dst.octets());
    let len = length as u32;
    add(add(acc, len >> 16), (len & 0xffff) + u32::from(proto))
}

/// The pseudo-header for either family. Mixed families cannot occur in
/// one packet; if a caller mixes them anyway, the IPv4 address is taken
/// as IPv4-mapped IPv6 rather than panicking.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, length: usize) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header_v4(s, d, proto, length),
        (s, d) => pseudo_header_v6(v6(s), v6(d), proto, length),
    }
}

/// What the checksum field holds when the checksum is left for a device
/// to complete (checksum offload): the pseudo-header sum, folded and not
/// complemented, so that summing the packet over it gives the checksum.
pub fn partial(src: IpAddr, dst: IpAddr, proto: u8, length: usize) -> u16 {
    !finish(pseudo_header(src, dst, proto, length))
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// Checksum of an upper-layer packet with its pseudo-header. With the
/// checksum field zeroed this is the value to store; with a correct
/// checksum in place it is zero.
pub fn upper_layer(src: IpAddr, dst: IpAddr, proto: u8, packet: &[u8]) -> u16 {
    finish(sum(pseudo_header(src, dst, proto, packet.len()), packet))
}

/// RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'): the new checksum after a
/// 16-bit word changed from `old` to `new`. Eqn. 3 rather than eqn. 2
/// because it never produces 0x0000 from a sum that was not zero.
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    finish(u32::from(!check) + u32::from(!old) + u32::from(new))
}

/// `update` for a run of words at once (an address rewritten in place):
/// `old` and `new` have the same, even length, at an even offset.
pub fn update_bytes(check: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    // Adding ~m is subtracting m in one's complement: sum the complement
    // of every old word.
    let mut acc = sum(u32::from(!check), new);
    for w in old.chunks(2) {
        let word = u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]);
        acc = add(acc, u32::from(!word));
    }
    finish(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious definition, one 16-bit word at a time.
    fn naive(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        for c in data.chunks(2) {
            acc += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn a_captured_ipv4_header_sums_to_zero() {
        // ping 10.77.0.1 -> 10.77.0.2 captured on a veth (see ipv4.rs).
        let hdr = [
            0x45, 0x00, 0x00, 0x24, 0x45, 0x92, 0x40, 0x00, 0x40, 0x01, 0xe0, 0xaa, 0x0a, 0x4d,
            0x00, 0x01, 0x0a, 0x4d, 0x00, 0x02,
        ];
        assert_eq!(checksum(&hdr), 0);
    }

    #[test]
    fn odd_lengths_pad_with_zero() {
        assert_eq!(checksum(&[0x12]), checksum(&[0x12, 0x00]));
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0])
        );
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn carries_out_of_32_bits_are_kept() {
        assert_eq!(add(0xffff_ffff, 1), 1);
        assert_eq!(finish(sum(0xffff_ffff, &[0xff, 0xff])), finish(0xffff));
    }

    #[test]
    fn pseudo_headers_as_rfc_draws_them() {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut ph = Vec::new();
        ph.extend_from_slice(&s.octets());
        ph.extend_from_slice(&d.octets());
        ph.extend_from_slice(&[0, 17, 0x01, 0x02]);
        assert_eq!(finish(pseudo_header_v4(s, d, 17, 0x0102)), naive(&ph));

        let (s, d): (Ipv6Addr, Ipv6Addr) =
            ("fd00::1".parse().unwrap(), "ff02::16".parse().unwrap());
        let mut ph = Vec::new();
        ph.extend_from_slice(&s.octets());
        ph.extend_from_slice(&d.octets());
        ph.extend_from_slice(&[0, 1, 0x02, 0x03, 0, 0, 0, 58]);
        assert_eq!(finish(pseudo_header_v6(s, d, 58, 0x10203)), naive(&ph));
    }

    #[test]
    fn incremental_update_matches_recomputation() {
        let mut data = [
            0x45u8, 0, 0, 0x54, 0x12, 0x34, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&data);
        data[4..6].copy_from_slice(&0xbeefu16.to_be_bytes());
        assert_eq!(update(c, 0x1234, 0xbeef), checksum(&data));
    }

    proptest! {
        #[test]
        fn wide_sum_equals_the_naive_one(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert_eq!(checksum(&data), naive(&data));
        }

        #[test]
        fn sums_split_at_even_offsets_compose(
            data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..150,
        ) {
            let cut = (cut * 2).min(data.len() & !1);
            prop_assert_eq!(finish(sum(sum(0, &data[..cut]), &data[cut..])), checksum(&data));
        }

        #[test]
        fn update_bytes_matches_recomputation(
            mut data in proptest::collection::vec(any::<u8>(), 32..200),
            at in 0usize..8, new in any::<[u8; 4]>(),
        ) {
            let at = at * 2;
            data[10] = 0;
            data[11] = 0;
            let c = checksum(&data);
            data[10..12].copy_from_slice(&c.to_be_bytes());
            let old: [u8; 4] = data[12 + at..16 + at].try_into().unwrap();
            data[12 + at..16 + at].copy_from_slice(&new);
            let updated = update_bytes(c, &old, &new);
            data[10..12].copy_from_slice(&updated.to_be_bytes());
            // Still verifies: the whole buffer sums to zero (or to the
            // other representation of zero, 0xffff folded).
            let check = checksum(&data);
            prop_assert!(check == 0 || check == 0xffff, "{:#x}", check);
        }
    }
}
