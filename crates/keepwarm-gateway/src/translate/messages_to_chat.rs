//! An Anthropic Messages request → an OpenAI Chat Completions request.
//!
//! - `system` (a string or text blocks) → a leading `system` message (a
//!   string; text parts kept as an array only when a block carries
//!   `cache_control`, which OpenRouter passes on to Anthropic models);
//! - user `text` → text parts, `image` (base64 → a `data:` URL, or `url`) →
//!   `image_url` parts; `tool_result` → a `tool` message placed before the
//!   rest of that user turn (OpenAI wants tool answers right after the
//!   assistant's calls), `is_error` prefixed as `Error: `; images inside a
//!   tool result go to the user message that follows;
//! - assistant `text` → `content`, `tool_use` → `tool_calls` (input
//!   serialised to `arguments`), `thinking`/`redacted_thinking` dropped
//!   (OpenAI-format providers reject them as input);
//! - `tools` → `functions` (schema kept); server tools without an
//!   `input_schema` (`web_search_*`, …) are dropped; `tool_choice`
//!   auto/any/tool/none → auto/required/{function}/none, and
//!   `disable_parallel_tool_use` → `parallel_tool_calls: false`;
//! - `max_tokens`, `temperature`, `top_p` kept; `stop_sequences` → `stop`;
//!   `metadata.user_id` → `user`; `stream` kept with
//!   `stream_options.include_usage` so the final usage arrives;
//! - `thinking` enabled → `reasoning_effort` (see
//!   [`effort_for_budget`](super::effort_for_budget)) when
//!   [`ChatOptions::reasoning_effort`] is on.
//!
//! Other fields (`top_k`, `container`, `mcp_servers`…) are not sent. Block
//! types with no OpenAI equivalent (`document`, …) are a [`TranslateError`].

use serde_json::{json, Map, Value};

use super::{effort_for_budget, kind, str_of, TranslateError};

/// How to build the OpenAI request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatOptions {
    /// Send `reasoning_effort` for an enabled `thinking`. Default true.
    pub reasoning_effort: bool,
}

impl Default for ChatOptions {
    fn default() -> Self {
        ChatOptions {
            reasoning_effort: true,
        }
    }
}

/// Translates `req` (an Anthropic request body) for `model` upstream.
pub fn messages_to_chat(
    req: &Value,
    model: &str,
    opts: &ChatOptions,
) -> Result<Value, TranslateError> {
    let Some(obj) = req.as_object() else {
        return Err(TranslateError::new("$", "expected an object"));
    };
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_owned()));
    let mut messages = Vec::new();
    if let Some(system) = obj.get("system") {
        if let Some(m) = system_message(system)? {
            messages.push(m);
        }
    }
    match obj.get("messages") {
        Some(Value::Array(list)) => {
            for (i, m) in list.iter().enumerate() {
                message(m, &format!("messages[{i}]"), &mut messages)?;
            }
        }
        Some(other) => {
            return Err(TranslateError::new(
                "messages",
                format!("expected an array, got {}", kind(other)),
            ))
        }
        None => return Err(TranslateError::new("messages", "is required")),
    }
    out.insert("messages".into(), Value::Array(messages));
    for key in ["max_tokens", "temperature", "top_p"] {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = obj.get("stop_sequences").filter(|v| !v.is_null()) {
        out.insert("stop".into(), stop.clone());
    }
    if let Some(user) = str_of(obj.get("metadata").and_then(|m| m.get("user_id"))) {
        out.insert("user".into(), Value::String(user.to_owned()));
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(tools) = obj.get("tools") {
        let tools = tools_of(tools)?;
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = obj.get("tool_choice") {
        tool_choice(choice, &mut out)?;
    }
    if opts.reasoning_effort {
        if let Some(budget) = thinking_budget(req) {
            out.insert(
                "reasoning_effort".into(),
                Value::String(effort_for_budget(budget).into()),
            );
        }
    }
    Ok(Value::Object(out))
}

/// The request's enabled thinking budget (`thinking.type` = `enabled`;
/// a missing budget counts as 1024).
pub fn thinking_budget(req: &Value) -> Option<i64> {
    let t = req.get("thinking")?;
    match str_of(t.get("type")) {
        Some("enabled") | Some("adaptive") => Some(
            t.get("budget_tokens")
                .and_then(Value::as_i64)
                .unwrap_or(1024),
        ),
        _ => None,
    }
}

fn system_message(system: &Value) -> Result<Option<Value>, TranslateError> {
    match system {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(json!({"role": "system", "content": s}))),
        Value::Array(blocks) => {
            let mut parts = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let path = format!("system[{i}]");
                match str_of(b.get("type")) {
                    Some("text") => parts.push(text_part(b, &path)?),
                    other => {
                        return Err(TranslateError::new(
                            format!("{path}.type"),
                            format!("expected \"text\", got {other:?}"),
                        ))
                    }
                }
            }
            Ok((!parts.is_empty()).then(|| json!({"role": "system", "content": flatten(parts)})))
        }
        other => Err(TranslateError::new(
            "system",
            format!(
                "expected a string or an array of text blocks, got {}",
                kind(other)
            ),
        )),
    }
}

/// Text parts → one string unless a part carries `cache_control`.
fn flatten(parts: Vec<Value>) -> Value {
    let cached = parts.iter().any(|p| p.get("cache_control").is_some());
    let texts = parts.iter().all(|p| str_of(p.get("type")) == Some("text"));
    if cached || !texts {
        return Value::Array(parts);
    }
    let joined: Vec<&str> = parts.iter().filter_map(|p| str_of(p.get("text"))).collect();
    Value::String(joined.join("\n\n"))
}

fn text_part(block: &Value, path: &str) -> Result<Value, TranslateError> {
    let text = str_of(block.get("text"))
        .ok_or_else(|| TranslateError::new(format!("{path}.text"), "expected a string"))?;
    let mut part = json!({"type": "text", "text": text});
    if let Some(cc) = block.get("cache_control") {
        part["cache_control"] = cc.clone();
    }
    Ok(part)
}

fn image_part(block: &Value, path: &str) -> Result<Value, TranslateError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let url = match str_of(source.get("type")) {
        Some("base64") => {
            let media = str_of(source.get("media_type")).unwrap_or("image/png");
            let data = str_of(source.get("data")).ok_or_else(|| {
                TranslateError::new(format!("{path}.source.data"), "expected a string")
            })?;
            format!("data:{media};base64,{data}")
        }
        Some("url") => str_of(source.get("url"))
            .ok_or_else(|| TranslateError::new(format!("{path}.source.url"), "expected a string"))?
            .to_owned(),
        other => {
            return Err(TranslateError::new(
                format!("{path}.source.type"),
                format!("expected \"base64\" or \"url\", got {other:?}"),
            ))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

fn message(m: &Value, path: &str, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let role = str_of(m.get("role"))
        .ok_or_else(|| TranslateError::new(format!("{path}.role"), "expected a string"))?;
    let content = m.get("content").unwrap_or(&Value::Null);
    match (role, content) {
        ("user" | "assistant", Value::String(s)) => {
            out.push(json!({"role": role, "content": s}));
            Ok(())
        }
        // Claude Code sends system turns inside `messages` too: keep them as such.
        ("system", c) => {
            let Some(m) = system_message(c)
                .map_err(|e| TranslateError::new(format!("{path}.content"), e.message))?
            else {
                return Ok(());
            };
            out.push(m);
            Ok(())
        }
        ("user", Value::Array(blocks)) => user_blocks(blocks, path, out),
        ("assistant", Value::Array(blocks)) => assistant_blocks(blocks, path, out),
        ("user" | "assistant", other) => Err(TranslateError::new(
            format!("{path}.content"),
            format!(
                "expected a string or an array of blocks, got {}",
                kind(other)
            ),
        )),
        (other, _) => Err(TranslateError::new(
            format!("{path}.role"),
            format!("expected \"user\", \"assistant\" or \"system\", got {other:?}"),
        )),
    }
}

fn user_blocks(blocks: &[Value], path: &str, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let mut parts = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let path = format!("{path}.content[{i}]");
        match str_of(b.get("type")) {
            Some("text") => parts.push(text_part(b, &path)?),
            Some("image") => parts.push(image_part(b, &path)?),
            Some("tool_result") => out.push(tool_message(b, &path, &mut parts)?),
            Some("thinking" | "redacted_thinking") => {}
            other => return Err(unsupported(&path, other)),
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": flatten(parts)}));
    }
    Ok(())
}

fn tool_message(b: &Value, path: &str, images: &mut Vec<Value>) -> Result<Value, TranslateError> {
    let id = str_of(b.get("tool_use_id"))
        .ok_or_else(|| TranslateError::new(format!("{path}.tool_use_id"), "expected a string"))?;
    let mut text = match b.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let mut texts = Vec::new();
            for (j, item) in items.iter().enumerate() {
                let p = format!("{path}.content[{j}]");
                match str_of(item.get("type")) {
                    Some("text") => texts.push(str_of(item.get("text")).unwrap_or("").to_owned()),
                    Some("image") => images.push(image_part(item, &p)?),
                    other => return Err(unsupported(&p, other)),
                }
            }
            texts.join("\n")
        }
        Some(other) => {
            return Err(TranslateError::new(
                format!("{path}.content"),
                format!("expected a string or an array, got {}", kind(other)),
            ))
        }
    };
    if b.get("is_error").and_then(Value::as_bool) == Some(true) {
        text = format!("Error: {text}");
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

fn assistant_blocks(
    blocks: &[Value],
    path: &str,
    out: &mut Vec<Value>,
) -> Result<(), TranslateError> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let path = format!("{path}.content[{i}]");
        match str_of(b.get("type")) {
            Some("text") => texts.push(str_of(b.get("text")).unwrap_or("").to_owned()),
            Some("tool_use") => {
                let id = str_of(b.get("id")).ok_or_else(|| {
                    TranslateError::new(format!("{path}.id"), "expected a string")
                })?;
                let name = str_of(b.get("name")).ok_or_else(|| {
                    TranslateError::new(format!("{path}.name"), "expected a string")
                })?;
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
            Some("thinking" | "redacted_thinking") => {}
            other => return Err(unsupported(&path, other)),
        }
    }
    let content = match texts.is_empty() {
        true => Value::Null,
        false => Value::String(texts.join("")),
    };
    let mut m = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    } else if m["content"].is_null() {
        m["content"] = Value::String(String::new());
    }
    out.push(m);
    Ok(())
}

fn unsupported(path: &str, ty: Option<&str>) -> TranslateError {
    TranslateError::new(
        format!("{path}.type"),
        format!("block type {ty:?} cannot be sent to an OpenAI-format provider"),
    )
}

fn tools_of(tools: &Value) -> Result<Vec<Value>, TranslateError> {
    let Value::Array(list) = tools else {
        return Err(TranslateError::new(
            "tools",
            format!("expected an array, got {}", kind(tools)),
        ));
    };
    let mut out = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let Some(schema) = t.get("input_schema") else {
            continue; // a server tool (web_search_…, bash_…): nothing to call here
        };
        let name = str_of(t.get("name"))
            .ok_or_else(|| TranslateError::new(format!("tools[{i}].name"), "expected a string"))?;
        let mut f = json!({"name": name, "parameters": schema});
        if let Some(d) = str_of(t.get("description")) {
            f["description"] = Value::String(d.to_owned());
        }
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(out)
}

fn tool_choice(choice: &Value, out: &mut Map<String, Value>) -> Result<(), TranslateError> {
    let mapped = match str_of(choice.get("type")) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = str_of(choice.get("name"))
                .ok_or_else(|| TranslateError::new("tool_choice.name", "expected a string"))?;
            json!({"type": "function", "function": {"name": name}})
        }
        other => {
            return Err(TranslateError::new(
                "tool_choice.type",
                format!("expected auto, any, tool or none, got {other:?}"),
            ))
        }
    };
    out.insert("tool_choice".into(), mapped);
    if choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        == Some(true)
    {
        out.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(req: Value) -> Value {
        messages_to_chat(&req, "gpt-x", &ChatOptions::default()).unwrap()
    }

    #[test]
    fn system_params_and_stream() {
        let out = tr(json!({
            "model": "p,m", "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "top_k": 3,
            "stop_sequences": ["END"], "metadata": {"user_id": "u1"}, "stream": true,
            "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "messages": [{"role": "user", "content": "hi"}]
        }));
        assert_eq!(
            out,
            json!({
                "model": "gpt-x",
                "messages": [{"role": "system", "content": "a\n\nb"}, {"role": "user", "content": "hi"}],
                "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": ["END"], "user": "u1",
                "stream": true, "stream_options": {"include_usage": true}
            })
        );
        let out = tr(
            json!({"system": "s", "messages": [{"role": "system", "content": [{"type": "text", "text": "t"}]}]}),
        );
        assert_eq!(
            out["messages"],
            json!([{"role": "system", "content": "s"}, {"role": "system", "content": "t"}])
        );
        let out = tr(
            json!({"system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}], "messages": []}),
        );
        assert_eq!(
            out["messages"][0]["content"],
            json!([{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}])
        );
    }

    #[test]
    fn images_tool_use_and_tool_results() {
        let out = tr(json!({"messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"q": "é"}},
                {"type": "tool_use", "id": "toolu_2", "name": "put", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                 "content": [{"type": "text", "text": "denied"}, {"type": "image", "source": {"type": "url", "url": "u"}}]},
                {"type": "text", "text": "go on"}
            ]}
        ]}));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
                ]},
                {"role": "assistant", "content": "calling", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": "{\"q\":\"é\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "put", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "42"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: denied"},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "u"}},
                    {"type": "text", "text": "go on"}
                ]}
            ])
        );
    }

    #[test]
    fn tools_choice_and_thinking() {
        let out = tr(json!({"messages": [],
            "tools": [
                {"name": "get", "description": "d", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
                {"type": "web_search_20250305", "name": "web_search"}
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 5000}
        }));
        assert_eq!(
            out["tools"],
            json!([{"type": "function", "function": {"name": "get", "description": "d",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}])
        );
        assert_eq!(out["tool_choice"], json!("required"));
        assert_eq!(out["parallel_tool_calls"], json!(false));
        assert_eq!(out["reasoning_effort"], json!("medium"));
        for (c, want) in [
            (json!({"type": "auto"}), json!("auto")),
            (json!({"type": "none"}), json!("none")),
            (
                json!({"type": "tool", "name": "get"}),
                json!({"type": "function", "function": {"name": "get"}}),
            ),
        ] {
            assert_eq!(
                tr(json!({"messages": [], "tool_choice": c}))["tool_choice"],
                want
            );
        }
        let off = ChatOptions {
            reasoning_effort: false,
        };
        let out = messages_to_chat(
            &json!({"messages": [], "thinking": {"type": "enabled", "budget_tokens": 5000}}),
            "m",
            &off,
        )
        .unwrap();
        assert!(out.get("reasoning_effort").is_none());
    }

    #[test]
    fn bad_input_names_the_path() {
        let cases = [
            (json!({"messages": 3}), "messages: expected an array, got a number"),
            (json!({}), "messages: is required"),
            (json!({"messages": [{"role": "tool", "content": "x"}]}), "messages[0].role: expected \"user\", \"assistant\" or \"system\", got \"tool\""),
            (json!({"messages": [{"role": "user", "content": [{"type": "document"}]}]}),
             "messages[0].content[0].type: block type Some(\"document\") cannot be sent to an OpenAI-format provider"),
            (json!({"messages": [], "tool_choice": {"type": "tool"}}), "tool_choice.name: expected a string"),
            (json!([1]), "$: expected an object"),
        ];
        for (req, want) in cases {
            let e = messages_to_chat(&req, "m", &ChatOptions::default()).unwrap_err();
            assert_eq!(e.to_string(), want);
        }
    }
}
