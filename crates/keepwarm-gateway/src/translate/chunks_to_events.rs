//! An OpenAI Chat Completions stream → an Anthropic Messages stream, one
//! upstream event at a time.
//!
//! The first chunk yields `message_start`; `reasoning_content`/`reasoning`
//! deltas a `thinking` block, `content` deltas a `text` block, each tool
//! call a `tool_use` block whose argument fragments pass as
//! `input_json_delta`s (a block closes when another kind or another tool
//! call starts — Anthropic blocks never interleave). Empty deltas emit
//! nothing. The end — `[DONE]`, or a finish reason plus usage, or the
//! upstream closing after a finish reason — closes the open block and sends
//! `message_delta` (stop reason, usage) and `message_stop`. An upstream that
//! closes with no finish reason and no `[DONE]` was cut off: the open block
//! is closed and an `error` event ends the stream. SSE comments (`: ping`,
//! OpenRouter's `: OPENROUTER PROCESSING`) become `ping` events; an error
//! object in the stream, an unparsable chunk or an over-long event (see
//! [`SseParser`]) becomes an `error` event and the end of the stream.
//!
//! Memory: the parser's bounded buffers plus, with `exit_tool` on, the
//! `ExitTool` arguments (capped by the same limit). Nothing else grows.

use serde_json::{json, Value};

use super::completion_to_message::{usage as anthropic_usage, EXIT_TOOL};
use super::sse::{SseError, SseItem};
use super::stream::{Feed, StreamMachine};
use super::{anthropic_message_id, sse_event, stop_reason, str_of, tool_id};

/// Options of a [`ChunksToEvents`] translator.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// The model named in `message_start` when chunks carry none.
    pub model: String,
    /// The provider's name, for error messages.
    pub provider: String,
    /// Turn an `ExitTool` call into text (the `tooluse` transformer). Default false.
    pub exit_tool: bool,
    /// Cap on one SSE line or event (and on `ExitTool` arguments), bytes.
    /// Default [`DEFAULT_MAX_EVENT_BYTES`](super::sse::DEFAULT_MAX_EVENT_BYTES).
    pub max_event_bytes: usize,
}

impl StreamOptions {
    /// Options with the defaults for `model` from `provider`.
    pub fn new(model: &str, provider: &str) -> StreamOptions {
        StreamOptions {
            model: model.to_owned(),
            provider: provider.to_owned(),
            exit_tool: false,
            max_event_bytes: super::sse::DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    /// A tool call, by its OpenAI index.
    Tool(u64),
}

/// The stream state machine. Feed it upstream bytes with [`push`](Self::push),
/// then [`finish`](Self::finish) at the upstream's end (or
/// [`fail`](Self::fail) on a transport error); each returns the Anthropic SSE
/// bytes to send (possibly none).
#[derive(Debug)]
pub struct ChunksToEvents {
    opts: StreamOptions,
    feed: Feed,
    out: Vec<u8>,
    id: String,
    started: bool,
    done: bool,
    open: Open,
    index: usize,
    tools: usize,
    finish: Option<String>,
    usage: Option<Value>,
    exit: Option<(u64, String)>,
}

impl ChunksToEvents {
    /// A translator for one stream.
    pub fn new(opts: StreamOptions) -> ChunksToEvents {
        ChunksToEvents {
            feed: Feed::new(opts.max_event_bytes),
            opts,
            out: Vec::new(),
            id: anthropic_message_id(None),
            started: false,
            done: false,
            open: Open::None,
            index: 0,
            tools: 0,
            finish: None,
            usage: None,
            exit: None,
        }
    }

    /// Bytes held in buffers (bounded by about three times the event cap).
    pub fn buffered(&self) -> usize {
        self.feed.buffered() + self.exit.as_ref().map_or(0, |e| e.1.len())
    }

    fn chunk(&mut self, chunk: &Value) {
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = str_of(err.get("message")).map_or_else(|| err.to_string(), str::to_owned);
            let ty = str_of(err.get("type"))
                .or_else(|| str_of(err.get("code")))
                .unwrap_or("");
            let kind = match ty {
                t if t.contains("rate_limit") => "rate_limit_error",
                t if t.contains("overloaded") => "overloaded_error",
                _ => "api_error",
            };
            self.error(kind, &message);
            return;
        }
        self.start(chunk);
        if let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            let reasoning =
                str_of(delta.get("reasoning_content")).or_else(|| str_of(delta.get("reasoning")));
            if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
                self.open_block(
                    Open::Thinking,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                );
                self.delta(json!({"type": "thinking_delta", "thinking": r}));
            }
            if let Some(t) = str_of(delta.get("content")).filter(|t| !t.is_empty()) {
                self.open_block(Open::Text, json!({"type": "text", "text": ""}));
                self.delta(json!({"type": "text_delta", "text": t}));
            }
            for (pos, call) in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                self.tool_fragment(call, pos as u64);
            }
            if let Some(f) = str_of(choice.get("finish_reason")) {
                self.finish = Some(f.to_owned());
            }
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        if self.finish.is_some() && self.usage.is_some() {
            self.terminate();
        }
    }

    fn tool_fragment(&mut self, call: &Value, pos: u64) {
        let idx = call.get("index").and_then(Value::as_u64).unwrap_or(pos);
        let f = call.get("function").unwrap_or(&Value::Null);
        let name = str_of(f.get("name"));
        let args = str_of(f.get("arguments")).unwrap_or("");
        if self.opts.exit_tool
            && (name == Some(EXIT_TOOL) || self.exit.as_ref().is_some_and(|e| e.0 == idx))
        {
            let buf = &mut self.exit.get_or_insert_with(|| (idx, String::new())).1;
            if buf.len() + args.len() > self.opts.max_event_bytes {
                self.error(
                    "api_error",
                    "ExitTool arguments exceeded the event size limit",
                );
            } else {
                buf.push_str(args);
            }
            return;
        }
        if self.open != Open::Tool(idx) {
            let id = tool_id(str_of(call.get("id")), &self.id, self.tools);
            self.tools += 1;
            self.open_block(
                Open::Tool(idx),
                json!({"type": "tool_use", "id": id, "name": name.unwrap_or(""), "input": {}}),
            );
        }
        if !args.is_empty() {
            self.delta(json!({"type": "input_json_delta", "partial_json": args}));
        }
    }

    fn start(&mut self, chunk: &Value) {
        if self.started {
            return;
        }
        self.started = true;
        if let Some(id) = str_of(chunk.get("id")) {
            self.id = anthropic_message_id(Some(id));
        }
        let model = str_of(chunk.get("model"))
            .filter(|m| !m.is_empty())
            .unwrap_or(&self.opts.model);
        let start = json!({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}});
        sse_event(&mut self.out, "message_start", &start);
    }

    fn open_block(&mut self, kind: Open, block: Value) {
        if self.open == kind {
            return;
        }
        self.close_block();
        self.open = kind;
        let ev =
            json!({"type": "content_block_start", "index": self.index, "content_block": block});
        sse_event(&mut self.out, "content_block_start", &ev);
    }

    fn delta(&mut self, delta: Value) {
        let ev = json!({"type": "content_block_delta", "index": self.index, "delta": delta});
        sse_event(&mut self.out, "content_block_delta", &ev);
    }

    fn close_block(&mut self) {
        if self.open == Open::None {
            return;
        }
        let ev = json!({"type": "content_block_stop", "index": self.index});
        sse_event(&mut self.out, "content_block_stop", &ev);
        self.open = Open::None;
        self.index += 1;
    }

    fn terminate(&mut self) {
        self.start(&Value::Null);
        self.close_block();
        let mut exit_only = false;
        if let Some((_, args)) = self.exit.take() {
            let text = serde_json::from_str::<Value>(&args)
                .ok()
                .and_then(|v| str_of(v.get("response")).map(str::to_owned))
                .unwrap_or_default();
            self.open_block(Open::Text, json!({"type": "text", "text": ""}));
            self.delta(json!({"type": "text_delta", "text": text}));
            self.close_block();
            exit_only = self.tools == 0;
        }
        let finish = self.finish.as_deref().unwrap_or("stop");
        let reason = match (self.tools > 0, finish) {
            (true, "stop") => "tool_use",
            (false, "tool_calls") if exit_only => "end_turn",
            _ => stop_reason(finish),
        };
        let ev = json!({"type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": null},
            "usage": anthropic_usage(self.usage.as_ref())});
        sse_event(&mut self.out, "message_delta", &ev);
        sse_event(
            &mut self.out,
            "message_stop",
            &json!({"type": "message_stop"}),
        );
        self.done = true;
    }
}

impl StreamMachine for ChunksToEvents {
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
            Ok(SseItem::Comment(_)) => sse_event(&mut self.out, "ping", &json!({"type": "ping"})),
            Ok(SseItem::Event(ev)) => {
                let data = ev.data.trim();
                if data == "[DONE]" {
                    self.terminate();
                } else if ev.event.as_deref() == Some("ping") {
                    sse_event(&mut self.out, "ping", &json!({"type": "ping"}));
                } else if !data.is_empty() {
                    match serde_json::from_str::<Value>(data) {
                        Ok(chunk) => self.chunk(&chunk),
                        Err(e) => self.error("api_error", &format!("an unparsable chunk: {e}")),
                    }
                }
            }
        }
    }

    fn end(&mut self) {
        match self.finish.is_some() {
            true => self.terminate(),
            false => self.error(
                "api_error",
                "the stream ended before a finish_reason or [DONE] (cut off)",
            ),
        }
    }

    fn error(&mut self, kind: &str, message: &str) {
        self.close_block();
        let message = format!("provider {}: {message}", self.opts.provider);
        let ev = json!({"type": "error", "error": {"type": kind, "message": message}});
        sse_event(&mut self.out, "error", &ev);
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::sse::SseEvent;

    /// Runs chunks through a translator; returns (event name, data) pairs.
    pub(crate) fn events(t: &mut ChunksToEvents, chunks: &[&[u8]]) -> Vec<(String, Value)> {
        let mut bytes = Vec::new();
        for c in chunks {
            bytes.extend(t.push(c));
        }
        bytes.extend(t.finish());
        parse(&bytes)
    }

    pub(crate) fn parse(bytes: &[u8]) -> Vec<(String, Value)> {
        let mut p = crate::translate::sse::SseParser::new(1 << 20);
        let mut items = Vec::new();
        p.push(bytes, &mut items);
        p.finish(&mut items);
        items
            .into_iter()
            .map(|i| match i {
                Ok(SseItem::Event(SseEvent {
                    event: Some(e),
                    data,
                })) => (e, serde_json::from_str(&data).unwrap()),
                other => panic!("not a named event: {other:?}"),
            })
            .collect()
    }

    fn t() -> ChunksToEvents {
        ChunksToEvents::new(StreamOptions::new("m", "prov"))
    }

    fn data(v: Value) -> Vec<u8> {
        format!("data: {v}\n\n").into_bytes()
    }

    fn names(evs: &[(String, Value)]) -> Vec<&str> {
        evs.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn text_stream_with_usage_chunk() {
        let mut t = t();
        let a = data(
            json!({"id": "chatcmpl-1", "model": "ds", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        );
        let b = data(json!({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}));
        let c = data(json!({"choices": [{"index": 0, "delta": {}}]}));
        let d = data(
            json!({"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]}),
        );
        let u = data(json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}));
        let evs = events(&mut t, &[&a, &b, &c, &d, &u, b"data: [DONE]\n\n"]);
        assert_eq!(
            names(&evs),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(evs[0].1["message"]["id"], "msg_1");
        assert_eq!(evs[0].1["message"]["model"], "ds");
        assert_eq!(
            evs[2].1["delta"],
            json!({"type": "text_delta", "text": "Hel"})
        );
        assert_eq!(evs[3].1["delta"]["text"], "lo");
        assert_eq!(
            evs[5].1,
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"input_tokens": 9, "output_tokens": 2, "cache_read_input_tokens": 0}})
        );
        assert!(t.is_done());
    }

    #[test]
    fn split_tool_calls_several_tools_and_reasoning() {
        let chunks = [
            json!({"id": "x", "choices": [{"delta": {"reasoning_content": "hm"}}]}),
            json!({"choices": [{"delta": {"content": "I'll call"}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get", "arguments": ""}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"é\"}"}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "put", "arguments": "{}"}}]}}]}),
            json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}),
        ];
        let bytes: Vec<Vec<u8>> = chunks.into_iter().map(data).collect();
        let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let evs = events(&mut t(), &refs);
        let summary: Vec<String> = evs
            .iter()
            .map(|(n, v)| match n.as_str() {
                "content_block_start" => {
                    format!("start {} {}", v["index"], v["content_block"]["type"])
                }
                "content_block_delta" => format!("delta {} {}", v["index"], v["delta"]),
                "content_block_stop" => format!("stop {}", v["index"]),
                "message_delta" => format!("end {}", v["delta"]["stop_reason"]),
                other => other.to_owned(),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "message_start",
                "start 0 \"thinking\"",
                r#"delta 0 {"type":"thinking_delta","thinking":"hm"}"#,
                "stop 0",
                "start 1 \"text\"",
                r#"delta 1 {"type":"text_delta","text":"I'll call"}"#,
                "stop 1",
                "start 2 \"tool_use\"",
                r#"delta 2 {"type":"input_json_delta","partial_json":"{\"q\":"}"#,
                r#"delta 2 {"type":"input_json_delta","partial_json":"\"é\"}"}"#,
                "stop 2",
                "start 3 \"tool_use\"",
                r#"delta 3 {"type":"input_json_delta","partial_json":"{}"}"#,
                "stop 3",
                "end \"tool_use\"",
                "message_stop",
            ]
        );
        assert_eq!(
            evs[7].1["content_block"],
            json!({"type": "tool_use", "id": "call_a", "name": "get", "input": {}})
        );
        assert_eq!(evs[11].1["content_block"]["id"], "call_b");
    }

    #[test]
    fn unicode_split_across_chunks_every_byte() {
        let whole = data(
            json!({"id": "u", "choices": [{"delta": {"content": "日本語 🎉 ok"}, "finish_reason": "stop"}]}),
        );
        let mut expected = events(&mut t(), &[&whole, b"data: [DONE]\n\n"]);
        assert_eq!(expected[2].1["delta"]["text"], "日本語 🎉 ok");
        for cut in 1..whole.len() {
            let got = events(
                &mut t(),
                &[&whole[..cut], &whole[cut..], b"data: [DONE]\n\n"],
            );
            assert_eq!(got, expected, "cut at {cut}");
        }
        // Byte by byte too.
        let one: Vec<&[u8]> = whole.chunks(1).chain([&b"data: [DONE]\n\n"[..]]).collect();
        assert_eq!(events(&mut t(), &one), std::mem::take(&mut expected));
    }

    #[test]
    fn cut_off_stream_gets_an_error_after_closing_the_block() {
        let a = data(json!({"choices": [{"delta": {"content": "partial"}}]}));
        let evs = events(&mut t(), &[&a]);
        assert_eq!(
            names(&evs),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "error"
            ]
        );
        assert_eq!(
            evs[4].1["error"]["message"],
            "provider prov: the stream ended before a finish_reason or [DONE] (cut off)"
        );
        // A finish reason but no [DONE] and no usage: a normal end at EOF.
        let b = data(json!({"choices": [{"delta": {"content": "x"}, "finish_reason": "length"}]}));
        let evs = events(&mut t(), &[&b]);
        assert_eq!(names(&evs).last(), Some(&"message_stop"));
        assert_eq!(evs[4].1["delta"]["stop_reason"], "max_tokens");
        // [DONE] alone: a complete, empty message.
        let evs = events(&mut t(), &[b"data: [DONE]\n\n"]);
        assert_eq!(
            names(&evs),
            ["message_start", "message_delta", "message_stop"]
        );
    }

    #[test]
    fn errors_pings_and_garbage() {
        let err = data(json!({"error": {"message": "slow down", "type": "rate_limit_exceeded"}}));
        let evs = events(
            &mut t(),
            &[
                b": OPENROUTER PROCESSING\n\n",
                &err,
                b"data: {\"choices\":[]}\n\n",
            ],
        );
        assert_eq!(names(&evs), ["ping", "error"]);
        assert_eq!(
            evs[1].1,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "provider prov: slow down"}})
        );
        let evs = events(&mut t(), &[b"data: {not json\n\n"]);
        assert_eq!(names(&evs), ["error"]);
        let mut small = ChunksToEvents::new(StreamOptions {
            max_event_bytes: 64,
            ..StreamOptions::new("m", "p")
        });
        let big = format!("data: {}\n\n", "x".repeat(500));
        let evs = events(&mut small, &[big.as_bytes()]);
        assert_eq!(
            evs[0].1["error"]["message"],
            "provider p: an SSE line or event exceeded the 64-byte limit"
        );
        let mut f = t();
        let mut out = f.push(&data(json!({"choices": [{"delta": {"content": "a"}}]})));
        out.extend(f.fail("connection reset"));
        out.extend(f.finish());
        let evs = parse(&out);
        assert_eq!(names(&evs).last(), Some(&"error"));
        assert_eq!(evs.iter().filter(|(n, _)| n == "error").count(), 1);
    }

    #[test]
    fn exit_tool_becomes_text() {
        let mut t = ChunksToEvents::new(StreamOptions {
            exit_tool: true,
            ..StreamOptions::new("m", "p")
        });
        let a = data(
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "ExitTool", "arguments": "{\"resp"}}]}}]}),
        );
        let b = data(
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "onse\":\"bye\"}"}}]}, "finish_reason": "tool_calls"}]}),
        );
        let evs = events(&mut t, &[&a, &b, b"data: [DONE]\n\n"]);
        assert_eq!(
            names(&evs),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(evs[2].1["delta"]["text"], "bye");
        assert_eq!(evs[4].1["delta"]["stop_reason"], "end_turn");
    }
}
