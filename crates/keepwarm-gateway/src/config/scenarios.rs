//! The `Router` section's scenario keys (claude-code-router's names), as a
//! serde struct with a parse function that names the JSON path of a bad
//! value. Routing by them is [`crate::scenario`].
//!
//! ```json
//! "Router": {"default": "deepseek,deepseek-chat", "background": "ollama,qwen2.5-coder",
//!            "think": "deepseek,deepseek-reasoner", "longContext": "openrouter,google/gemini-2.5-pro",
//!            "longContextThreshold": 60000, "webSearch": "openrouter,perplexity/sonar",
//!            "image": "openrouter,openai/gpt-4o"}
//! ```
//! Each target is `"provider,model"`; `""` and `null` mean unset, as CCR's
//! own config files use them.

use serde::Deserialize;
use serde_json::Value;

use super::{ConfigError, RouteTarget};

/// The default `longContextThreshold`: 60000 tokens.
pub const DEFAULT_LONG_CONTEXT_THRESHOLD: u64 = 60_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    default: Option<String>,
    background: Option<String>,
    think: Option<String>,
    long_context: Option<String>,
    long_context_threshold: Option<u64>,
    web_search: Option<String>,
    image: Option<String>,
}

const KEYS: [&str; 7] = [
    "default",
    "background",
    "think",
    "longContext",
    "longContextThreshold",
    "webSearch",
    "image",
];

/// `Router`: where each scenario goes. Every target defaults to unset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterSection {
    /// `default`: a request no scenario claims (and whose model is bare).
    pub default: Option<RouteTarget>,
    /// `background`: `claude-3-5-haiku*` (and `claude-haiku-*`) requests.
    pub background: Option<RouteTarget>,
    /// `think`: requests with `thinking` enabled.
    pub think: Option<RouteTarget>,
    /// `longContext`: requests above `longContextThreshold` tokens.
    pub long_context: Option<RouteTarget>,
    /// `longContextThreshold` [60000]: tokens (see [`crate::tokens`]).
    pub long_context_threshold: u64,
    /// `webSearch`: requests offering a `web_search*` tool.
    pub web_search: Option<RouteTarget>,
    /// `image`: requests whose last user turn holds an image.
    pub image: Option<RouteTarget>,
}

impl Default for RouterSection {
    fn default() -> Self {
        RouterSection {
            default: None,
            background: None,
            think: None,
            long_context: None,
            long_context_threshold: DEFAULT_LONG_CONTEXT_THRESHOLD,
            web_search: None,
            image: None,
        }
    }
}

/// Parses the `Router` object at `path` (e.g. `"Router"`); returns the
/// section and warnings for keys it does not know.
pub fn parse(v: &Value, path: &str) -> Result<(RouterSection, Vec<String>), ConfigError> {
    let raw: Raw = serde_path_to_error::deserialize(v).map_err(|e| ConfigError {
        path: join(path, &e.path().to_string()),
        message: e.inner().to_string(),
    })?;
    let target = |key: &str, s: Option<String>| -> Result<Option<RouteTarget>, ConfigError> {
        match s.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => RouteTarget::parse(t).map(Some).ok_or_else(|| ConfigError {
                path: join(path, key),
                message: format!("expected \"provider,model\", got {t:?}"),
            }),
        }
    };
    let section = RouterSection {
        default: target("default", raw.default)?,
        background: target("background", raw.background)?,
        think: target("think", raw.think)?,
        long_context: target("longContext", raw.long_context)?,
        long_context_threshold: raw
            .long_context_threshold
            .unwrap_or(DEFAULT_LONG_CONTEXT_THRESHOLD),
        web_search: target("webSearch", raw.web_search)?,
        image: target("image", raw.image)?,
    };
    let warnings = v
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
        .filter(|k| !KEYS.contains(&k.as_str()))
        .map(|k| format!("unknown key {} (ignored)", join(path, k)))
        .collect();
    Ok((section, warnings))
}

impl RouterSection {
    /// Every configured `(key, target)`, e.g. to check the providers exist.
    pub fn targets(&self) -> Vec<(&'static str, &RouteTarget)> {
        [
            ("default", &self.default),
            ("background", &self.background),
            ("think", &self.think),
            ("longContext", &self.long_context),
            ("webSearch", &self.web_search),
            ("image", &self.image),
        ]
        .into_iter()
        .filter_map(|(k, t)| t.as_ref().map(|t| (k, t)))
        .collect()
    }
}

fn join(path: &str, key: &str) -> String {
    match (path.is_empty(), key.is_empty() || key == ".") {
        (_, true) => path.to_owned(),
        (true, false) => key.to_owned(),
        (false, false) => format!("{path}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_targets_defaults_and_warnings() {
        let (r, w) = parse(
            &json!({"default": "a,m", "background": "", "think": "b,t", "longContext": "c,l",
                    "webSearch": null, "image": "d,i,2", "extra": 1}),
            "Router",
        )
        .unwrap();
        assert_eq!(r.default, RouteTarget::parse("a,m"));
        assert_eq!(r.background, None);
        assert_eq!(r.web_search, None);
        assert_eq!(r.image.as_ref().map(|t| t.model.as_str()), Some("i,2"));
        assert_eq!(r.long_context_threshold, 60_000);
        assert_eq!(w, ["unknown key Router.extra (ignored)"]);
        assert_eq!(r.targets().len(), 4);
        let (r, _) = parse(&json!({"longContextThreshold": 1000}), "Router").unwrap();
        assert_eq!(r.long_context_threshold, 1000);
    }

    #[test]
    fn bad_values_name_their_path() {
        let e = parse(&json!({"think": "nocomma"}), "Router").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Router.think: expected \"provider,model\", got \"nocomma\""
        );
        let e = parse(&json!({"longContextThreshold": "big"}), "Router").unwrap_err();
        assert_eq!(e.path, "Router.longContextThreshold");
        assert!(e.message.contains("invalid type"), "{e}");
        let e = parse(&json!({"webSearch": 3}), "Router").unwrap_err();
        assert_eq!(e.path, "Router.webSearch");
    }
}
