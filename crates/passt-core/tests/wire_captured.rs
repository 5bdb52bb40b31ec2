//! Every frame of two real captures through the whole-frame parser:
//! `wire-veth.pcap` (two namespaces over a veth: MLD with Hop-by-Hop,
//! NDP, ARP, ping and ping -R (IPv4 options), fragmented pings over IPv4
//! and IPv6, TCP over both families, UDP, port unreachables) and
//! `pasta-guest.pcap` (a namespace's kernel talking to the engine: DHCP,
//! DHCPv6, SLAAC, ping, TCP and UDP).
//!
//! Each frame parses (fragments are refused as such), re-emits byte for
//! byte, and no prefix of it parses.

use passt_core::wire::frame::{parse_frame, IpHeader, Payload, L4};
use passt_core::wire::{checksum, ipv6, DropReason};

/// The frames of a classic little-endian pcap file.
fn frames(data: &[u8]) -> Vec<&[u8]> {
    assert_eq!(data[..4], [0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let cap = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16;
        out.push(&data[off..off + cap]);
        off += cap;
    }
    out
}

static VETH: &[u8] = include_bytes!("fixtures/wire-veth.pcap");
static PASTA: &[u8] = include_bytes!("fixtures/pasta-guest.pcap");

#[derive(Default, Debug)]
struct Seen {
    arp: usize,
    tcp: usize,
    udp: usize,
    icmp: usize,
    hop_by_hop: usize,
    ipv4_options: usize,
    fragments: usize,
}

fn check(capture: &[u8]) -> Seen {
    let mut seen = Seen::default();
    for (i, f) in frames(capture).into_iter().enumerate() {
        let parsed = match parse_frame(f) {
            Err(DropReason::Fragment) => {
                seen.fragments += 1;
                continue;
            }
            r => r.unwrap_or_else(|e| panic!("frame {}: {e}", i + 1)),
        };
        let mut out = vec![0u8; parsed.buffer_len()];
        parsed.emit(&mut out);
        assert_eq!(out, f, "frame {} re-emits byte for byte", i + 1);
        for n in 0..f.len() {
            assert!(parse_frame(&f[..n]).is_err(), "frame {} prefix {n}", i + 1);
        }
        let Payload::Ip(ip) = &parsed.payload else {
            seen.arp += 1;
            continue;
        };
        // The upper layer's checksum, pseudo-header included, verifies
        // (ICMPv4 has no pseudo-header).
        let l4 = &f[ip.l4_range.clone()];
        match ip.l4 {
            L4::Tcp(_) => seen.tcp += 1,
            L4::Udp(_) => seen.udp += 1,
            L4::Icmp { .. } => seen.icmp += 1,
            L4::Other(..) => {}
        }
        if !matches!(ip.l4, L4::Icmp { .. }) || ip.src.is_ipv6() {
            assert_eq!(checksum::upper_layer(ip.src, ip.dst, ip.protocol, l4), 0);
        }
        match &ip.header {
            IpHeader::V4(h) => {
                assert_eq!(checksum::checksum(&f[14..14 + h.header_len()]), 0);
                seen.ipv4_options += usize::from(!h.options.is_empty());
            }
            IpHeader::V6(h) => {
                let hbh = h.ext.iter().any(|e| e.kind == ipv6::NEXT_HOP_BY_HOP);
                seen.hop_by_hop += usize::from(hbh);
            }
        }
    }
    seen
}

#[test]
fn veth_capture() {
    let s = check(VETH);
    assert!(
        s.arp >= 2 && s.tcp >= 20 && s.udp >= 4 && s.icmp >= 20,
        "{s:?}"
    );
    assert!(
        s.hop_by_hop >= 5 && s.ipv4_options >= 2 && s.fragments == 8,
        "{s:?}"
    );
}

#[test]
fn pasta_guest_capture() {
    let s = check(PASTA);
    assert!(s.arp >= 2 && s.tcp >= 2 && s.udp >= 4, "{s:?}");
}
