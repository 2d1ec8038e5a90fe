//! An OpenAI Chat Completions response → an Anthropic Messages response.
//!
//! The first choice's `reasoning_content` (DeepSeek) or `reasoning`
//! (OpenRouter) → a `thinking` block; `content` (and `refusal`) → a `text`
//! block; `tool_calls` → `tool_use` blocks with `arguments` parsed to
//! `input` (unparsable arguments become `{}`, as the caller cannot use a
//! half object); `finish_reason` → `stop_reason` (see
//! [`stop_reason`](super::stop_reason); tool calls with a `stop` finish —
//! some providers do that — count as `tool_use`); usage: `prompt_tokens` −
//! cached → `input_tokens`, cached (`prompt_tokens_details.cached_tokens`
//! or DeepSeek's `prompt_cache_hit_tokens`) → `cache_read_input_tokens`,
//! `completion_tokens` → `output_tokens`. Ids in Anthropic form.
//!
//! With `exit_tool` (the `tooluse` transformer), a call to `ExitTool` is
//! turned back into text: its `response` argument.

use serde_json::{json, Value};

use super::{anthropic_message_id, stop_reason, str_of, tool_id};

/// The name of the tool the `tooluse` transformer adds.
pub const EXIT_TOOL: &str = "ExitTool";

/// Translates an OpenAI response body; `model` is reported when the body
/// has none. `exit_tool`: see the module doc.
pub fn completion_to_message(resp: &Value, model: &str, exit_tool: bool) -> Value {
    let id = anthropic_message_id(str_of(resp.get("id")));
    let choice = resp
        .get("choices")
        .and_then(|c| c.get(0))
        .unwrap_or(&Value::Null);
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    let reasoning = str_of(msg.get("reasoning_content")).or_else(|| str_of(msg.get("reasoning")));
    if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    let mut text = String::new();
    for key in ["content", "refusal"] {
        if let Some(t) = str_of(msg.get(key)) {
            text.push_str(t);
        }
    }
    let mut tools = Vec::new();
    for (n, c) in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = c.get("function").unwrap_or(&Value::Null);
        let name = str_of(f.get("name")).unwrap_or("");
        let input: Value = str_of(f.get("arguments"))
            .and_then(|a| serde_json::from_str(a).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        if exit_tool && name == EXIT_TOOL {
            text.push_str(str_of(input.get("response")).unwrap_or(""));
            continue;
        }
        tools.push(
            json!({"type": "tool_use", "id": tool_id(str_of(c.get("id")), &id, n),
            "name": name, "input": input}),
        );
    }
    if !text.is_empty() || (tools.is_empty() && content.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    let finish = str_of(choice.get("finish_reason")).unwrap_or("stop");
    let reason = match (tools.is_empty(), finish) {
        (false, "stop") => "tool_use",
        (true, "tool_calls") => "end_turn", // only ExitTool was called
        _ => stop_reason(finish),
    };
    content.extend(tools);
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": str_of(resp.get("model")).unwrap_or(model),
        "content": content,
        "stop_reason": reason,
        "stop_sequence": null,
        "usage": usage(resp.get("usage")),
    })
}

/// OpenAI `usage` → Anthropic `usage`.
pub fn usage(u: Option<&Value>) -> Value {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let Some(u) = u else {
        return json!({"input_tokens": 0, "output_tokens": 0});
    };
    let cached = n(u
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens"))
        .or_else(|| u.get("prompt_cache_hit_tokens")));
    let prompt = n(u.get("prompt_tokens"));
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "output_tokens": n(u.get("completion_tokens")),
        "cache_read_input_tokens": cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tools_reasoning_and_usage() {
        let out = completion_to_message(
            &json!({"id": "chatcmpl-9", "model": "deepseek-chat", "choices": [{"index": 0,
                "message": {"role": "assistant", "content": "ok", "reasoning_content": "think",
                    "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "get", "arguments": "{\"q\":\"x\"}"}},
                        {"id": "1", "type": "function", "function": {"name": "put", "arguments": "{bad"}}
                    ]},
                "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
                          "prompt_tokens_details": {"cached_tokens": 40}}}),
            "m",
            false,
        );
        assert_eq!(
            out,
            json!({"id": "msg_9", "type": "message", "role": "assistant", "model": "deepseek-chat",
                "content": [
                    {"type": "thinking", "thinking": "think", "signature": ""},
                    {"type": "text", "text": "ok"},
                    {"type": "tool_use", "id": "call_a", "name": "get", "input": {"q": "x"}},
                    {"type": "tool_use", "id": "toolu_9_1", "name": "put", "input": {}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 60, "output_tokens": 7, "cache_read_input_tokens": 40}})
        );
    }

    #[test]
    fn finish_reasons_empty_and_exit_tool() {
        for (f, s) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("content_filter", "refusal"),
        ] {
            let out = completion_to_message(
                &json!({"choices": [{"message": {"content": "x"}, "finish_reason": f}]}),
                "m",
                false,
            );
            assert_eq!(out["stop_reason"], s);
            assert_eq!(out["model"], "m");
        }
        let out = completion_to_message(&json!({}), "m", false);
        assert_eq!(out["content"], json!([{"type": "text", "text": ""}]));
        assert_eq!(out["usage"], json!({"input_tokens": 0, "output_tokens": 0}));
        let exit = json!({"choices": [{"message": {"content": null, "tool_calls": [{"id": "c",
            "function": {"name": "ExitTool", "arguments": "{\"response\":\"done\"}"}}]},
            "finish_reason": "tool_calls"}]});
        let out = completion_to_message(&exit, "m", true);
        assert_eq!(out["content"], json!([{"type": "text", "text": "done"}]));
        assert_eq!(out["stop_reason"], "end_turn");
        let kept = completion_to_message(&exit, "m", false);
        assert_eq!(kept["content"][0]["name"], "ExitTool");
        let ds = usage(Some(
            &json!({"prompt_tokens": 10, "completion_tokens": 1, "prompt_cache_hit_tokens": 4}),
        ));
        assert_eq!(ds["input_tokens"], 6);
    }
}
