//! claude-code-router's provider transformers that keepwarm implements, with
//! CCR's behaviour. They edit the upstream request in OpenAI form (after
//! translation); `maxtoken`, `deepseek` and `cleancache` touch only fields
//! both APIs share, so they also work on an Anthropic-format request.
//!
//! - `openrouter`: for non-Claude models, drops `cache_control` from messages
//!   and content parts; merges its options object into the request (e.g.
//!   `{"provider": {"only": ["groq"]}}`). (Numeric tool-call ids and reasoning
//!   deltas, the rest of CCR's openrouter transformer, are handled by the
//!   stream translator for every provider.)
//! - `deepseek`: caps `max_tokens` at 8192 (DeepSeek's limit);
//!   `reasoning_content` becomes thinking (done by the translator).
//! - `maxtoken` (`{"max_tokens": N}`): caps `max_tokens` at N.
//! - `tooluse`: adds CCR's "tool mode" system reminder; when tools are
//!   offered, sets `tool_choice: "required"` and adds `ExitTool`, whose call
//!   is turned back into plain text in the response (see
//!   [`Chain::exit_tool`]).
//! - `reasoning` (`{"enable": bool}`, default true): with thinking requested,
//!   sends `thinking: {type: enabled, budget_tokens}` and
//!   `enable_thinking: true` (Qwen, vLLM); with `enable: false`, sends them
//!   disabled.
//! - `cleancache`: drops `cache_control` everywhere in `messages`.

use serde_json::{json, Value};

/// One transformer, with its options.
#[derive(Clone, Debug, PartialEq)]
pub enum Transformer {
    /// `openrouter`, with the options merged into each request.
    OpenRouter {
        /// Merged into the request body (top-level keys replaced).
        options: serde_json::Map<String, Value>,
    },
    /// `deepseek`.
    Deepseek,
    /// `maxtoken`.
    MaxToken {
        /// The cap on `max_tokens`.
        max_tokens: u64,
    },
    /// `tooluse`.
    ToolUse,
    /// `reasoning`.
    Reasoning {
        /// `enable` [true].
        enable: bool,
    },
    /// `cleancache`.
    CleanCache,
}

/// The cap the `deepseek` transformer puts on `max_tokens`: 8192.
pub const DEEPSEEK_MAX_TOKENS: u64 = 8192;

const TOOL_MODE: &str = "<system-reminder>Tool mode is active. The user expects you to proactively execute the most suitable tool to help complete the task. \nBefore invoking a tool, you must carefully evaluate whether it matches the current task. If no available tool is appropriate for the task, you MUST call the `ExitTool` to exit tool mode — this is the only valid way to terminate tool mode.\nAlways prioritize completing the user's task effectively and efficiently by using tools whenever appropriate.</system-reminder>";

const EXIT_TOOL_DESCRIPTION: &str = "Use this tool when you are in tool mode and have completed the task. This is the only valid way to exit tool mode.\nIMPORTANT: Before using this tool, ensure that none of the available tools are applicable to the current task. You must evaluate all available options — only if no suitable tool can help you complete the task should you use ExitTool to terminate tool mode.";

impl Transformer {
    /// The transformer called `name` (CCR's spelling, case-insensitive) with
    /// `options` (`null` when none); `Ok(None)` when keepwarm does not
    /// implement it; `Err` when its options are wrong.
    pub fn from_config(name: &str, options: &Value) -> Result<Option<Transformer>, String> {
        let t = match name.to_ascii_lowercase().as_str() {
            "openrouter" => Transformer::OpenRouter {
                options: options.as_object().cloned().unwrap_or_default(),
            },
            "deepseek" => Transformer::Deepseek,
            "maxtoken" => match options.get("max_tokens").and_then(Value::as_u64) {
                Some(n) if n >= 1 => Transformer::MaxToken { max_tokens: n },
                _ => return Err("maxtoken needs options {\"max_tokens\": N} with N ≥ 1".into()),
            },
            "tooluse" => Transformer::ToolUse,
            "reasoning" => Transformer::Reasoning {
                enable: options
                    .get("enable")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            },
            "cleancache" => Transformer::CleanCache,
            _ => return Ok(None),
        };
        Ok(Some(t))
    }

    /// CCR's name.
    pub fn name(&self) -> &'static str {
        match self {
            Transformer::OpenRouter { .. } => "openrouter",
            Transformer::Deepseek => "deepseek",
            Transformer::MaxToken { .. } => "maxtoken",
            Transformer::ToolUse => "tooluse",
            Transformer::Reasoning { .. } => "reasoning",
            Transformer::CleanCache => "cleancache",
        }
    }

    /// Edits an upstream request. `thinking_budget`: the caller's enabled
    /// thinking budget, if any.
    pub fn apply(&self, req: &mut Value, thinking_budget: Option<i64>) {
        match self {
            Transformer::OpenRouter { options } => {
                let model = req.get("model").and_then(Value::as_str).unwrap_or("");
                if !model.contains("claude") {
                    clean_cache(req);
                }
                if let Value::Object(obj) = req {
                    for (k, v) in options {
                        obj.insert(k.clone(), v.clone());
                    }
                }
            }
            Transformer::Deepseek => cap(req, DEEPSEEK_MAX_TOKENS),
            Transformer::MaxToken { max_tokens } => cap(req, *max_tokens),
            Transformer::ToolUse => tool_use(req),
            Transformer::Reasoning { enable } => {
                let Value::Object(obj) = req else { return };
                match (enable, thinking_budget) {
                    (false, _) => {
                        obj.insert(
                            "thinking".into(),
                            json!({"type": "disabled", "budget_tokens": -1}),
                        );
                        obj.insert("enable_thinking".into(), Value::Bool(false));
                    }
                    (true, Some(b)) => {
                        obj.insert(
                            "thinking".into(),
                            json!({"type": "enabled", "budget_tokens": b}),
                        );
                        obj.insert("enable_thinking".into(), Value::Bool(true));
                    }
                    (true, None) => {}
                }
            }
            Transformer::CleanCache => clean_cache(req),
        }
    }
}

/// An ordered list of transformers for one provider and model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chain(pub Vec<Transformer>);

impl Chain {
    /// Applies each transformer in order.
    pub fn apply(&self, req: &mut Value, thinking_budget: Option<i64>) {
        for t in &self.0 {
            t.apply(req, thinking_budget);
        }
    }

    /// `tooluse` is on: an `ExitTool` call in the response becomes text.
    pub fn exit_tool(&self) -> bool {
        self.0.contains(&Transformer::ToolUse)
    }
}

fn cap(req: &mut Value, max: u64) {
    if let Some(n) = req.get("max_tokens").and_then(Value::as_u64) {
        if n > max {
            req["max_tokens"] = json!(max);
        }
    }
}

fn clean_cache(req: &mut Value) {
    for m in req
        .get_mut("messages")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        match m.get_mut("content") {
            Some(Value::Array(parts)) => {
                for p in parts.iter_mut().filter_map(Value::as_object_mut) {
                    p.remove("cache_control");
                }
            }
            _ => {
                if let Some(o) = m.as_object_mut() {
                    o.remove("cache_control");
                }
            }
        }
    }
}

fn tool_use(req: &mut Value) {
    if let Some(messages) = req.get_mut("messages").and_then(Value::as_array_mut) {
        messages.push(json!({"role": "system", "content": TOOL_MODE}));
    }
    let has_tools = req
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if let (true, Some(tools)) = (
        has_tools,
        req.get_mut("tools").and_then(Value::as_array_mut),
    ) {
        tools.push(json!({"type": "function", "function": {
            "name": crate::translate::completion_to_message::EXIT_TOOL,
            "description": EXIT_TOOL_DESCRIPTION,
            "parameters": {"type": "object", "properties": {"response": {"type": "string",
                "description": "Your response will be forwarded to the user exactly as returned — the tool will not modify or post-process it in any way."}},
                "required": ["response"]}}}));
        req["tool_choice"] = json!("required");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, opts: Value) -> Transformer {
        Transformer::from_config(name, &opts).unwrap().unwrap()
    }

    #[test]
    fn caps_and_names() {
        let mut r = json!({"max_tokens": 32000});
        t("deepseek", Value::Null).apply(&mut r, None);
        assert_eq!(r["max_tokens"], 8192);
        let mut r = json!({"max_tokens": 500});
        t("maxtoken", json!({"max_tokens": 100})).apply(&mut r, None);
        assert_eq!(r["max_tokens"], 100);
        let mut r = json!({"max_tokens": 50});
        t("MaxToken", json!({"max_tokens": 100})).apply(&mut r, None);
        assert_eq!(r["max_tokens"], 50);
        assert_eq!(Transformer::from_config("gemini", &Value::Null), Ok(None));
        assert!(Transformer::from_config("maxtoken", &Value::Null).is_err());
        assert_eq!(t("cleancache", Value::Null).name(), "cleancache");
    }

    #[test]
    fn cache_control_cleaning_and_openrouter_options() {
        let req = || {
            json!({"model": "google/gemini", "messages": [
            {"role": "system", "content": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "u", "cache_control": {"type": "ephemeral"}}]})
        };
        let mut r = req();
        t("cleancache", Value::Null).apply(&mut r, None);
        assert_eq!(
            r["messages"][0]["content"][0],
            json!({"type": "text", "text": "s"})
        );
        assert!(r["messages"][1].get("cache_control").is_none());
        let or = t("openrouter", json!({"provider": {"only": ["groq"]}}));
        let mut r = req();
        or.apply(&mut r, None);
        assert!(r["messages"][0]["content"][0]
            .get("cache_control")
            .is_none());
        assert_eq!(r["provider"], json!({"only": ["groq"]}));
        let mut r = req();
        r["model"] = json!("anthropic/claude-sonnet-4");
        or.apply(&mut r, None);
        assert!(
            r["messages"][0]["content"][0]
                .get("cache_control")
                .is_some(),
            "kept for Claude"
        );
    }

    #[test]
    fn tooluse_and_reasoning() {
        let mut r = json!({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "get"}}]});
        let chain = Chain(vec![t("tooluse", Value::Null)]);
        chain.apply(&mut r, None);
        assert!(chain.exit_tool());
        assert_eq!(r["messages"][1]["role"], "system");
        assert!(r["messages"][1]["content"]
            .as_str()
            .unwrap()
            .starts_with("<system-reminder>Tool mode is active."));
        assert_eq!(r["tools"][1]["function"]["name"], "ExitTool");
        assert_eq!(r["tool_choice"], "required");
        let mut no_tools = json!({"messages": []});
        chain.apply(&mut no_tools, None);
        assert!(no_tools.get("tool_choice").is_none());
        assert!(!Chain::default().exit_tool());

        let mut r = json!({});
        t("reasoning", Value::Null).apply(&mut r, Some(4000));
        assert_eq!(
            r,
            json!({"thinking": {"type": "enabled", "budget_tokens": 4000}, "enable_thinking": true})
        );
        let mut r = json!({});
        t("reasoning", Value::Null).apply(&mut r, None);
        assert_eq!(r, json!({}));
        let mut r = json!({});
        t("reasoning", json!({"enable": false})).apply(&mut r, Some(4000));
        assert_eq!(r["enable_thinking"], false);
        assert_eq!(r["thinking"]["type"], "disabled");
    }
}
