//! What the owner asks of a running engine, carried out on its thread:
//! forwards added and removed, and the census of live flows.

use std::io;

use super::{free_slot, Census, Command, Engine, Kind, Token, HOST_LISTENER};
use crate::flow::udp_splice::ListenerKey;

impl Engine {
    /// Runs what the owner asked for.
    pub(super) fn commands(&mut self) -> io::Result<()> {
        let commands = match self.shared.commands.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return Ok(()),
        };
        for c in commands {
            match c {
                Command::AddTcp(list) => {
                    for f in list {
                        let (i, gen) = self.listeners.add(f);
                        if let Some(l) = self.listeners.listener(i) {
                            let token = Token::new(Kind::TcpListen, gen, i as u32);
                            self.epoll.add_readable(l, token.encode())?;
                        }
                    }
                }
                Command::AddUdp(list) => {
                    for f in list {
                        let i = free_slot(&mut self.flows.udp_forwards);
                        let token = Token::new(Kind::UdpListen, 0, i as u32);
                        self.epoll.add_readable(&f.sock, token.encode())?;
                        self.flows.udp_forwards[i] = Some(f);
                    }
                }
                Command::RemoveTcp(addrs, reply) => {
                    let n = addrs.iter().map(|a| self.listeners.remove(*a)).sum();
                    let _ = reply.send(n);
                }
                Command::RemoveUdp(addrs, reply) => {
                    let mut n = 0;
                    for i in 0..self.flows.udp_forwards.len() {
                        let hit = self.flows.udp_forwards[i]
                            .as_ref()
                            .and_then(|f| f.sock.local_addr().ok())
                            .is_some_and(|a| addrs.contains(&a));
                        if hit {
                            self.flows.udp_forwards[i] = None;
                            self.flows.udp.close_listener(i);
                            // And its host-loopback clients' spliced flows,
                            // which would answer through a successor.
                            self.udp_splice
                                .close_listener(HOST_LISTENER | i as ListenerKey);
                            n += 1;
                        }
                    }
                    let _ = reply.send(n);
                }
                Command::AddNs { udp, binds, reply } => {
                    let _ = reply.send(self.add_ns(udp, &binds));
                }
                Command::RemoveNs { udp, addrs, reply } => {
                    let _ = reply.send(self.remove_ns(udp, &addrs));
                }
                Command::Census(reply) => {
                    let _ = reply.send(self.census());
                }
            }
        }
        Ok(())
    }

    pub(super) fn census(&self) -> Census {
        let (tcp, tcp_bytes) = self.flows.tcp.census();
        let (udp, udp_bytes) = self.flows.udp.census();
        let gate = self.flows.gate.as_ref();
        Census {
            tcp: tcp.to_vec(),
            udp,
            icmp: self.flows.icmp.len() as u64,
            splice: self.splice.len() as u64,
            udp_splice: self.udp_splice.len() as u64,
            parked: gate.map_or(0, |g| g.parked() as u64),
            bytes: {
                let (s, u) = (self.splice.bytes(), self.udp_splice.bytes());
                let i = self.flows.icmp.bytes();
                [
                    tcp_bytes[0] + udp_bytes[0] + s[0] + u[0] + i[0],
                    tcp_bytes[1] + udp_bytes[1] + s[1] + u[1] + i[1],
                ]
            },
            policy: gate.map(|g| g.counts).unwrap_or_default(),
        }
    }
}
