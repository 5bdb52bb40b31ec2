//! DHCPv4 messages (RFC 2131) and their options (RFC 2132): a checked
//! view for what the guest sends, and an emitter for our replies.
//!
//! Guarantee: `Packet::new_checked` accepts only buffers holding the fixed
//! header and the magic cookie, after which no accessor panics; the
//! options iterator stops at the first malformed option instead of
//! reading past the buffer.

use std::net::Ipv4Addr;
use std::ops::Range;

use super::DropReason;

mod field {
    use std::ops::Range;
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: Range<usize> = 8..10;
    pub const FLAGS: Range<usize> = 10..12;
    pub const CIADDR: Range<usize> = 12..16;
    pub const YIADDR: Range<usize> = 16..20;
    pub const SIADDR: Range<usize> = 20..24;
    pub const GIADDR: Range<usize> = 24..28;
    pub const CHADDR: Range<usize> = 28..44;
    pub const MAGIC: Range<usize> = 236..240;
    pub const OPTIONS: usize = 240;
}

pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
pub const HEADER_LEN: usize = field::OPTIONS;
pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
const OP_REQUEST: u8 = 1;
const OP_REPLY: u8 = 2;
/// The broadcast bit of the flags field (RFC 2131 §2).
pub const FLAG_BROADCAST: u16 = 0x8000;

/// Option codes we read or write.
pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const BROADCAST: u8 = 28;
    pub const MTU: u8 = 26;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_LIST: u8 = 55;
    pub const MAX_SIZE: u8 = 57;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const CLIENT_ID: u8 = 61;
    pub const RAPID_COMMIT: u8 = 80;
    pub const SEARCH: u8 = 119;
    pub const END: u8 = 255;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
}

impl MessageType {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            _ => return None,
        })
    }

    pub fn as_u8(self) -> u8 {
        match self {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
        }
    }
}

pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn ipv4(b: &[u8], r: Range<usize>) -> Ipv4Addr {
    let o = &b[r];
    Ipv4Addr::new(o[0], o[1], o[2], o[3])
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        if b[field::MAGIC] != MAGIC_COOKIE {
            return Err(DropReason::Malformed);
        }
        Ok(Packet { buffer })
    }

    pub fn op(&self) -> u8 {
        self.buffer.as_ref()[field::OP]
    }
    pub fn xid(&self) -> u32 {
        u32::from_be_bytes(
            self.buffer.as_ref()[field::XID]
                .try_into()
                .unwrap_or([0; 4]),
        )
    }
    pub fn flags(&self) -> u16 {
        u16::from_be_bytes([self.buffer.as_ref()[10], self.buffer.as_ref()[11]])
    }
    pub fn ciaddr(&self) -> Ipv4Addr {
        ipv4(self.buffer.as_ref(), field::CIADDR)
    }
    pub fn giaddr(&self) -> Ipv4Addr {
        ipv4(self.buffer.as_ref(), field::GIADDR)
    }
    /// The client's hardware address (Ethernet: 6 bytes).
    pub fn chaddr(&self) -> [u8; 6] {
        let c = &self.buffer.as_ref()[field::CHADDR];
        [c[0], c[1], c[2], c[3], c[4], c[5]]
    }

    /// The options, in order; stops at END or at a malformed option.
    pub fn options(&self) -> Options<'_> {
        Options {
            data: &self.buffer.as_ref()[field::OPTIONS..],
        }
    }

    /// The first occurrence of option `code`.
    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options().find(|(c, _)| *c == code).map(|(_, v)| v)
    }
}

pub struct Options<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for Options<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&code, rest) = self.data.split_first()?;
            match code {
                opt::PAD => self.data = rest,
                opt::END => {
                    self.data = &[];
                    return None;
                }
                _ => {
                    let (&len, rest) = rest.split_first()?;
                    if rest.len() < len as usize {
                        self.data = &[];
                        return None;
                    }
                    let (value, rest) = rest.split_at(len as usize);
                    self.data = rest;
                    return Some((code, value));
                }
            }
        }
    }
}

/// What we need of a client's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: MessageType,
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    pub requested_ip: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
}

impl Request {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self, DropReason> {
        let b = p.buffer.as_ref();
        if p.op() != OP_REQUEST || b[field::HTYPE] != 1 || b[field::HLEN] != 6 {
            return Err(DropReason::Unsupported);
        }
        let addr = |v: &[u8]| <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from);
        let kind = p
            .option(opt::MESSAGE_TYPE)
            .and_then(|v| v.first().copied())
            .and_then(MessageType::from_u8)
            .ok_or(DropReason::Malformed)?;
        Ok(Request {
            kind,
            xid: p.xid(),
            flags: p.flags(),
            ciaddr: p.ciaddr(),
            chaddr: p.chaddr(),
            requested_ip: p.option(opt::REQUESTED_IP).and_then(addr),
            server_id: p.option(opt::SERVER_ID).and_then(addr),
        })
    }
}

/// A reply we send: the fixed fields plus options, already encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// (code, value) pairs after the message type; values over 255 bytes
    /// are split across repeated options (RFC 3396).
    pub options: Vec<(u8, Vec<u8>)>,
}

impl Reply {
    pub fn buffer_len(&self) -> usize {
        let opts: usize = self
            .options
            .iter()
            .map(|(_, v)| v.len() + 2 * v.len().div_ceil(255).max(1))
            .sum();
        // message type (3) + options + END, padded to the BOOTP minimum.
        (HEADER_LEN + 3 + opts + 1).max(300)
    }

    /// Writes the message into `buf` (exactly `buffer_len()` bytes).
    pub fn emit(&self, buf: &mut [u8]) {
        buf.fill(0);
        buf[field::OP] = OP_REPLY;
        buf[field::HTYPE] = 1;
        buf[field::HLEN] = 6;
        buf[field::XID].copy_from_slice(&self.xid.to_be_bytes());
        buf[field::SECS].copy_from_slice(&[0, 0]);
        buf[field::FLAGS].copy_from_slice(&self.flags.to_be_bytes());
        buf[field::CIADDR].copy_from_slice(&self.ciaddr.octets());
        buf[field::YIADDR].copy_from_slice(&self.yiaddr.octets());
        buf[field::SIADDR].copy_from_slice(&self.siaddr.octets());
        buf[field::GIADDR].copy_from_slice(&[0; 4]);
        buf[field::CHADDR.start..field::CHADDR.start + 6].copy_from_slice(&self.chaddr);
        buf[field::MAGIC].copy_from_slice(&MAGIC_COOKIE);
        let mut at = field::OPTIONS;
        buf[at..at + 3].copy_from_slice(&[opt::MESSAGE_TYPE, 1, self.kind.as_u8()]);
        at += 3;
        for (code, value) in &self.options {
            let mut chunks = value.chunks(255).peekable();
            if chunks.peek().is_none() {
                buf[at..at + 2].copy_from_slice(&[*code, 0]);
                at += 2;
            }
            for chunk in chunks {
                buf[at] = *code;
                buf[at + 1] = chunk.len() as u8;
                buf[at + 2..at + 2 + chunk.len()].copy_from_slice(chunk);
                at += 2 + chunk.len();
            }
        }
        buf[at] = opt::END;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DHCPDISCOVER as busybox udhcpc sends it (xid 0x3903f326, client
    /// 52:54:00:12:34:56, parameter list 1,3,6,12,15,28,42), trimmed of
    /// its trailing padding.
    fn discover() -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&[0x39, 0x03, 0xf3, 0x26]);
        b[28..34].copy_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        b[236..240].copy_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[53, 1, 1]);
        b.extend_from_slice(&[61, 7, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        b.extend_from_slice(&[57, 2, 0x02, 0x40]);
        b.extend_from_slice(&[55, 7, 1, 3, 6, 12, 15, 28, 42]);
        b.extend_from_slice(&[0, 0, 255]);
        b
    }

    #[test]
    fn parses_a_discover() {
        let bytes = discover();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let r = Request::parse(&p).unwrap();
        assert_eq!(r.kind, MessageType::Discover);
        assert_eq!(r.xid, 0x3903_f326);
        assert_eq!(r.chaddr, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(r.requested_ip, None);
        assert_eq!(
            p.option(opt::PARAMETER_LIST),
            Some(&[1, 3, 6, 12, 15, 28, 42][..])
        );
        assert_eq!(p.options().count(), 4);
    }

    #[test]
    fn truncated_and_garbage_input_is_refused() {
        let bytes = discover();
        for n in 0..HEADER_LEN {
            assert!(Packet::new_checked(&bytes[..n]).is_err());
        }
        // Cut inside the options: the iterator stops, nothing panics.
        for n in HEADER_LEN..bytes.len() {
            let p = Packet::new_checked(&bytes[..n]).unwrap();
            let _ = p.options().count();
            let _ = Request::parse(&p);
        }
        let mut bad = bytes.clone();
        bad[236] = 0;
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(DropReason::Malformed)
        );
        let mut no_type = bytes[..HEADER_LEN].to_vec();
        no_type.push(255);
        let p = Packet::new_checked(&no_type[..]).unwrap();
        assert_eq!(Request::parse(&p), Err(DropReason::Malformed));
    }

    #[test]
    fn reply_round_trips_and_splits_long_options() {
        let reply = Reply {
            kind: MessageType::Offer,
            xid: 7,
            flags: FLAG_BROADCAST,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::new(192, 0, 2, 2),
            siaddr: Ipv4Addr::new(192, 0, 2, 1),
            chaddr: [2, 0, 0, 0, 0, 1],
            options: vec![
                (opt::SUBNET_MASK, vec![255, 255, 255, 0]),
                (opt::SEARCH, vec![b'x'; 300]),
            ],
        };
        let mut buf = vec![0u8; reply.buffer_len()];
        reply.emit(&mut buf);
        assert!(buf.len() >= 300);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.op(), OP_REPLY);
        assert_eq!(p.xid(), 7);
        assert_eq!(ipv4(&buf, field::YIADDR), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(p.option(opt::MESSAGE_TYPE), Some(&[2][..]));
        assert_eq!(p.option(opt::SUBNET_MASK), Some(&[255, 255, 255, 0][..]));
        let search: Vec<u8> = p
            .options()
            .filter(|(c, _)| *c == opt::SEARCH)
            .flat_map(|(_, v)| v.to_vec())
            .collect();
        assert_eq!(search, vec![b'x'; 300]);
    }
}
