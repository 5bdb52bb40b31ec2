//! passt-core: the engine of passt-ts, with no Node-API in it.
//!
//! Data flows one way through these modules: a backend delivers guest
//! frames, `wire` parses them into typed views, services (ARP, DHCP, NDP,
//! DHCPv6) answer the guest themselves and flows carry L4 traffic over host
//! sockets; replies travel back the same way. Lower modules never import
//! upper ones: `wire` imports nothing, `engine` imports everything.
//!
//! Module map:
//! - `backend` frame sources: qemu stream framing (tap comes with pasta)
//! - `l2`     guest frames to services and flows, and back
//! - `services` ARP, DHCP, NDP, DHCPv6 answers (pure)
//! - `config` the validated configuration the engine runs on
//! - `wire`   typed views over byte slices, parse/emit, checksums (no I/O)
//! - `flow`   L4 flows over host sockets (ICMP echo so far)
//! - `engine` the epoll loop, typed tokens, the 20 ms timer, start/stop
//! - `netlink` host discovery and namespace configuration (rtnetlink)
//! - `netns`  the namespace agent protocol (pasta), `nsagent` its program
//! - `sys`    every raw system call wrapper (the only `unsafe` code)

#![deny(unsafe_code)]

pub mod backend;
pub mod config;
pub mod engine;
pub mod flow;
pub mod l2;
pub mod netlink;
pub mod netns;
pub mod nsagent;
pub mod services;
pub mod slab;
mod sys;
pub mod wire;
