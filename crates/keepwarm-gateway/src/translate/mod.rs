//! Anthropic Messages ⇄ OpenAI Chat Completions translation, pure (no I/O).
//!
//! One file per mapping:
//! - [`messages_to_chat`]: an Anthropic request → an OpenAI request;
//! - [`chat_to_messages`]: an OpenAI request → an Anthropic request;
//! - [`completion_to_message`]: an OpenAI response → an Anthropic response;
//! - [`message_to_completion`]: an Anthropic response → an OpenAI response;
//! - [`chunks_to_events`]: an OpenAI stream → an Anthropic stream, event by event;
//! - [`events_to_chunks`]: an Anthropic stream → an OpenAI stream, event by event;
//! - [`errors`]: error bodies both ways, status kept;
//! - [`sse`]: the bounded SSE parser both stream translators use;
//! - [`stream`]: the driving loop both stream translators share.
//!
//! Stream translators keep O(1) state besides the SSE parser's bounded
//! buffers (one line, one event): tool arguments and text are forwarded as
//! fragments, never accumulated. Finish-reason mappings live here so both
//! directions agree.

pub mod chat_to_messages;
pub mod chunks_to_events;
pub mod completion_to_message;
pub mod errors;
pub mod events_to_chunks;
pub mod message_to_completion;
pub mod messages_to_chat;
pub mod sse;
pub mod stream;

#[cfg(test)]
mod props;

use std::fmt;

use serde_json::Value;

/// A request that cannot be translated: the JSON path in the caller's body
/// and the reason. Answered as a 400 in the caller's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslateError {
    /// Where in the request body (`messages[2].content[0].type`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl TranslateError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> TranslateError {
        TranslateError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for TranslateError {}

/// OpenAI `finish_reason` → Anthropic `stop_reason`: stop→end_turn,
/// length→max_tokens, tool_calls/function_call→tool_use,
/// content_filter→refusal; anything else → end_turn.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`: end_turn,
/// stop_sequence, pause_turn→stop; max_tokens→length;
/// tool_use→tool_calls; refusal→content_filter.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// `thinking.budget_tokens` → `reasoning_effort` as claude-code-router
/// does: ≤0 none, ≤1024 low, ≤8192 medium, above high.
pub fn effort_for_budget(budget: i64) -> &'static str {
    match budget {
        i64::MIN..=0 => "none",
        1..=1024 => "low",
        1025..=8192 => "medium",
        _ => "high",
    }
}

/// `reasoning_effort` → a thinking budget: minimal/low 1024, medium 8192,
/// high 24576; `None` for "none" or unknown values.
pub fn budget_for_effort(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(8192),
        "high" => Some(24576),
        _ => None,
    }
}

/// An id in Anthropic form: `msg_` + the upstream id (its `chatcmpl-`
/// prefix dropped); `msg_keepwarm` when there is none.
pub fn anthropic_message_id(upstream: Option<&str>) -> String {
    match upstream.map(|s| s.trim_start_matches("chatcmpl-")) {
        Some(id) if !id.is_empty() => format!("msg_{}", id.trim_start_matches("msg_")),
        _ => "msg_keepwarm".to_owned(),
    }
}

/// An id in OpenAI form: `chatcmpl-` + the upstream id (`msg_` dropped).
pub fn openai_completion_id(upstream: Option<&str>) -> String {
    match upstream.map(|s| s.trim_start_matches("msg_")) {
        Some(id) if !id.is_empty() => format!("chatcmpl-{}", id.trim_start_matches("chatcmpl-")),
        _ => "chatcmpl-keepwarm".to_owned(),
    }
}

/// A tool call id usable both ways: the upstream's when it is non-empty and
/// not purely numeric (some OpenRouter backends send `0`, `1`…), else
/// `toolu_` + the message id + the call's position.
pub(crate) fn tool_id(upstream: Option<&str>, message_id: &str, n: usize) -> String {
    match upstream {
        Some(id) if !id.is_empty() && !id.bytes().all(|b| b.is_ascii_digit()) => id.to_owned(),
        _ => format!("toolu_{}_{n}", message_id.trim_start_matches("msg_")),
    }
}

/// `v` as a string when it is one.
pub(crate) fn str_of(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

/// The JSON type of `v`, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An SSE event as bytes: `event: NAME\ndata: JSON\n\n`.
pub(crate) fn sse_event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// An SSE data-only event: `data: JSON\n\n`.
pub(crate) fn sse_data(out: &mut Vec<u8>, data: &str) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_both_ways() {
        for (f, s) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("content_filter", "refusal"),
        ] {
            assert_eq!(stop_reason(f), s);
            assert_eq!(finish_reason(s), f);
        }
        assert_eq!(finish_reason("stop_sequence"), "stop");
        assert_eq!(stop_reason("weird"), "end_turn");
    }

    #[test]
    fn efforts_and_ids() {
        let e: Vec<_> = [0, 1024, 1025, 8192, 8193].map(effort_for_budget).into();
        assert_eq!(e, ["none", "low", "medium", "medium", "high"]);
        assert_eq!(budget_for_effort("high"), Some(24576));
        assert_eq!(budget_for_effort("none"), None);
        assert_eq!(anthropic_message_id(Some("chatcmpl-abc")), "msg_abc");
        assert_eq!(anthropic_message_id(Some("")), "msg_keepwarm");
        assert_eq!(openai_completion_id(Some("msg_01x")), "chatcmpl-01x");
        assert_eq!(tool_id(Some("call_1"), "msg_a", 0), "call_1");
        assert_eq!(tool_id(Some("0"), "msg_a", 2), "toolu_a_2");
        assert_eq!(tool_id(None, "msg_a", 1), "toolu_a_1");
    }
}
