//! An OpenAI Chat Completions request → an Anthropic Messages request.
//!
//! - `system`/`developer` messages → `system` (texts joined with a blank line);
//! - user text parts → `text` blocks, `image_url` (a `data:` URL → a base64
//!   source, else a `url` source) → `image` blocks;
//! - assistant `content` → a `text` block, `tool_calls` → `tool_use` blocks
//!   (`arguments` parsed to `input`; unparsable JSON is a
//!   [`TranslateError`]);
//! - `tool` messages → `tool_result` blocks in a user turn; consecutive
//!   turns of one role are merged (Anthropic wants them alternating);
//! - `max_completion_tokens`/`max_tokens` → `max_tokens` (required by
//!   Anthropic: [`DEFAULT_MAX_TOKENS`] when absent); `temperature` capped at
//!   1.0 (OpenAI allows 2); `top_p`; `stop` → `stop_sequences`; `user` →
//!   `metadata.user_id`; `stream` kept;
//! - `tools` (functions) → tools with `input_schema`; `tool_choice`
//!   auto/required/none/{function} → auto/any/none/tool;
//!   `parallel_tool_calls: false` → `disable_parallel_tool_use`;
//! - `reasoning_effort` → `thinking` with the budget of
//!   [`budget_for_effort`](super::budget_for_effort), kept below `max_tokens`.
//!
//! `n` > 1 cannot be served by Anthropic and is a [`TranslateError`];
//! `response_format`, `seed`, penalties and `logprobs` are not sent.

use serde_json::{json, Map, Value};

use super::{budget_for_effort, kind, str_of, TranslateError};

/// `max_tokens` sent when the OpenAI request has none: 4096.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Translates `req` (an OpenAI request body) for `model` upstream.
pub fn chat_to_messages(req: &Value, model: &str) -> Result<Value, TranslateError> {
    let Some(obj) = req.as_object() else {
        return Err(TranslateError::new("$", "expected an object"));
    };
    if obj.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(TranslateError::new(
            "n",
            "an Anthropic provider returns one choice; n must be 1",
        ));
    }
    let list = match obj.get("messages") {
        Some(Value::Array(l)) => l,
        Some(other) => {
            return Err(TranslateError::new(
                "messages",
                format!("expected an array, got {}", kind(other)),
            ))
        }
        None => return Err(TranslateError::new("messages", "is required")),
    };
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        let role = str_of(m.get("role"))
            .ok_or_else(|| TranslateError::new(format!("{path}.role"), "expected a string"))?;
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.push(plain_text(m.get("content"), &path)?);
                continue;
            }
            "user" => ("user", user_content(m.get("content"), &path)?),
            "assistant" => ("assistant", assistant_content(m, &path)?),
            "tool" => ("user", vec![tool_result(m, &path)?]),
            other => {
                return Err(TranslateError::new(
                    format!("{path}.role"),
                    format!("expected system, developer, user, assistant or tool, got {other:?}"),
                ))
            }
        };
        match turns.last_mut() {
            Some((r, b)) if r == role => b.extend(blocks),
            _ => turns.push((role.to_owned(), blocks)),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_owned()));
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    out.insert("messages".into(), Value::Array(messages));
    let system: Vec<String> = system.into_iter().filter(|s| !s.is_empty()).collect();
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    let max_tokens = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max_tokens));
    if let Some(t) = obj.get("temperature").and_then(Value::as_f64) {
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = obj.get("top_p").filter(|v| v.is_number()) {
        out.insert("top_p".into(), p.clone());
    }
    match obj.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(u) = str_of(obj.get("user")) {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
    }
    if let Some(tools) = obj.get("tools") {
        let tools = tools_of(tools)?;
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    tool_choice(obj, &mut out)?;
    if let Some(budget) = str_of(obj.get("reasoning_effort")).and_then(budget_for_effort) {
        // Anthropic requires budget_tokens ≥ 1024 and < max_tokens.
        let budget = budget.min(max_tokens.saturating_sub(1));
        if budget >= 1024 {
            out.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
    }
    Ok(Value::Object(out))
}

fn plain_text(content: Option<&Value>, path: &str) -> Result<String, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                match str_of(p.get("type")) {
                    Some("text") => texts.push(str_of(p.get("text")).unwrap_or("")),
                    other => {
                        return Err(TranslateError::new(
                            format!("{path}.content[{j}].type"),
                            format!("expected \"text\", got {other:?}"),
                        ))
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        Some(other) => Err(TranslateError::new(
            format!("{path}.content"),
            format!("expected a string or an array, got {}", kind(other)),
        )),
    }
}

fn user_content(content: Option<&Value>, path: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Some(Value::String(s)) => Ok(vec![json!({"type": "text", "text": s})]),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                let path = format!("{path}.content[{j}]");
                match str_of(p.get("type")) {
                    Some("text") => blocks
                        .push(json!({"type": "text", "text": str_of(p.get("text")).unwrap_or("")})),
                    Some("image_url") => {
                        let url = str_of(p.get("image_url").and_then(|i| i.get("url")))
                            .ok_or_else(|| {
                                TranslateError::new(
                                    format!("{path}.image_url.url"),
                                    "expected a string",
                                )
                            })?;
                        blocks.push(image_block(url));
                    }
                    other => {
                        return Err(TranslateError::new(
                            format!("{path}.type"),
                            format!("part type {other:?} cannot be sent to an Anthropic provider"),
                        ))
                    }
                }
            }
            Ok(blocks)
        }
        other => Err(TranslateError::new(
            format!("{path}.content"),
            format!(
                "expected a string or an array, got {}",
                other.map_or("nothing", kind)
            ),
        )),
    }
}

/// `data:MEDIA;base64,DATA` → a base64 source; anything else → a url source.
fn image_block(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((media, data)) = rest.split_once(";base64,") {
            return json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}});
        }
    }
    json!({"type": "image", "source": {"type": "url", "url": url}})
}

fn assistant_content(m: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = Vec::new();
    let text = plain_text(m.get("content"), path)?;
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
        for (j, c) in calls.iter().enumerate() {
            let p = format!("{path}.tool_calls[{j}]");
            let id = str_of(c.get("id"))
                .ok_or_else(|| TranslateError::new(format!("{p}.id"), "expected a string"))?;
            let f = c.get("function").unwrap_or(&Value::Null);
            let name = str_of(f.get("name")).ok_or_else(|| {
                TranslateError::new(format!("{p}.function.name"), "expected a string")
            })?;
            let args = str_of(f.get("arguments")).unwrap_or("");
            let input: Value = match args.trim() {
                "" => json!({}),
                a => serde_json::from_str(a).map_err(|e| {
                    TranslateError::new(
                        format!("{p}.function.arguments"),
                        format!("not valid JSON: {e}"),
                    )
                })?,
            };
            blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
    }
    if blocks.is_empty() {
        blocks.push(json!({"type": "text", "text": ""}));
    }
    Ok(blocks)
}

fn tool_result(m: &Value, path: &str) -> Result<Value, TranslateError> {
    let id = str_of(m.get("tool_call_id"))
        .ok_or_else(|| TranslateError::new(format!("{path}.tool_call_id"), "expected a string"))?;
    let text = plain_text(m.get("content"), path)?;
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": text}))
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
        let f = t.get("function").unwrap_or(&Value::Null);
        let name = str_of(f.get("name")).ok_or_else(|| {
            TranslateError::new(format!("tools[{i}].function.name"), "expected a string")
        })?;
        let schema = f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let mut tool = json!({"name": name, "input_schema": schema});
        if let Some(d) = str_of(f.get("description")) {
            tool["description"] = Value::String(d.to_owned());
        }
        out.push(tool);
    }
    Ok(out)
}

fn tool_choice(
    obj: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), TranslateError> {
    let mut choice = match obj.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            other => {
                return Err(TranslateError::new(
                    "tool_choice",
                    format!("expected auto, required, none or a function, got {other:?}"),
                ))
            }
        },
        Some(c) => {
            let name = str_of(c.get("function").and_then(|f| f.get("name"))).ok_or_else(|| {
                TranslateError::new("tool_choice.function.name", "expected a string")
            })?;
            Some(json!({"type": "tool", "name": name}))
        }
    };
    if obj.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false)
        && out.contains_key("tools")
    {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_user_params() {
        let out = chat_to_messages(
            &json!({"model": "x", "messages": [
                {"role": "system", "content": "s1"},
                {"role": "developer", "content": [{"type": "text", "text": "s2"}]},
                {"role": "user", "content": "hi"}
            ], "max_completion_tokens": 50, "temperature": 1.7, "top_p": 0.5,
               "stop": "END", "user": "u", "stream": true, "seed": 3}),
            "claude",
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"model": "claude", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "system": "s1\n\ns2", "max_tokens": 50, "temperature": 1.0, "top_p": 0.5,
                "stop_sequences": ["END"], "metadata": {"user_id": "u"}, "stream": true})
        );
        let out = chat_to_messages(&json!({"messages": []}), "c").unwrap();
        assert_eq!(out["max_tokens"], json!(DEFAULT_MAX_TOKENS));
    }

    #[test]
    fn tool_round_trip_and_images() {
        let out = chat_to_messages(
            &json!({"messages": [
                {"role": "user", "content": [{"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
                    {"type": "image_url", "image_url": {"url": "https://h/i.png"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"q\":1}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "put", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "r2"}]},
                {"role": "user", "content": "thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object"}}}],
            "tool_choice": "required", "parallel_tool_calls": false, "reasoning_effort": "high", "max_tokens": 30000}),
            "c",
        )
        .unwrap();
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "see"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
                    {"type": "image", "source": {"type": "url", "url": "https://h/i.png"}}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get", "input": {"q": 1}},
                    {"type": "tool_use", "id": "call_2", "name": "put", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "r1"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "r2"},
                    {"type": "text", "text": "thanks"}]}
            ])
        );
        assert_eq!(
            out["tools"],
            json!([{"name": "get", "input_schema": {"type": "object"}, "description": "d"}])
        );
        assert_eq!(
            out["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 24576})
        );
        for (c, want) in [
            (json!("auto"), json!({"type": "auto"})),
            (json!("none"), json!({"type": "none"})),
            (
                json!({"type": "function", "function": {"name": "get"}}),
                json!({"type": "tool", "name": "get"}),
            ),
        ] {
            let out = chat_to_messages(&json!({"messages": [], "tool_choice": c}), "c").unwrap();
            assert_eq!(out["tool_choice"], want);
        }
        let small = chat_to_messages(
            &json!({"messages": [], "reasoning_effort": "high", "max_tokens": 500}),
            "c",
        )
        .unwrap();
        assert!(small.get("thinking").is_none(), "{small}");
    }

    #[test]
    fn bad_input_names_the_path() {
        let cases = [
            (json!({"messages": [], "n": 2}), "n: an Anthropic provider returns one choice; n must be 1"),
            (json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]}]}),
             "messages[0].tool_calls[0].function.arguments: not valid JSON: EOF while parsing an object at line 1 column 1"),
            (json!({"messages": [{"role": "function", "content": ""}]}),
             "messages[0].role: expected system, developer, user, assistant or tool, got \"function\""),
            (json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
             "messages[0].content[0].type: part type Some(\"input_audio\") cannot be sent to an Anthropic provider"),
            (json!({"messages": [], "tool_choice": "sometimes"}), "tool_choice: expected auto, required, none or a function, got \"sometimes\""),
        ];
        for (req, want) in cases {
            assert_eq!(chat_to_messages(&req, "c").unwrap_err().to_string(), want);
        }
    }
}
