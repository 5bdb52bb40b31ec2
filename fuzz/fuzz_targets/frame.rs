//! Fuzz target: any bytes as a frame from the guest, through the
//! whole-frame parser the engine calls. Parsing must never panic and the
//! ranges it reports must lie in the frame. Whatever parses is emitted
//! again: that frame must parse too, and emitting it once more must give
//! the same bytes (parse and emit agree, whatever the input was).
//!
//! `--trace`'s one-line description of the bytes must not panic either.
//!
//! The same bytes then go through the L2 dispatch and the services
//! (ARP, DHCP, NDP, DHCPv6), with echo, TCP and UDP switched off so that
//! no socket is ever opened; every reply they emit must parse.
#![no_main]

use std::time::Instant;

use passt_core::backend::txqueue::TxQueue;
use passt_core::config::GuestConfig;
use passt_core::flow::icmp::{GatewayMap, IcmpFlows};
use passt_core::flow::tcp::TcpFlows;
use passt_core::flow::udp::UdpFlows;
use passt_core::l2::{Flows, L2};
use passt_core::wire::frame::parse_frame;

#[no_mangle]
pub extern "C" fn LLVMFuzzerTestOneInput(data: *const u8, size: usize) -> i32 {
    let bytes = if size == 0 {
        &[][..]
    } else {
        // SAFETY: libFuzzer passes a valid buffer of `size` bytes that
        // stays alive and unchanged for the duration of this call.
        unsafe { std::slice::from_raw_parts(data, size) }
    };
    check(bytes);
    let _ = passt_core::wire::describe::describe(bytes);
    dispatch(bytes);
    0
}

fn dispatch(bytes: &[u8]) {
    let mut cfg = GuestConfig::example();
    cfg.disabled.icmp = true;
    cfg.disabled.tcp = true;
    cfg.disabled.udp = true;
    let mut l2 = L2::new(cfg);
    let mut tx = TxQueue::new(1 << 20);
    let mut flows = Flows {
        icmp: IcmpFlows::new(GatewayMap::default()),
        tcp: TcpFlows::new(GatewayMap::default(), 65520),
        udp: UdpFlows::new(GatewayMap::default()),
        udp_forwards: Vec::new(),
        gate: None,
    };
    let _ = l2.guest_frame(bytes, false, Instant::now(), &mut tx, &mut flows);
    for f in tx.frames() {
        assert!(parse_frame(f).is_ok(), "a service emitted a frame we refuse");
    }
}

fn check(bytes: &[u8]) {
    let Ok(frame) = parse_frame(bytes) else {
        return;
    };
    if let Some(ip) = frame.ip() {
        let (l4, data) = (ip.l4_range.clone(), ip.data.clone());
        assert!(l4.start <= data.start && data.end <= l4.end && l4.end <= bytes.len());
    }
    let mut first = vec![0u8; frame.buffer_len()];
    frame.emit(&mut first);
    let again = parse_frame(&first).expect("we emitted a frame we refuse");
    let mut second = vec![0u8; again.buffer_len()];
    again.emit(&mut second);
    assert_eq!(first, second, "emit(parse(x)) is not a fixed point");
}
