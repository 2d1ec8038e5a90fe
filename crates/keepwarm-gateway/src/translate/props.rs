//! Property tests over generated inputs for both stream translators (the
//! same properties the `fuzz/` targets check, in the normal test run):
//! valid streams split anywhere translate to the same well-formed caller
//! stream with the text and tool arguments intact; mutated, truncated and
//! random input never panics, stays within the memory bound and ends with
//! exactly one terminal event.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::chunks_to_events::{ChunksToEvents, StreamOptions};
use super::events_to_chunks::{ChunkOptions, EventsToChunks};
use super::sse::{SseItem, SseParser};
use super::stream::StreamMachine;

const CAP: usize = 4096;
const ALPHABET: [&str; 10] = ["a", "b", " ", "é", "日", "🎉", "\"", "\\", "\n", "{"];

fn text(rng: &mut StdRng, max: usize) -> String {
    (0..rng.random_range(0..max))
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
        .collect()
}

fn pieces(rng: &mut StdRng, s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let n = rng.random_range(1..=4).min(chars.len() - i);
        out.push(chars[i..i + n].iter().collect());
        i += n;
    }
    out
}

fn split(rng: &mut StdRng, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let n = rng.random_range(1..=40).min(bytes.len() - i);
        out.push(bytes[i..i + n].to_vec());
        i += n;
    }
    out
}

/// SSE items of translator output; panics if the output is not clean SSE.
fn items(bytes: &[u8]) -> Vec<SseItem> {
    let mut p = SseParser::new(1 << 24);
    let mut out = Vec::new();
    p.push(bytes, &mut out);
    p.finish(&mut out);
    out.into_iter()
        .map(|i| i.expect("translator output is valid SSE"))
        .collect()
}

/// A random OpenAI stream: (bytes, text, tool arguments per call).
fn openai_stream(rng: &mut StdRng) -> (Vec<u8>, String, Vec<String>) {
    let mut out = Vec::new();
    let mut all_text = String::new();
    let mut args = Vec::new();
    let mut push = |v: Value| out.extend(format!("data: {v}\n\n").into_bytes());
    push(json!({"id": "chatcmpl-p", "choices": [{"delta": {"role": "assistant", "content": ""}}]}));
    for _ in 0..rng.random_range(0..4) {
        match rng.random_range(0..4) {
            0 => {
                let t = text(rng, 30);
                for p in pieces(rng, &t) {
                    push(json!({"choices": [{"delta": {"content": p}}]}));
                }
                all_text.push_str(&t);
            }
            1 => push(json!({"choices": [{"delta": {}}]})),
            2 => {
                let idx = args.len();
                let a = json!({"k": text(rng, 20)}).to_string();
                push(
                    json!({"choices": [{"delta": {"tool_calls": [{"index": idx, "id": format!("call_{idx}"),
                    "function": {"name": "f", "arguments": ""}}]}}]}),
                );
                for p in pieces(rng, &a) {
                    push(
                        json!({"choices": [{"delta": {"tool_calls": [{"index": idx, "function": {"arguments": p}}]}}]}),
                    );
                }
                args.push(a);
            }
            _ => push(json!({"choices": [{"delta": {"reasoning_content": text(rng, 10)}}]})),
        }
    }
    push(
        json!({"choices": [{"delta": {}, "finish_reason": if args.is_empty() { "stop" } else { "tool_calls" }}]}),
    );
    push(json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}));
    out.extend_from_slice(b"data: [DONE]\n\n");
    (out, all_text, args)
}

fn run_o2a(chunks: &[Vec<u8>]) -> (Vec<u8>, usize) {
    let mut t = ChunksToEvents::new(StreamOptions {
        max_event_bytes: CAP,
        ..StreamOptions::new("m", "p")
    });
    let mut out = Vec::new();
    let mut peak = 0;
    for c in chunks {
        out.extend(t.push(c));
        peak = peak.max(t.buffered());
    }
    out.extend(t.finish());
    assert!(t.is_done());
    (out, peak)
}

/// Checks an Anthropic event stream's shape; returns (text, tool args).
fn check_anthropic(bytes: &[u8]) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut args: Vec<String> = Vec::new();
    let mut open: Option<u64> = None;
    let mut next = 0;
    let mut terminal = 0;
    for item in items(bytes) {
        let SseItem::Event(ev) = item else {
            panic!("a comment in translator output")
        };
        assert_eq!(terminal, 0, "an event after the terminal event");
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        let name = ev.event.expect("every event is named");
        assert_eq!(v["type"], name.as_str());
        match name.as_str() {
            "content_block_start" => {
                assert_eq!(open, None, "blocks never interleave");
                assert_eq!(v["index"], next);
                open = Some(next);
                if v["content_block"]["type"] == "tool_use" {
                    args.push(String::new());
                }
            }
            "content_block_delta" => {
                assert_eq!(Some(v["index"].as_u64().unwrap()), open);
                match v["delta"]["type"].as_str().unwrap() {
                    "text_delta" => text.push_str(v["delta"]["text"].as_str().unwrap()),
                    "input_json_delta" => args
                        .last_mut()
                        .unwrap()
                        .push_str(v["delta"]["partial_json"].as_str().unwrap()),
                    _ => {}
                }
            }
            "content_block_stop" => {
                assert_eq!(Some(v["index"].as_u64().unwrap()), open.take());
                next += 1;
            }
            "message_stop" | "error" => {
                assert_eq!(open, None, "blocks are closed before the end");
                terminal += 1;
            }
            _ => {}
        }
    }
    assert_eq!(terminal, 1, "exactly one terminal event");
    (text, args)
}

#[test]
fn openai_streams_split_anywhere_translate_intact() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..300 {
        let (bytes, text, args) = openai_stream(&mut rng);
        let (whole, _) = run_o2a(std::slice::from_ref(&bytes));
        let (split_out, _) = run_o2a(&split(&mut rng, &bytes));
        assert_eq!(whole, split_out);
        assert_eq!(check_anthropic(&whole), (text, args));
    }
}

fn mutate(rng: &mut StdRng, bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for _ in 0..rng.random_range(0..6) {
        if b.is_empty() {
            break;
        }
        let at = rng.random_range(0..b.len());
        match rng.random_range(0..5) {
            0 => b[at] = rng.random(),
            1 => b.truncate(at),
            2 => b.insert(at, b"\n:{}\r\"\xff"[rng.random_range(0..7)]),
            3 => {
                let junk = vec![b'x'; rng.random_range(0..3 * CAP)];
                b.splice(at..at, junk);
            }
            _ => {
                b.remove(at);
            }
        }
    }
    b
}

#[test]
fn broken_openai_streams_never_panic_and_stay_bounded() {
    let mut rng = StdRng::seed_from_u64(12);
    for _ in 0..400 {
        let (bytes, _, _) = openai_stream(&mut rng);
        let bad = match rng.random_range(0..3) {
            0 => (0..rng.random_range(0..600))
                .map(|_| rng.random())
                .collect(),
            _ => mutate(&mut rng, &bytes),
        };
        let (out, peak) = run_o2a(&split(&mut rng, &bad));
        assert!(peak <= 3 * CAP, "buffered {peak}");
        check_anthropic(&out);
    }
}

/// A random Anthropic stream: (bytes, text, tool arguments per call).
fn anthropic_stream(rng: &mut StdRng) -> (Vec<u8>, String, Vec<String>) {
    let mut out = Vec::new();
    let mut all_text = String::new();
    let mut args = Vec::new();
    let mut push =
        |name: &str, v: Value| out.extend(format!("event: {name}\ndata: {v}\n\n").into_bytes());
    push(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_p", "model": "c", "usage": {"input_tokens": 5}}}),
    );
    for i in 0..rng.random_range(0..4) {
        let tool = rng.random_bool(0.4);
        let block = if tool {
            json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": "f", "input": {}})
        } else {
            json!({"type": "text", "text": ""})
        };
        push(
            "content_block_start",
            json!({"type": "content_block_start", "index": i, "content_block": block}),
        );
        let s = if tool {
            json!({"k": text(rng, 20)}).to_string()
        } else {
            text(rng, 30)
        };
        for p in pieces(rng, &s) {
            let d = if tool {
                json!({"type": "input_json_delta", "partial_json": p})
            } else {
                json!({"type": "text_delta", "text": p})
            };
            push(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": i, "delta": d}),
            );
        }
        if rng.random_bool(0.2) {
            push("ping", json!({"type": "ping"}));
        }
        push(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        );
        match tool {
            true => args.push(s),
            false => all_text.push_str(&s),
        }
    }
    let reason = if args.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    push(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": reason}, "usage": {"output_tokens": 9}}),
    );
    push("message_stop", json!({"type": "message_stop"}));
    (out, all_text, args)
}

fn run_a2o(chunks: &[Vec<u8>]) -> (Vec<u8>, usize) {
    let mut opts = ChunkOptions::new("m", "p");
    opts.max_event_bytes = CAP;
    opts.include_usage = true;
    let mut t = EventsToChunks::new(opts);
    let mut out = Vec::new();
    let mut peak = 0;
    for c in chunks {
        out.extend(t.push(c));
        peak = peak.max(t.buffered());
    }
    out.extend(t.finish());
    assert!(t.is_done());
    (out, peak)
}

/// Checks an OpenAI chunk stream's shape; returns (text, tool args).
fn check_openai(bytes: &[u8]) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut args: Vec<String> = Vec::new();
    let mut terminal = 0;
    for item in items(bytes) {
        let SseItem::Event(ev) = item else { continue }; // pings are comments
        assert_eq!(terminal, 0, "data after the terminal chunk");
        if ev.data == "[DONE]" {
            terminal += 1;
            continue;
        }
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        if v.get("error").is_some() {
            terminal += 1;
            continue;
        }
        assert_eq!(v["object"], "chat.completion.chunk");
        let Some(delta) = v["choices"].get(0).map(|c| &c["delta"]) else {
            continue;
        };
        if let Some(t) = delta["content"].as_str() {
            text.push_str(t);
        }
        for c in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = c["index"].as_u64().unwrap() as usize;
            if i == args.len() {
                args.push(String::new());
            }
            args[i].push_str(c["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(terminal, 1, "exactly one terminal chunk");
    (text, args)
}

#[test]
fn anthropic_streams_split_anywhere_translate_intact() {
    let mut rng = StdRng::seed_from_u64(21);
    for _ in 0..300 {
        let (bytes, text, args) = anthropic_stream(&mut rng);
        let (whole, _) = run_a2o(std::slice::from_ref(&bytes));
        let (split_out, _) = run_a2o(&split(&mut rng, &bytes));
        assert_eq!(whole, split_out);
        assert_eq!(check_openai(&whole), (text, args));
    }
}

#[test]
fn broken_anthropic_streams_never_panic_and_stay_bounded() {
    let mut rng = StdRng::seed_from_u64(22);
    for _ in 0..400 {
        let (bytes, _, _) = anthropic_stream(&mut rng);
        let bad = match rng.random_range(0..3) {
            0 => (0..rng.random_range(0..600))
                .map(|_| rng.random())
                .collect(),
            _ => mutate(&mut rng, &bytes),
        };
        let (out, peak) = run_a2o(&split(&mut rng, &bad));
        assert!(peak <= 2 * CAP, "buffered {peak}");
        check_openai(&out);
    }
}
