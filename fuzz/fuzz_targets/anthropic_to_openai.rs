//! Anthropic events → OpenAI chunks: any input, split anywhere, never
//! panics, keeps its buffers under the cap, and ends with exactly one
//! terminal chunk (`[DONE]` or an error object).
#![no_main]

use keepwarm_fuzz::translate::events_to_chunks::{ChunkOptions, EventsToChunks};
use keepwarm_fuzz::translate::stream::StreamMachine;
use keepwarm_fuzz::translate::sse::SseItem;
use keepwarm_fuzz::{chunks, events, CAP};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut opts = ChunkOptions::new("m", "p");
    opts.max_event_bytes = CAP;
    opts.include_usage = data.first().is_some_and(|b| b & 1 == 1);
    let mut t = EventsToChunks::new(opts);
    let mut out = Vec::new();
    for c in chunks(data) {
        out.extend(t.push(c));
        assert!(t.buffered() <= 2 * CAP, "buffered {}", t.buffered());
    }
    out.extend(t.finish());
    let mut terminal = 0;
    for item in events(&out) {
        let SseItem::Event(ev) = item else { continue };
        assert_eq!(terminal, 0, "data after the end");
        if ev.data == "[DONE]" || ev.data.starts_with("{\"error\"") {
            terminal += 1;
        }
    }
    assert_eq!(terminal, 1);
});
