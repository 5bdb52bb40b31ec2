//! Fuzz target: any bytes as a frame from the guest. Parsing must never
//! panic; whatever parses is dispatched through the services, and their
//! replies are emitted, as the engine would.
#![no_main]

use std::time::Instant;

use passt_core::backend::txqueue::TxQueue;
use passt_core::config::GuestConfig;
use passt_core::flow::icmp::{GatewayMap, IcmpFlows};
use passt_core::flow::tcp::TcpFlows;
use passt_core::l2::{Flows, L2};
use passt_core::wire::frame::parse_frame;

#[no_mangle]
pub extern "C" fn LLVMFuzzerTestOneInput(data: *const u8, size: usize) -> i32 {
    // SAFETY: libFuzzer passes a valid buffer of `size` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(data, size) };
    let _ = parse_frame(bytes);
    let mut cfg = GuestConfig::example();
    // No sockets from a fuzzer: echo requests and TCP are refused as
    // disabled, so no traffic can leave.
    cfg.disabled.icmp = true;
    cfg.disabled.tcp = true;
    let mut l2 = L2::new(cfg);
    let mut tx = TxQueue::new(1 << 20);
    let mut flows = Flows {
        icmp: IcmpFlows::new(GatewayMap::default()),
        tcp: TcpFlows::new(GatewayMap::default(), 65520),
    };
    let _ = l2.guest_frame(bytes, Instant::now(), &mut tx, &mut flows);
    for f in tx.frames() {
        // What we send must itself parse.
        assert!(parse_frame(f).is_ok(), "we emitted a frame we cannot parse");
    }
    0
}
