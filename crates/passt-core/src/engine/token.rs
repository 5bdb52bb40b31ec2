//! The u64 carried by every epoll registration. It says what kind of
//! descriptor is ready and, for per-flow sockets, which flow and which side,
//! so the loop dispatches with one `match` and never asks the kernel.
//!
//! Layout: bits 56..64 kind, bits 48..56 side, bits 0..32 index.
//! Bits 32..48 are zero; a word with them set, or an unknown kind, is not a
//! token we issued.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The eventfd other threads signal: stop requests, later hook replies.
    Waker = 1,
    /// The periodic timer (ACK and retransmission deadlines, expiry).
    Timer = 2,
    /// passt's listening UNIX socket (a guest is waiting to connect).
    Listen = 3,
    /// The guest link: qemu stream or tap.
    Guest = 4,
    /// An ICMP echo flow's ping socket; index = flow.
    Icmp = 5,
    /// pasta's namespace agent (reports the command's exit).
    Agent = 6,
    /// A TCP flow's host socket; index = flow, side = slot generation.
    Tcp = 7,
    /// A listening socket of an inbound TCP forward; index = forward.
    TcpListen = 8,
    /// One side of a spliced connection; index = flow, side = slot
    /// generation << 1 | which side.
    Splice = 9,
    /// A `-T` listener in pasta's namespace; index = its place in the list.
    SpliceListen = 10,
    /// A UDP flow's socket; index = flow, side = slot generation.
    Udp = 11,
    /// A listening socket of an inbound UDP forward (`-u`); index = its
    /// place in the list.
    UdpListen = 12,
    /// A spliced UDP flow's socket; index = flow, side = slot generation.
    UdpSplice = 13,
    /// A `-U` listener in pasta's namespace; index = its place in the list.
    UdpSpliceListen = 14,
    /// The eventfd policy answers signal (`flow::policy::Inbox`).
    Policy = 15,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::Waker),
            2 => Some(Kind::Timer),
            3 => Some(Kind::Listen),
            4 => Some(Kind::Guest),
            5 => Some(Kind::Icmp),
            6 => Some(Kind::Agent),
            7 => Some(Kind::Tcp),
            8 => Some(Kind::TcpListen),
            9 => Some(Kind::Splice),
            10 => Some(Kind::SpliceListen),
            11 => Some(Kind::Udp),
            12 => Some(Kind::UdpListen),
            13 => Some(Kind::UdpSplice),
            14 => Some(Kind::UdpSpliceListen),
            15 => Some(Kind::Policy),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub side: u8,
    pub index: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadToken(pub u64);

impl Token {
    pub const fn new(kind: Kind, side: u8, index: u32) -> Self {
        Token { kind, side, index }
    }

    pub const fn of(kind: Kind) -> Self {
        Token::new(kind, 0, 0)
    }

    pub const fn encode(self) -> u64 {
        ((self.kind as u64) << 56) | ((self.side as u64) << 48) | self.index as u64
    }

    pub fn decode(raw: u64) -> Result<Token, BadToken> {
        if raw & 0x0000_ffff_0000_0000 != 0 {
            return Err(BadToken(raw));
        }
        let kind = Kind::from_u8((raw >> 56) as u8).ok_or(BadToken(raw))?;
        Ok(Token {
            kind,
            side: (raw >> 48) as u8,
            index: raw as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for kind in [
            Kind::Waker,
            Kind::Timer,
            Kind::Listen,
            Kind::Guest,
            Kind::Icmp,
            Kind::Agent,
            Kind::Tcp,
            Kind::TcpListen,
            Kind::Splice,
            Kind::SpliceListen,
            Kind::Udp,
            Kind::UdpListen,
            Kind::UdpSplice,
            Kind::UdpSpliceListen,
            Kind::Policy,
        ] {
            for side in [0u8, 1, 255] {
                for index in [0u32, 1, 0xdead_beef, u32::MAX] {
                    let t = Token::new(kind, side, index);
                    assert_eq!(Token::decode(t.encode()), Ok(t));
                }
            }
        }
    }

    #[test]
    fn layout_is_stable() {
        assert_eq!(
            Token::new(Kind::Timer, 1, 7).encode(),
            0x0201_0000_0000_0007
        );
    }

    #[test]
    fn rejects_foreign_words() {
        assert_eq!(Token::decode(0), Err(BadToken(0)));
        assert!(Token::decode(0xff00_0000_0000_0000).is_err());
        assert!(Token::decode(0x0100_0001_0000_0000).is_err());
    }
}
