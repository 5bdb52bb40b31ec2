//! Fuzz target: any bytes as a frame from the guest, through the
//! whole-frame parser the engine calls. Parsing must never panic and the
//! ranges it reports must lie in the frame. Whatever parses is emitted
//! again: that frame must parse too, and emitting it once more must give
//! the same bytes (parse and emit agree, whatever the input was).
//!
//! Only the wire layer is exercised: dispatching to services and flows
//! would open sockets, and those layers deserve targets of their own.
#![no_main]

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
    0
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
