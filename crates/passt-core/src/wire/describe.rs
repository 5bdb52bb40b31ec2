//! One line of text per frame, for `--trace`: what a person reading the
//! log needs to follow a conversation (addresses, ports, TCP flags and
//! sequence numbers, ICMP types, ARP questions), in the spirit of
//! tcpdump's one-line output. TCP and UDP checksums are not checked: on
//! pasta's tap they are often left to the other side (`backend::vnet`).

use std::fmt::Write;
use std::net::SocketAddr;

use super::ethernet::format_mac;
use super::frame::{parse_frame_with, Payload, L4};
use super::{arp, tcp};

/// TCP flags as tcpdump writes them, in its order.
fn flags(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (tcp::SYN, 'S'),
        (tcp::FIN, 'F'),
        (tcp::RST, 'R'),
        (tcp::PSH, 'P'),
        (tcp::URG, 'U'),
        (tcp::ECE, 'E'),
        (tcp::CWR, 'W'),
        (tcp::ACK, '.'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The frame in one line; a frame that does not parse says why, and how
/// long it was.
pub fn describe(frame: &[u8]) -> String {
    let f = match parse_frame_with(frame, false) {
        Ok(f) => f,
        Err(reason) => return format!("{} bytes, not parsed: {}", frame.len(), reason.as_str()),
    };
    let ip = match &f.payload {
        Payload::Arp(a) if a.op == arp::OP_REQUEST => {
            return format!("ARP who-has {} tell {}", a.target_ip, a.sender_ip)
        }
        Payload::Arp(a) => {
            return format!("ARP {} is-at {}", a.sender_ip, format_mac(a.sender_mac))
        }
        Payload::Ip(ip) => ip,
    };
    let mut s = String::new();
    match &ip.l4 {
        L4::Tcp(t) => {
            let _ = write!(
                s,
                "{} > {} TCP [{}] seq {}",
                SocketAddr::new(ip.src, t.src_port),
                SocketAddr::new(ip.dst, t.dst_port),
                flags(t.flags),
                t.seq
            );
            if t.flags & tcp::ACK != 0 {
                let _ = write!(s, " ack {}", t.ack);
            }
            let _ = write!(s, " win {} len {}", t.window, t.payload.len());
        }
        L4::Udp(u) => {
            let _ = write!(
                s,
                "{} > {} UDP len {}",
                SocketAddr::new(ip.src, u.src_port),
                SocketAddr::new(ip.dst, u.dst_port),
                u.payload.len()
            );
        }
        L4::Icmp { repr, message } => {
            let v = if ip.src.is_ipv6() { "ICMPv6" } else { "ICMP" };
            let _ = write!(
                s,
                "{} > {} {v} type {} code {} id {} seq {} len {}",
                ip.src,
                ip.dst,
                repr.kind,
                repr.code,
                repr.id,
                repr.seq,
                message.len()
            );
        }
        L4::Other(proto, b) => {
            let _ = write!(s, "{} > {} proto {proto} len {}", ip.src, ip.dst, b.len());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1,
        ];
        let len = (20 + l4.len()) as u16;
        h[2..4].copy_from_slice(&len.to_be_bytes());
        let sum = checksum::finish(checksum::sum(0, &h));
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h.extend_from_slice(l4);
        h
    }

    #[test]
    #[rustfmt::skip]
    fn tcp_syn_and_data() {
        // 40000 -> 80, seq 1000, SYN, window 64240, no options.
        let syn = [0x9c, 0x40, 0, 80, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0];
        assert_eq!(
            describe(&eth(0x0800, &ipv4(6, &syn))),
            "192.0.2.2:40000 > 192.0.2.1:80 TCP [S] seq 1000 win 64240 len 0"
        );
        // PSH+ACK with 3 bytes, ack 77.
        let mut data = vec![0x9c, 0x40, 0, 80, 0, 0, 0x03, 0xe9, 0, 0, 0, 77, 0x50, 0x18, 0x01, 0x00, 0, 0, 0, 0];
        data.extend_from_slice(b"abc");
        assert_eq!(
            describe(&eth(0x0800, &ipv4(6, &data))),
            "192.0.2.2:40000 > 192.0.2.1:80 TCP [P.] seq 1001 ack 77 win 256 len 3"
        );
    }

    #[test]
    #[rustfmt::skip]
    fn udp_icmp_arp_and_garbage() {
        let udp = [0x9c, 0x41, 0, 53, 0, 12, 0, 0, b'd', b'n', b's', b'?'];
        assert_eq!(
            describe(&eth(0x0800, &ipv4(17, &udp))),
            "192.0.2.2:40001 > 192.0.2.1:53 UDP len 4"
        );
        // Echo request, id 7, seq 1, 4 data bytes.
        let mut echo = vec![8, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3, 4];
        let sum = checksum::finish(checksum::sum(0, &echo));
        echo[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            describe(&eth(0x0800, &ipv4(1, &echo))),
            "192.0.2.2 > 192.0.2.1 ICMP type 8 code 0 id 7 seq 1 len 12"
        );
        let who_has = [0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 192, 0, 2, 2, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1];
        assert_eq!(describe(&eth(0x0806, &who_has)), "ARP who-has 192.0.2.1 tell 192.0.2.2");
        let reply = [0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 1, 192, 0, 2, 1, 2, 0, 0, 0, 0, 2, 192, 0, 2, 2];
        assert_eq!(describe(&eth(0x0806, &reply)), "ARP 192.0.2.1 is-at 02:00:00:00:00:01");
        assert_eq!(describe(&[1, 2, 3]), "3 bytes, not parsed: truncated");
    }
}
