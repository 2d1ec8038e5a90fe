//! An Anthropic Messages response → an OpenAI Chat Completions response.
//!
//! `text` blocks → `content` (joined; `null` when there is none and tools
//! were called), `tool_use` → `tool_calls` (`input` serialised to
//! `arguments`), `thinking` → `reasoning_content`; `stop_reason` →
//! `finish_reason` (see [`finish_reason`](super::finish_reason)); usage:
//! `prompt_tokens` = input + cache read + cache creation, `completion_tokens`
//! = output, `prompt_tokens_details.cached_tokens` = cache read. `created`
//! is passed in (this module reads no clock).

use serde_json::{json, Value};

use super::{finish_reason, openai_completion_id, str_of};

/// Translates an Anthropic response body. `model` is reported when the
/// body has none; `created` is the Unix time to report.
pub fn message_to_completion(resp: &Value, model: &str, created: u64) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for b in resp
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match str_of(b.get("type")) {
            Some("text") => text.push_str(str_of(b.get("text")).unwrap_or("")),
            Some("thinking") => reasoning.push_str(str_of(b.get("thinking")).unwrap_or("")),
            Some("tool_use") => {
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": str_of(b.get("id")).unwrap_or(""), "type": "function",
                    "function": {"name": str_of(b.get("name")).unwrap_or(""), "arguments": input.to_string()}}));
            }
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        if text.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    let reason = finish_reason(str_of(resp.get("stop_reason")).unwrap_or("end_turn"));
    json!({
        "id": openai_completion_id(str_of(resp.get("id"))),
        "object": "chat.completion",
        "created": created,
        "model": str_of(resp.get("model")).unwrap_or(model),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": reason}],
        "usage": usage(resp.get("usage")),
    })
}

/// Anthropic `usage` → OpenAI `usage`.
pub fn usage(u: Option<&Value>) -> Value {
    let n = |k: &str| {
        u.and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let cached = n("cache_read_input_tokens");
    let prompt = n("input_tokens") + cached + n("cache_creation_input_tokens");
    let completion = n("output_tokens");
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tools_thinking_usage() {
        let out = message_to_completion(
            &json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "text", "text": "a"}, {"type": "text", "text": "b"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"q": "ü"}}
                ],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2}}),
            "m",
            7,
        );
        assert_eq!(
            out,
            json!({"id": "chatcmpl-01", "object": "chat.completion", "created": 7, "model": "claude-x",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ab",
                    "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": "{\"q\":\"ü\"}"}}],
                    "reasoning_content": "t"}, "logprobs": null, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20,
                    "prompt_tokens_details": {"cached_tokens": 3}}})
        );
        let only_tool = message_to_completion(
            &json!({"content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}], "stop_reason": "tool_use"}),
            "m",
            0,
        );
        assert_eq!(only_tool["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(only_tool["model"], "m");
        for (s, f) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("stop_sequence", "stop"),
            ("refusal", "content_filter"),
        ] {
            let out = message_to_completion(&json!({"content": [], "stop_reason": s}), "m", 0);
            assert_eq!(out["choices"][0]["finish_reason"], f);
        }
    }
}
