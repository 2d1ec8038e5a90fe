//! An Anthropic Messages stream → an OpenAI Chat Completions stream, one
//! upstream event at a time.
//!
//! `message_start` → a first chunk with `role: assistant`; `text_delta` →
//! `content`, `thinking_delta` → `reasoning_content`; a `tool_use` block
//! start → a `tool_calls` entry with id, name and empty arguments, each
//! `input_json_delta` → an arguments fragment at the same tool index;
//! `message_delta` → a chunk with `finish_reason` (see
//! [`finish_reason`](super::finish_reason)); `message_stop` → the usage chunk
//! (`choices: []`) when the caller asked `stream_options.include_usage`,
//! then `data: [DONE]`. `ping` → an SSE comment. An `error` event, an
//! unparsable event or an over-long one → `data: {"error": …}` and the end
//! (no `[DONE]`, as OpenAI does on errors). An upstream that closes before
//! `message_delta` was cut off and ends the same way; one that closes after
//! it ends normally.

use serde_json::{json, Value};

use super::message_to_completion::usage as openai_usage;
use super::sse::{SseError, SseItem};
use super::stream::{Feed, StreamMachine};
use super::{finish_reason, openai_completion_id, sse_data, str_of};

/// Options of an [`EventsToChunks`] translator.
#[derive(Clone, Debug)]
pub struct ChunkOptions {
    /// The model named in chunks when `message_start` carries none.
    pub model: String,
    /// The provider's name, for error messages.
    pub provider: String,
    /// Send the final usage chunk (`stream_options.include_usage`). Default false.
    pub include_usage: bool,
    /// The Unix time put in `created` (this module reads no clock).
    pub created: u64,
    /// Cap on one SSE line or event, bytes.
    /// Default [`DEFAULT_MAX_EVENT_BYTES`](super::sse::DEFAULT_MAX_EVENT_BYTES).
    pub max_event_bytes: usize,
}

impl ChunkOptions {
    /// Options with the defaults for `model` from `provider`.
    pub fn new(model: &str, provider: &str) -> ChunkOptions {
        ChunkOptions {
            model: model.to_owned(),
            provider: provider.to_owned(),
            include_usage: false,
            created: 0,
            max_event_bytes: super::sse::DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// The stream state machine; see [`ChunksToEvents`](super::chunks_to_events::ChunksToEvents)
/// for the calling convention.
#[derive(Debug)]
pub struct EventsToChunks {
    opts: ChunkOptions,
    feed: Feed,
    out: Vec<u8>,
    id: String,
    model: String,
    started: bool,
    finished: bool,
    done: bool,
    /// The open tool block: (Anthropic block index, OpenAI tool index).
    tool: Option<(u64, u64)>,
    tools: u64,
    usage: Value,
}

impl EventsToChunks {
    /// A translator for one stream.
    pub fn new(opts: ChunkOptions) -> EventsToChunks {
        EventsToChunks {
            feed: Feed::new(opts.max_event_bytes),
            model: opts.model.clone(),
            opts,
            out: Vec::new(),
            id: openai_completion_id(None),
            started: false,
            finished: false,
            done: false,
            tool: None,
            tools: 0,
            usage: json!({}),
        }
    }

    /// Bytes held in buffers (bounded by about twice the event cap).
    pub fn buffered(&self) -> usize {
        self.feed.buffered()
    }

    fn event(&mut self, ty: &str, v: &Value) {
        match ty {
            "message_start" => {
                let m = v.get("message").unwrap_or(&Value::Null);
                if let Some(id) = str_of(m.get("id")) {
                    self.id = openai_completion_id(Some(id));
                }
                if let Some(model) = str_of(m.get("model")).filter(|m| !m.is_empty()) {
                    self.model = model.to_owned();
                }
                self.merge_usage(m.get("usage"));
                self.start();
            }
            "content_block_start" => {
                self.start();
                let b = v.get("content_block").unwrap_or(&Value::Null);
                match str_of(b.get("type")) {
                    Some("tool_use") => {
                        let at = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let idx = self.tools;
                        self.tools += 1;
                        self.tool = Some((at, idx));
                        let call = json!({"index": idx, "id": str_of(b.get("id")).unwrap_or(""), "type": "function",
                            "function": {"name": str_of(b.get("name")).unwrap_or(""), "arguments": ""}});
                        self.chunk(json!({"tool_calls": [call]}), None);
                    }
                    Some("text") => {
                        if let Some(t) = str_of(b.get("text")).filter(|t| !t.is_empty()) {
                            self.chunk(json!({"content": t}), None);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                self.start();
                let d = v.get("delta").unwrap_or(&Value::Null);
                match str_of(d.get("type")) {
                    Some("text_delta") => {
                        if let Some(t) = str_of(d.get("text")).filter(|t| !t.is_empty()) {
                            self.chunk(json!({"content": t}), None);
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = str_of(d.get("thinking")).filter(|t| !t.is_empty()) {
                            self.chunk(json!({"reasoning_content": t}), None);
                        }
                    }
                    Some("input_json_delta") => {
                        let at = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let part = str_of(d.get("partial_json")).unwrap_or("");
                        if let (Some((open, idx)), false) = (self.tool, part.is_empty()) {
                            if open == at {
                                let call = json!({"index": idx, "function": {"arguments": part}});
                                self.chunk(json!({"tool_calls": [call]}), None);
                            }
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => self.tool = None,
            "message_delta" => {
                self.start();
                self.merge_usage(v.get("usage"));
                let reason =
                    str_of(v.get("delta").and_then(|d| d.get("stop_reason"))).unwrap_or("end_turn");
                if !self.finished {
                    self.finished = true;
                    self.chunk(json!({}), Some(finish_reason(reason)));
                }
            }
            "message_stop" => self.terminate(),
            "ping" => self.out.extend_from_slice(b": ping\n\n"),
            "error" => {
                let e = v.get("error").unwrap_or(&Value::Null);
                let kind = str_of(e.get("type")).unwrap_or("api_error").to_owned();
                let message = str_of(e.get("message")).map_or_else(|| e.to_string(), str::to_owned);
                self.error(&kind, &message);
            }
            _ => {} // unknown events are skipped, as Anthropic's docs ask
        }
    }

    fn merge_usage(&mut self, u: Option<&Value>) {
        if let (Some(Value::Object(u)), Value::Object(acc)) = (u, &mut self.usage) {
            for (k, v) in u {
                if v.is_u64() {
                    acc.insert(k.clone(), v.clone());
                }
            }
        }
    }

    fn start(&mut self) {
        if !self.started {
            self.started = true;
            self.chunk(json!({"role": "assistant", "content": ""}), None);
        }
    }

    fn base(&self) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.opts.created, "model": self.model})
    }

    fn chunk(&mut self, delta: Value, finish: Option<&str>) {
        let mut c = self.base();
        c["choices"] =
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        sse_data(&mut self.out, &c.to_string());
    }

    fn terminate(&mut self) {
        self.start();
        if !self.finished {
            self.finished = true;
            self.chunk(json!({}), Some("stop"));
        }
        if self.opts.include_usage {
            let mut c = self.base();
            c["choices"] = json!([]);
            c["usage"] = openai_usage(Some(&self.usage));
            sse_data(&mut self.out, &c.to_string());
        }
        sse_data(&mut self.out, "[DONE]");
        self.done = true;
    }
}

impl StreamMachine for EventsToChunks {
    fn feed(&mut self) -> &mut Feed {
        &mut self.feed
    }

    fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn item(&mut self, item: Result<SseItem, SseError>) {
        match item {
            Err(e) => self.error("api_error", &e.to_string()),
            Ok(SseItem::Comment(_)) => self.out.extend_from_slice(b": ping\n\n"),
            Ok(SseItem::Event(ev)) => match serde_json::from_str::<Value>(&ev.data) {
                Ok(v) => {
                    let ty = str_of(v.get("type"))
                        .or(ev.event.as_deref())
                        .unwrap_or("")
                        .to_owned();
                    self.event(&ty, &v);
                }
                Err(e) => self.error("api_error", &format!("an unparsable event: {e}")),
            },
        }
    }

    fn end(&mut self) {
        match self.finished {
            true => self.terminate(),
            false => self.error(
                "api_error",
                "the stream ended before message_delta (cut off)",
            ),
        }
    }

    fn error(&mut self, kind: &str, message: &str) {
        let message = format!("provider {}: {message}", self.opts.provider);
        let e = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
        sse_data(&mut self.out, &e.to_string());
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::sse::SseEvent;

    fn ev(name: &str, v: Value) -> Vec<u8> {
        format!("event: {name}\ndata: {v}\n\n").into_bytes()
    }

    /// The `data:` payloads out of a translator ("[DONE]" kept as a string).
    fn run(t: &mut EventsToChunks, chunks: &[&[u8]]) -> Vec<Value> {
        let mut bytes = Vec::new();
        for c in chunks {
            bytes.extend(t.push(c));
        }
        bytes.extend(t.finish());
        let mut p = crate::translate::sse::SseParser::new(1 << 20);
        let mut items = Vec::new();
        p.push(&bytes, &mut items);
        p.finish(&mut items);
        items
            .into_iter()
            .map(|i| match i {
                Ok(SseItem::Event(SseEvent { data, .. })) if data == "[DONE]" => json!("[DONE]"),
                Ok(SseItem::Event(SseEvent { data, .. })) => serde_json::from_str(&data).unwrap(),
                Ok(SseItem::Comment(_)) => json!("ping"),
                Err(e) => panic!("{e}"),
            })
            .collect()
    }

    fn conversation() -> Vec<Vec<u8>> {
        vec![
            ev(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_7", "model": "claude-x",
                "usage": {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 4}}}),
            ),
            ev("ping", json!({"type": "ping"})),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi ✓"}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {}}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"q\""}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ":1}"}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 2}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "put", "input": {}}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 3}),
            ),
            ev(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
            ),
            ev("message_stop", json!({"type": "message_stop"})),
        ]
    }

    #[test]
    fn a_full_stream_with_tools_and_usage() {
        let conv = conversation();
        let refs: Vec<&[u8]> = conv.iter().map(Vec::as_slice).collect();
        let mut opts = ChunkOptions::new("m", "anth");
        opts.include_usage = true;
        opts.created = 5;
        let out = run(&mut EventsToChunks::new(opts), &refs);
        let deltas: Vec<Value> = out
            .iter()
            .map(|c| match c.get("choices") {
                Some(ch) if ch.as_array().is_some_and(|a| a.is_empty()) => {
                    json!({"usage": c["usage"]})
                }
                Some(ch) => json!([ch[0]["delta"], ch[0]["finish_reason"]]),
                None => c.clone(),
            })
            .collect();
        assert_eq!(
            deltas,
            [
                json!([{"role": "assistant", "content": ""}, null]),
                json!("ping"),
                json!([{"reasoning_content": "hm"}, null]),
                json!([{"content": "Hi ✓"}, null]),
                json!([{"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": ""}}]}, null]),
                json!([{"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\""}}]}, null]),
                json!([{"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}, null]),
                json!([{"tool_calls": [{"index": 1, "id": "toolu_2", "type": "function", "function": {"name": "put", "arguments": ""}}]}, null]),
                json!([{"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, null]),
                json!([{}, "tool_calls"]),
                json!({"usage": {"prompt_tokens": 16, "completion_tokens": 30, "total_tokens": 46, "prompt_tokens_details": {"cached_tokens": 4}}}),
                json!("[DONE]"),
            ]
        );
        assert_eq!(out[0]["id"], "chatcmpl-7");
        assert_eq!(out[0]["model"], "claude-x");
        assert_eq!(out[0]["created"], 5);
        assert_eq!(out[0]["object"], "chat.completion.chunk");
    }

    #[test]
    fn every_split_gives_the_same_chunks() {
        let all: Vec<u8> = conversation().concat();
        let expected = run(
            &mut EventsToChunks::new(ChunkOptions::new("m", "a")),
            &[&all],
        );
        for cut in (1..all.len()).step_by(7) {
            let got = run(
                &mut EventsToChunks::new(ChunkOptions::new("m", "a")),
                &[&all[..cut], &all[cut..]],
            );
            assert_eq!(got, expected, "cut at {cut}");
        }
        assert!(
            !expected.iter().any(|c| c.get("usage").is_some()),
            "usage only when asked"
        );
    }

    #[test]
    fn cut_off_errors_and_ends() {
        let conv = conversation();
        let out = run(
            &mut EventsToChunks::new(ChunkOptions::new("m", "anth")),
            &[&conv[0], &conv[6], &conv[7]],
        );
        assert_eq!(
            out.last().unwrap(),
            &json!({"error": {"message": "provider anth: the stream ended before message_delta (cut off)",
                "type": "api_error", "param": null, "code": null}})
        );
        let out = run(
            &mut EventsToChunks::new(ChunkOptions::new("m", "anth")),
            &[&conv[0], &conv[16]],
        );
        assert_eq!(
            out.last().unwrap(),
            &json!("[DONE]"),
            "message_delta then EOF ends normally"
        );
        let err = ev(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        let out = run(
            &mut EventsToChunks::new(ChunkOptions::new("m", "anth")),
            &[&conv[0], &err, &conv[16], &conv[17]],
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["error"]["type"], "overloaded_error");
        assert_eq!(out[1]["error"]["message"], "provider anth: Overloaded");
        let out = run(
            &mut EventsToChunks::new(ChunkOptions::new("m", "anth")),
            &[b"data: nope\n\n"],
        );
        assert_eq!(out[0]["error"]["type"], "api_error");
    }
}
