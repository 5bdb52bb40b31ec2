//! Neighbor Discovery messages (RFC 4861) and the options we use, RDNSS
//! and DNSSL included (RFC 8106). Offsets are from the start of the ICMPv6
//! message (its type byte); the ICMPv6 checksum is the caller's, since it
//! needs the IPv6 pseudo-header.
//!
//! Guarantee: `parse` reads only within the message; an option with length
//! zero or running past the end stops the walk (RFC 4861 §4.6: such a
//! message must be discarded, which `parse` does by returning `Err`).

use std::net::Ipv6Addr;

use super::dnsname;
use super::DropReason;

pub const ROUTER_SOLICIT: u8 = 133;
pub const ROUTER_ADVERT: u8 = 134;
pub const NEIGHBOR_SOLICIT: u8 = 135;
pub const NEIGHBOR_ADVERT: u8 = 136;

pub mod opt {
    pub const SOURCE_LLADDR: u8 = 1;
    pub const TARGET_LLADDR: u8 = 2;
    pub const PREFIX_INFO: u8 = 3;
    pub const MTU: u8 = 5;
    pub const RDNSS: u8 = 25;
    pub const DNSSL: u8 = 31;
}

/// RA flags byte: M (addresses via DHCPv6), O (other config via DHCPv6).
pub const RA_MANAGED: u8 = 0x80;
pub const RA_OTHER: u8 = 0x40;
/// NA flags (first byte of the flags word): Router, Solicited, Override.
pub const NA_ROUTER: u8 = 0x80;
pub const NA_SOLICITED: u8 = 0x40;
pub const NA_OVERRIDE: u8 = 0x20;
/// Prefix information flags: on-link, autonomous (SLAAC).
pub const PREFIX_ONLINK: u8 = 0x80;
pub const PREFIX_AUTO: u8 = 0x40;

/// A message from the guest, as much as we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    RouterSolicit {
        source_lladdr: Option<[u8; 6]>,
    },
    NeighborSolicit {
        target: Ipv6Addr,
        source_lladdr: Option<[u8; 6]>,
    },
    /// Advertisements and anything else we only observe.
    Other(u8),
}

fn options(mut data: &[u8]) -> Result<Vec<(u8, &[u8])>, DropReason> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 2 {
            return Err(DropReason::Malformed);
        }
        let len = data[1] as usize * 8;
        if len == 0 || len > data.len() {
            return Err(DropReason::Malformed);
        }
        out.push((data[0], &data[2..len]));
        data = &data[len..];
    }
    Ok(out)
}

fn lladdr(opts: &[(u8, &[u8])], code: u8) -> Option<[u8; 6]> {
    opts.iter()
        .find(|(c, _)| *c == code)
        .and_then(|(_, v)| v.get(..6))
        .and_then(|v| v.try_into().ok())
}

/// Parses an ICMPv6 message of an NDP type (checksum already verified).
pub fn parse(msg: &[u8]) -> Result<Message, DropReason> {
    let (&kind, _) = msg.split_first().ok_or(DropReason::Truncated)?;
    match kind {
        ROUTER_SOLICIT => {
            let opts = options(msg.get(8..).ok_or(DropReason::Truncated)?)?;
            Ok(Message::RouterSolicit {
                source_lladdr: lladdr(&opts, opt::SOURCE_LLADDR),
            })
        }
        NEIGHBOR_SOLICIT => {
            let target: [u8; 16] = msg
                .get(8..24)
                .ok_or(DropReason::Truncated)?
                .try_into()
                .map_err(|_| DropReason::Truncated)?;
            let opts = options(&msg[24..])?;
            Ok(Message::NeighborSolicit {
                target: Ipv6Addr::from(target),
                source_lladdr: lladdr(&opts, opt::SOURCE_LLADDR),
            })
        }
        other => Ok(Message::Other(other)),
    }
}

/// Contents of a Router Advertisement we send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterAdvert {
    pub flags: u8,
    pub router_lifetime: u16,
    pub source_lladdr: [u8; 6],
    /// (prefix, length, valid and preferred lifetime)
    pub prefix: Option<(Ipv6Addr, u8, u32)>,
    pub mtu: Option<u32>,
    /// (servers, lifetime)
    pub rdnss: Vec<Ipv6Addr>,
    pub dnssl: Vec<String>,
    pub dns_lifetime: u32,
}

impl RouterAdvert {
    /// The whole ICMPv6 message, checksum zero.
    pub fn emit(&self) -> Vec<u8> {
        let mut m = vec![ROUTER_ADVERT, 0, 0, 0, 64, self.flags];
        m.extend_from_slice(&self.router_lifetime.to_be_bytes());
        m.extend_from_slice(&[0; 8]); // reachable time, retrans timer: unspecified
        if let Some((prefix, len, lifetime)) = self.prefix {
            m.extend_from_slice(&[opt::PREFIX_INFO, 4, len, PREFIX_ONLINK | PREFIX_AUTO]);
            m.extend_from_slice(&lifetime.to_be_bytes());
            m.extend_from_slice(&lifetime.to_be_bytes());
            m.extend_from_slice(&[0; 4]);
            m.extend_from_slice(&prefix.octets());
        }
        if let Some(mtu) = self.mtu {
            m.extend_from_slice(&[opt::MTU, 1, 0, 0]);
            m.extend_from_slice(&mtu.to_be_bytes());
        }
        if !self.rdnss.is_empty() {
            m.extend_from_slice(&[opt::RDNSS, (1 + 2 * self.rdnss.len()) as u8, 0, 0]);
            m.extend_from_slice(&self.dns_lifetime.to_be_bytes());
            for a in &self.rdnss {
                m.extend_from_slice(&a.octets());
            }
        }
        let names = dnsname::encode_list(self.dnssl.iter().map(String::as_str));
        if !names.is_empty() {
            let padded = (8 + names.len()).div_ceil(8) * 8;
            if padded / 8 <= 255 {
                m.extend_from_slice(&[opt::DNSSL, (padded / 8) as u8, 0, 0]);
                m.extend_from_slice(&self.dns_lifetime.to_be_bytes());
                m.extend_from_slice(&names);
                m.resize(m.len() + padded - 8 - names.len(), 0);
            }
        }
        m.extend_from_slice(&[opt::SOURCE_LLADDR, 1]);
        m.extend_from_slice(&self.source_lladdr);
        m
    }
}

/// A Neighbor Advertisement for `target` owned by `lladdr`.
pub fn neighbor_advert(target: Ipv6Addr, lladdr: [u8; 6], flags: u8) -> Vec<u8> {
    let mut m = vec![NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[opt::TARGET_LLADDR, 1]);
    m.extend_from_slice(&lladdr);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Neighbor Solicitation from fe80::5054:ff:fe12:3456 for fe80::1,
    /// with a source link-layer address option (as Linux sends it).
    const NS: [u8; 32] = [
        0x87, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 1, 0x01, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
    ];

    #[test]
    fn parses_a_neighbor_solicitation() {
        assert_eq!(
            parse(&NS),
            Ok(Message::NeighborSolicit {
                target: "fe80::1".parse().unwrap(),
                source_lladdr: Some([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            })
        );
    }

    #[test]
    fn malformed_options_are_refused() {
        let mut zero_len = NS;
        zero_len[25] = 0;
        assert_eq!(parse(&zero_len), Err(DropReason::Malformed));
        let mut too_long = NS;
        too_long[25] = 2;
        assert_eq!(parse(&too_long), Err(DropReason::Malformed));
        for n in 0..24 {
            assert!(parse(&NS[..n]).is_err(), "prefix of {n} bytes");
        }
        assert_eq!(
            parse(&[ROUTER_SOLICIT, 0, 0, 0]),
            Err(DropReason::Truncated)
        );
        assert_eq!(
            parse(&[ROUTER_SOLICIT, 0, 0, 0, 0, 0, 0, 0]),
            Ok(Message::RouterSolicit {
                source_lladdr: None
            })
        );
    }

    #[test]
    fn router_advert_layout() {
        let ra = RouterAdvert {
            flags: RA_OTHER,
            router_lifetime: 65535,
            source_lladdr: [2, 0, 0, 0, 0, 1],
            prefix: Some(("fd00::".parse().unwrap(), 64, 3600)),
            mtu: Some(65520),
            rdnss: vec!["fd00::53".parse().unwrap()],
            dnssl: vec!["example.org".into()],
            dns_lifetime: 600,
        };
        let m = ra.emit();
        assert_eq!(&m[..8], &[134, 0, 0, 0, 64, RA_OTHER, 0xff, 0xff]);
        assert_eq!(m.len() % 8, 0, "options are 8-byte multiples");
        let opts = options(&m[16..]).unwrap();
        let kinds: Vec<u8> = opts.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, vec![3, 5, 25, 31, 1]);
        assert_eq!(opts[0].1[0], 64);
        assert_eq!(&opts[1].1[2..6], &65520u32.to_be_bytes());
        assert_eq!(&opts[3].1[6..19], b"\x07example\x03org\x00");
    }

    #[test]
    fn neighbor_advert_layout() {
        let m = neighbor_advert("fe80::1".parse().unwrap(), [2, 0, 0, 0, 0, 1], NA_SOLICITED);
        assert_eq!(m.len(), 32);
        assert_eq!(m[0], NEIGHBOR_ADVERT);
        assert_eq!(m[4], NA_SOLICITED);
        assert_eq!(&m[24..], &[2, 1, 2, 0, 0, 0, 0, 1]);
    }
}
