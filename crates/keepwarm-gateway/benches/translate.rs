#![allow(missing_docs)] // criterion_group! generates an undocumented fn
//! The stream translators' cost: the time they add before the caller's
//! first byte (a fresh translator eating the provider's first chunk) and
//! their throughput in upstream events per second, both directions.
//!
//! `cargo bench -p keepwarm-gateway --bench translate`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use keepwarm_gateway::translate::chunks_to_events::{ChunksToEvents, StreamOptions};
use keepwarm_gateway::translate::events_to_chunks::{ChunkOptions, EventsToChunks};
use keepwarm_gateway::translate::stream::StreamMachine;
use serde_json::json;

const EVENTS: usize = 1000;

/// An OpenAI stream of `n` text deltas (one SSE event each), then the end.
fn openai_stream(n: usize) -> Vec<Vec<u8>> {
    let mut out = vec![format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-b", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    )
    .into_bytes()];
    for i in 0..n {
        let c = json!({"id": "chatcmpl-b", "model": "m", "choices": [{"index": 0, "delta": {"content": format!("word{i} ")}}]});
        out.push(format!("data: {c}\n\n").into_bytes());
    }
    out.push(b"data: [DONE]\n\n".to_vec());
    out
}

/// An Anthropic stream of `n` text deltas, then the end.
fn anthropic_stream(n: usize) -> Vec<Vec<u8>> {
    let ev =
        |name: &str, v: serde_json::Value| format!("event: {name}\ndata: {v}\n\n").into_bytes();
    let mut out = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_b", "model": "m", "usage": {"input_tokens": 5}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for i in 0..n {
        out.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": format!("word{i} ")}}),
        ));
    }
    out.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": n}})));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    out
}

fn bench(c: &mut Criterion) {
    let o = openai_stream(EVENTS);
    let a = anthropic_stream(EVENTS);
    let mut g = c.benchmark_group("first_byte");
    g.bench_function("openai_to_anthropic", |b| {
        b.iter_batched(
            || ChunksToEvents::new(StreamOptions::new("m", "p")),
            |mut t| t.push(&o[1]),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("anthropic_to_openai", |b| {
        b.iter_batched(
            || EventsToChunks::new(ChunkOptions::new("m", "p")),
            |mut t| (t.push(&a[0]), t.push(&a[2])),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("openai_to_anthropic", |b| {
        b.iter(|| {
            let mut t = ChunksToEvents::new(StreamOptions::new("m", "p"));
            let mut n = 0;
            for chunk in &o {
                n += t.push(chunk).len();
            }
            n + t.finish().len()
        })
    });
    g.bench_function("anthropic_to_openai", |b| {
        b.iter(|| {
            let mut t = EventsToChunks::new(ChunkOptions::new("m", "p"));
            let mut n = 0;
            for chunk in &a {
                n += t.push(chunk).len();
            }
            n + t.finish().len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
