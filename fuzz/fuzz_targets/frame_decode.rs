//! A client's WebSocket text frame, read by the gateway's own `decode_frame`.
//!
//! Checks: no panic; an accepted frame has an id of at most 64 bytes and reads back the
//! same after the server's own encoding; a refusal names an id of at most 64 bytes and
//! its message does not grow out of proportion to the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_server::gateway::connection::decode_frame;

/// The server's default `max_frame_bytes`.
const MAX_FRAME_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    // The socket hands over text frames only as UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode_frame(text, MAX_FRAME_BYTES) {
        Ok(envelope) => {
            assert!(text.len() <= MAX_FRAME_BYTES);
            assert!(envelope.id.as_ref().is_none_or(|id| id.len() <= 64));
            let encoded = serde_json::to_string(&envelope).expect("a frame encodes");
            let again = decode_frame(&encoded, usize::MAX)
                .unwrap_or_else(|bad| panic!("{encoded} does not read back: {bad:?}"));
            assert_eq!(
                serde_json::to_value(&envelope).expect("value"),
                serde_json::to_value(&again).expect("value"),
            );
        }
        Err(bad) => {
            assert!(bad.id.as_ref().is_none_or(|id| id.len() <= 64));
            assert!(!bad.message.is_empty());
            assert!(
                bad.message.len() <= 8 * text.len() + 256,
                "a {}-byte frame made a {}-byte error",
                text.len(),
                bad.message.len()
            );
        }
    }
});
