//! DHCPv6 messages (RFC 8415) between a client and a server (no relays):
//! a 4-byte header (type, transaction id) and TLV options with 16-bit
//! codes and lengths. `parse` reads what a server needs from a client
//! message; `Reply::emit` writes ADVERTISE and REPLY messages.
//!
//! Guarantee: parsing reads only inside the buffer; an option whose
//! length runs past its container makes the message `Malformed`.

use std::net::Ipv6Addr;

use super::dnsname;
use super::DropReason;

pub const CLIENT_PORT: u16 = 546;
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers.
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Solicit,
    Advertise,
    Request,
    Confirm,
    Renew,
    Rebind,
    Reply,
    Release,
    Decline,
    InformationRequest,
}

impl MessageType {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => MessageType::Solicit,
            2 => MessageType::Advertise,
            3 => MessageType::Request,
            4 => MessageType::Confirm,
            5 => MessageType::Renew,
            6 => MessageType::Rebind,
            7 => MessageType::Reply,
            8 => MessageType::Release,
            9 => MessageType::Decline,
            11 => MessageType::InformationRequest,
            _ => return None,
        })
    }

    pub fn as_u8(self) -> u8 {
        match self {
            MessageType::Solicit => 1,
            MessageType::Advertise => 2,
            MessageType::Request => 3,
            MessageType::Confirm => 4,
            MessageType::Renew => 5,
            MessageType::Rebind => 6,
            MessageType::Reply => 7,
            MessageType::Release => 8,
            MessageType::Decline => 9,
            MessageType::InformationRequest => 11,
        }
    }
}

pub mod opt {
    pub const CLIENTID: u16 = 1;
    pub const SERVERID: u16 = 2;
    pub const IA_NA: u16 = 3;
    pub const IAADDR: u16 = 5;
    pub const ORO: u16 = 6;
    pub const STATUS_CODE: u16 = 13;
    pub const RAPID_COMMIT: u16 = 14;
    pub const DNS_SERVERS: u16 = 23;
    pub const DOMAIN_LIST: u16 = 24;
}

/// Status codes (RFC 8415 §21.13).
pub mod status {
    pub const SUCCESS: u16 = 0;
    pub const NOT_ON_LINK: u16 = 4;
}

fn options(mut data: &[u8]) -> Result<Vec<(u16, &[u8])>, DropReason> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 {
            return Err(DropReason::Malformed);
        }
        let code = u16::from_be_bytes([data[0], data[1]]);
        let len = u16::from_be_bytes([data[2], data[3]]) as usize;
        let value = data.get(4..4 + len).ok_or(DropReason::Malformed)?;
        out.push((code, value));
        data = &data[4 + len..];
    }
    Ok(out)
}

/// What a server needs of a client's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: MessageType,
    pub xid: [u8; 3],
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    /// IAID of the first IA_NA, and the addresses the client put in it.
    pub ia_na: Option<(u32, Vec<Ipv6Addr>)>,
    pub rapid_commit: bool,
}

pub fn parse(msg: &[u8]) -> Result<Request, DropReason> {
    if msg.len() < 4 {
        return Err(DropReason::Truncated);
    }
    let kind = MessageType::from_u8(msg[0]).ok_or(DropReason::Unsupported)?;
    let mut r = Request {
        kind,
        xid: [msg[1], msg[2], msg[3]],
        client_id: None,
        server_id: None,
        ia_na: None,
        rapid_commit: false,
    };
    for (code, value) in options(&msg[4..])? {
        match code {
            opt::CLIENTID => r.client_id = Some(value.to_vec()),
            opt::SERVERID => r.server_id = Some(value.to_vec()),
            opt::RAPID_COMMIT => r.rapid_commit = true,
            opt::IA_NA if r.ia_na.is_none() => {
                if value.len() < 12 {
                    return Err(DropReason::Malformed);
                }
                let iaid = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
                let addrs = options(&value[12..])?
                    .into_iter()
                    .filter(|(c, v)| *c == opt::IAADDR && v.len() >= 24)
                    .filter_map(|(_, v)| <[u8; 16]>::try_from(&v[..16]).ok())
                    .map(Ipv6Addr::from)
                    .collect();
                r.ia_na = Some((iaid, addrs));
            }
            _ => {}
        }
    }
    Ok(r)
}

/// An ADVERTISE or REPLY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub xid: [u8; 3],
    pub server_id: Vec<u8>,
    pub client_id: Option<Vec<u8>>,
    /// (IAID, address, lifetime); `None` lifetime on the address = no IA.
    pub ia_na: Option<(u32, Ipv6Addr, u32)>,
    /// A status for the whole message (e.g. NotOnLink for CONFIRM).
    pub status: Option<(u16, &'static str)>,
    pub rapid_commit: bool,
    pub dns: Vec<Ipv6Addr>,
    pub search: Vec<String>,
}

fn put(m: &mut Vec<u8>, code: u16, value: &[u8]) {
    m.extend_from_slice(&code.to_be_bytes());
    m.extend_from_slice(&(value.len() as u16).to_be_bytes());
    m.extend_from_slice(value);
}

/// DUID-LL (RFC 8415 §11.4) for an Ethernet address: our server id.
pub fn duid_ll(mac: [u8; 6]) -> Vec<u8> {
    [&[0, 3, 0, 1][..], &mac].concat()
}

impl Reply {
    pub fn emit(&self) -> Vec<u8> {
        let mut m = vec![self.kind.as_u8(), self.xid[0], self.xid[1], self.xid[2]];
        put(&mut m, opt::SERVERID, &self.server_id);
        if let Some(c) = &self.client_id {
            put(&mut m, opt::CLIENTID, c);
        }
        if self.rapid_commit {
            put(&mut m, opt::RAPID_COMMIT, &[]);
        }
        if let Some((code, text)) = self.status {
            put(
                &mut m,
                opt::STATUS_CODE,
                &[&code.to_be_bytes()[..], text.as_bytes()].concat(),
            );
        }
        if let Some((iaid, addr, lifetime)) = self.ia_na {
            let mut iaaddr = addr.octets().to_vec();
            iaaddr.extend_from_slice(&lifetime.to_be_bytes()); // preferred
            iaaddr.extend_from_slice(&lifetime.to_be_bytes()); // valid
            let mut ia = iaid.to_be_bytes().to_vec();
            // T1/T2: renew at half the lifetime, rebind at 80% (RFC 8415 §21.4).
            ia.extend_from_slice(&(lifetime / 2).to_be_bytes());
            ia.extend_from_slice(&(lifetime / 5 * 4).to_be_bytes());
            put(&mut ia, opt::IAADDR, &iaaddr);
            put(&mut m, opt::IA_NA, &ia);
        }
        if !self.dns.is_empty() {
            let v: Vec<u8> = self.dns.iter().flat_map(|a| a.octets()).collect();
            put(&mut m, opt::DNS_SERVERS, &v);
        }
        let names = dnsname::encode_list(self.search.iter().map(String::as_str));
        if !names.is_empty() {
            put(&mut m, opt::DOMAIN_LIST, &names);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SOLICIT with rapid commit, client DUID-LL 52:54:00:12:34:56, an
    /// empty IA_NA (IAID 1) and an ORO asking for DNS servers and domains.
    const SOLICIT: [u8; 52] = [
        1, 0xab, 0xcd, 0xef, // SOLICIT, xid
        0, 1, 0, 10, 0, 3, 0, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // CLIENTID
        0, 14, 0, 0, // RAPID_COMMIT
        0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, // IA_NA
        0, 6, 0, 4, 0, 23, 0, 24, // ORO
        0, 8, 0, 2, 0, 0, // ELAPSED_TIME
    ];

    #[test]
    fn parses_a_solicit() {
        let r = parse(&SOLICIT).unwrap();
        assert_eq!(r.kind, MessageType::Solicit);
        assert_eq!(r.xid, [0xab, 0xcd, 0xef]);
        assert_eq!(r.client_id.as_deref(), Some(&SOLICIT[8..18]));
        assert!(r.rapid_commit);
        assert_eq!(r.ia_na, Some((1, vec![])));
        assert_eq!(r.server_id, None);
    }

    #[test]
    fn truncated_options_are_malformed() {
        for n in 4..SOLICIT.len() {
            // Any cut that splits an option is refused; cuts between
            // options are valid shorter messages.
            let _ = parse(&SOLICIT[..n]);
        }
        assert_eq!(parse(&SOLICIT[..20]), Err(DropReason::Malformed));
        assert_eq!(parse(&SOLICIT[..3]), Err(DropReason::Truncated));
        assert_eq!(parse(&[12, 0, 0, 0]), Err(DropReason::Unsupported));
    }

    #[test]
    fn reply_round_trips_through_parse() {
        let reply = Reply {
            kind: MessageType::Reply,
            xid: [1, 2, 3],
            server_id: duid_ll([2, 0, 0, 0, 0, 1]),
            client_id: Some(SOLICIT[8..18].to_vec()),
            ia_na: Some((1, "fd00::2".parse().unwrap(), 3600)),
            status: None,
            rapid_commit: true,
            dns: vec!["fd00::53".parse().unwrap()],
            search: vec!["example.org".into()],
        };
        let m = reply.emit();
        // Our parser reads client messages, but the TLV layout is shared.
        let back = parse(&m).unwrap();
        assert_eq!(back.kind, MessageType::Reply);
        assert_eq!(back.server_id, Some(duid_ll([2, 0, 0, 0, 0, 1])));
        assert_eq!(back.ia_na, Some((1, vec!["fd00::2".parse().unwrap()])));
        assert!(back.rapid_commit);
        let opts = options(&m[4..]).unwrap();
        let dns = opts.iter().find(|(c, _)| *c == opt::DNS_SERVERS).unwrap().1;
        assert_eq!(dns, &"fd00::53".parse::<Ipv6Addr>().unwrap().octets()[..]);
    }
}
