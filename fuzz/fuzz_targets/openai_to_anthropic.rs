//! OpenAI chunks → Anthropic events: any input, split anywhere, never
//! panics, keeps its buffers under the cap, and ends with exactly one
//! terminal event (`message_stop` or `error`) with no block left open.
#![no_main]

use keepwarm_fuzz::translate::chunks_to_events::{ChunksToEvents, StreamOptions};
use keepwarm_fuzz::translate::stream::StreamMachine;
use keepwarm_fuzz::translate::sse::SseItem;
use keepwarm_fuzz::{chunks, events, CAP};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut t = ChunksToEvents::new(StreamOptions {
        max_event_bytes: CAP,
        exit_tool: data.first().is_some_and(|b| b & 1 == 1),
        ..StreamOptions::new("m", "p")
    });
    let mut out = Vec::new();
    for c in chunks(data) {
        out.extend(t.push(c));
        assert!(t.buffered() <= 3 * CAP, "buffered {}", t.buffered());
    }
    out.extend(t.finish());
    let mut terminal = 0;
    let mut open = false;
    for item in events(&out) {
        let SseItem::Event(ev) = item else {
            panic!("comment in output")
        };
        assert_eq!(terminal, 0, "event after the end");
        match ev.event.as_deref() {
            Some("content_block_start") => {
                assert!(!open);
                open = true;
            }
            Some("content_block_stop") => {
                assert!(open);
                open = false;
            }
            Some("message_stop" | "error") => {
                assert!(!open);
                terminal += 1;
            }
            _ => {}
        }
    }
    assert_eq!(terminal, 1);
});
