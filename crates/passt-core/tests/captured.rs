//! Frames captured from real traffic (a pasta namespace's kernel talking
//! to the engine: DHCP, ARP, ping, TCP SYNs with options, UDP, NDP, MLD
//! with a Hop-by-Hop header, DHCPv6), in `fixtures/pasta-guest.pcap`.
//! Every frame parses, and re-emitting its headers from what was parsed
//! gives the captured bytes back.

use std::net::IpAddr;

use passt_core::wire::frame::{parse_frame, Payload, L4};
use passt_core::wire::{arp, ethernet, ipv4, ipv6, udp};

fn frames() -> Vec<Vec<u8>> {
    let data = include_bytes!("fixtures/pasta-guest.pcap");
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let cap = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16;
        out.push(data[off..off + cap].to_vec());
        off += cap;
    }
    out
}

#[test]
fn every_captured_frame_parses() {
    let frames = frames();
    assert!(frames.len() >= 20);
    for (i, f) in frames.iter().enumerate() {
        parse_frame(f).unwrap_or_else(|e| panic!("frame {i}: {e:?}"));
    }
}

#[test]
fn headers_re_emit_byte_identical() {
    let (mut tcp_seen, mut udp_seen, mut arp_seen) = (0, 0, 0);
    for f in frames() {
        let parsed = parse_frame(&f).unwrap();
        let mut out = vec![0u8; f.len()];
        let eth = ethernet::Frame::parse(&f).unwrap();
        ethernet::emit_header(&mut out, eth.dst, eth.src, eth.ethertype);
        assert_eq!(out[..14], f[..14]);
        let l3 = &f[14..];
        match parsed.payload {
            Payload::Arp(a) => {
                a.emit(&mut out[14..14 + arp::LEN]);
                assert_eq!(out[14..14 + arp::LEN], l3[..arp::LEN]);
                arp_seen += 1;
            }
            Payload::Ip(ip) => {
                let l4_range = if ip.src.is_ipv4() {
                    ipv4::Repr::parse(l3).unwrap().payload
                } else {
                    ipv6::Repr::parse(l3).unwrap().payload
                };
                let l4_bytes = &l3[l4_range];
                match ip.l4 {
                    L4::Tcp(t) => {
                        let mut b = vec![0u8; l4_bytes.len()];
                        b[t.header_len()..].copy_from_slice(t.payload);
                        t.emit(&mut b, ip.src, ip.dst);
                        assert_eq!(b, l4_bytes, "TCP segment");
                        tcp_seen += 1;
                    }
                    L4::Udp(u) => {
                        let mut b = vec![0u8; l4_bytes.len()];
                        b[udp::HEADER_LEN..].copy_from_slice(u.payload);
                        let (s, d): (IpAddr, IpAddr) = (ip.src, ip.dst);
                        udp::emit(&mut b, s, d, u.src_port, u.dst_port, u.payload.len());
                        assert_eq!(b, l4_bytes, "UDP datagram");
                        udp_seen += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(
        tcp_seen >= 2 && udp_seen >= 4 && arp_seen >= 2,
        "{tcp_seen} {udp_seen} {arp_seen}"
    );
}
