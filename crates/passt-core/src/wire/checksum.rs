//! The Internet checksum (RFC 1071): one's-complement sum of 16-bit words,
//! the IPv4/IPv6 pseudo-headers of TCP, UDP and ICMPv6 (RFC 768, RFC 8200
//! §8.1), and incremental update (RFC 1624) for rewriting a field.

use std::net::IpAddr;

/// Adds `data` to a running 32-bit sum (big-endian words, odd byte padded).
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds a running sum to 16 bits and complements it.
pub fn finish(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Checksum of `data` alone (IPv4 header, ICMPv4).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// Running sum of the pseudo-header for an upper-layer packet of
/// `length` bytes and protocol `proto` between `src` and `dst`.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, length: usize) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let acc = sum(sum(0, &s.octets()), &d.octets());
            acc.wrapping_add(u32::from(proto))
                .wrapping_add(length as u32 & 0xffff)
        }
        (s, d) => {
            let bytes = |a: IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                IpAddr::V6(a) => a.octets(),
            };
            let acc = sum(sum(0, &bytes(s)), &bytes(d));
            let len = length as u32;
            acc.wrapping_add(len >> 16)
                .wrapping_add(len & 0xffff)
                .wrapping_add(u32::from(proto))
        }
    }
}

/// Checksum of an upper-layer packet (its checksum field zeroed or
/// included, as the caller wants).
pub fn upper_layer(src: IpAddr, dst: IpAddr, proto: u8, packet: &[u8]) -> u16 {
    finish(sum(pseudo_header(src, dst, proto, packet.len()), packet))
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit field changed from
/// `old` to `new`.
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!check) + u32::from(!old) + u32::from(new);
    finish(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn a_valid_header_sums_to_zero() {
        // An IPv4 header with its checksum (0x0fb3) in place.
        let hdr = [
            0x45, 0x00, 0x00, 0x54, 0xa6, 0xf2, 0x40, 0x00, 0x40, 0x01, 0x0f, 0xb3, 0xc0, 0x00,
            0x02, 0x02, 0xc0, 0x00, 0x02, 0x01,
        ];
        assert_eq!(checksum(&hdr), 0);
    }

    #[test]
    fn odd_lengths_pad_with_zero() {
        assert_eq!(checksum(&[0x12]), checksum(&[0x12, 0x00]));
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
}
