//! Token counting for `POST /v1/messages/count_tokens` on OpenAI-format
//! providers and for `Router.longContextThreshold`.
//!
//! An estimate with a real tokenizer: OpenAI's `cl100k_base` BPE (from the
//! `tiktoken-rs` crate, whose rank files ship inside the crate — nothing is
//! downloaded), counted over what claude-code-router counts: message text,
//! `tool_use` inputs and `tool_result` contents as JSON, the system prompt,
//! and each tool's name + description and schema. Images, message framing
//! and the provider's own tokenizer differences are not counted, so the
//! figure is close to but not equal to what a provider bills. It reads
//! both request shapes (OpenAI `content` parts and `tool_calls` too).

use serde_json::Value;
use tiktoken_rs::CoreBPE;

fn bpe() -> &'static CoreBPE {
    tiktoken_rs::cl100k_base_singleton()
}

/// Tokens in `text` (cl100k_base, special tokens treated as text).
pub fn count_text(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    bpe().encode_ordinary(text).len() as u64
}

/// The estimated input tokens of a request body (Anthropic or OpenAI shape).
pub fn count_request(req: &Value) -> u64 {
    let mut n = 0;
    if let Some(messages) = req.get("messages").and_then(Value::as_array) {
        for m in messages {
            n += content(m.get("content"));
            for call in m
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let f = call.get("function");
                n += count_text(
                    f.and_then(|f| f.get("arguments"))
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                );
            }
        }
    }
    n += content(req.get("system"));
    for t in req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = t.get("function").unwrap_or(t);
        let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
        if !s("description").is_empty() {
            n += count_text(&format!("{}{}", s("name"), s("description")));
        }
        if let Some(schema) = f.get("input_schema").or_else(|| f.get("parameters")) {
            n += count_text(&schema.to_string());
        }
    }
    n
}

fn content(c: Option<&Value>) -> u64 {
    match c {
        Some(Value::String(s)) => count_text(s),
        Some(Value::Array(parts)) => parts.iter().map(part).sum(),
        _ => 0,
    }
}

fn part(p: &Value) -> u64 {
    match p.get("type").and_then(Value::as_str) {
        Some("text") => count_text(p.get("text").and_then(Value::as_str).unwrap_or("")),
        Some("tool_use") => p.get("input").map_or(0, |i| count_text(&i.to_string())),
        Some("tool_result") => match p.get("content") {
            Some(Value::String(s)) => count_text(s),
            Some(other) => count_text(&other.to_string()),
            None => 0,
        },
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_with_the_real_tokenizer() {
        // Known cl100k_base counts: "hello world" is 2 tokens, "tiktoken is great!" 6.
        assert_eq!(count_text("hello world"), 2);
        assert_eq!(count_text("tiktoken is great!"), 6);
        assert_eq!(count_text(""), 0);
        let req = json!({
            "system": [{"type": "text", "text": "hello world"}],
            "messages": [
                {"role": "user", "content": "hello world"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {"a": 1}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "tiktoken is great!"},
                                             {"type": "image", "source": {}}]}
            ],
            "tools": [{"name": "n", "description": "d", "input_schema": {"type": "object"}}]
        });
        let expected = 2
            + count_text("{\"a\":1}")
            + 6
            + 2
            + count_text("nd")
            + count_text("{\"type\":\"object\"}");
        assert_eq!(count_request(&req), expected);
        let openai = json!({"messages": [{"role": "system", "content": "hello world"},
            {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "n", "arguments": "{\"a\":1}"}}]}]});
        assert_eq!(count_request(&openai), 2 + count_text("{\"a\":1}"));
        let long = "word ".repeat(70_000);
        assert!(count_text(&long) >= 60_000);
    }
}
