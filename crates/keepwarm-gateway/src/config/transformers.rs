//! A provider's `transformer` key (claude-code-router's), as serde structs
//! with a parse function that names the JSON path of a bad value.
//!
//! ```json
//! "transformer": {
//!   "use": ["deepseek", ["maxtoken", {"max_tokens": 16384}]],
//!   "deepseek-chat": {"use": ["tooluse"]}
//! }
//! ```
//! `use` lists names, or `[name, options]` pairs; other keys are model names
//! with their own `use`, applied after the provider's. Names keepwarm does
//! not implement are warnings naming them (see [`crate::transformer`] for
//! the ones it does).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::ConfigError;
use crate::transformer::Transformer;

#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Name(String),
    WithOptions(String, Value),
}

#[derive(Deserialize)]
struct ModelRaw {
    #[serde(rename = "use", default)]
    uses: Vec<Entry>,
}

/// A provider's transformers. Default: none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransformerSection {
    /// `use`: applied to every request to the provider, in order.
    pub provider: Vec<Transformer>,
    /// `<model>.use`: applied after the provider's, for that model.
    pub models: BTreeMap<String, Vec<Transformer>>,
}

impl TransformerSection {
    /// The transformers for `model`: the provider's, then the model's.
    pub fn chain(&self, model: &str) -> Vec<&Transformer> {
        let own = self.models.get(model).into_iter().flatten();
        self.provider.iter().chain(own).collect()
    }
}

fn de<T: for<'de> Deserialize<'de>>(v: &Value, path: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        ConfigError {
            path: match inner.as_str() {
                "." => path.to_owned(),
                i if i.starts_with('[') => format!("{path}{i}"),
                i => format!("{path}.{i}"),
            },
            message: e.inner().to_string(),
        }
    })
}

fn entries(
    list: Vec<Entry>,
    path: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<Transformer>, ConfigError> {
    let mut out = Vec::new();
    for (i, e) in list.into_iter().enumerate() {
        let at = format!("{path}[{i}]");
        let (name, options) = match e {
            Entry::Name(n) => (n, Value::Null),
            Entry::WithOptions(n, o) => (n, o),
        };
        match Transformer::from_config(&name, &options) {
            Ok(Some(t)) => out.push(t),
            Ok(None) => warnings.push(format!(
                "{at}: transformer \"{name}\" is not implemented by keepwarm (ignored)"
            )),
            Err(message) => return Err(ConfigError { path: at, message }),
        }
    }
    Ok(out)
}

/// Parses the `transformer` object at `path` (e.g.
/// `"Providers[0].transformer"`); returns it and warnings for unknown names.
pub fn parse(v: &Value, path: &str) -> Result<(TransformerSection, Vec<String>), ConfigError> {
    let Some(obj) = v.as_object() else {
        return Err(ConfigError {
            path: path.to_owned(),
            message: "expected an object with a \"use\" list".into(),
        });
    };
    let mut warnings = Vec::new();
    let mut section = TransformerSection::default();
    for (key, value) in obj {
        if key == "use" {
            let at = format!("{path}.use");
            let list: Vec<Entry> = de(value, &at)?;
            section.provider = entries(list, &at, &mut warnings)?;
        } else {
            let at = format!("{path}.{key}");
            let raw: ModelRaw = de(value, &at)?;
            let list = entries(raw.uses, &format!("{at}.use"), &mut warnings)?;
            section.models.insert(key.clone(), list);
        }
    }
    Ok((section, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provider_and_model_lists() {
        let (s, w) = parse(
            &json!({"use": ["deepseek", ["maxtoken", {"max_tokens": 100}], "Anthropic"],
                    "deepseek-chat": {"use": ["tooluse", "enhancetool"]}}),
            "Providers[0].transformer",
        )
        .unwrap();
        assert_eq!(
            s.chain("deepseek-chat"),
            [
                &Transformer::Deepseek,
                &Transformer::MaxToken { max_tokens: 100 },
                &Transformer::ToolUse
            ]
        );
        assert_eq!(s.chain("other").len(), 2);
        assert_eq!(
            w,
            [
                "Providers[0].transformer.use[2]: transformer \"Anthropic\" is not implemented by keepwarm (ignored)",
                "Providers[0].transformer.deepseek-chat.use[1]: transformer \"enhancetool\" is not implemented by keepwarm (ignored)",
            ]
        );
    }

    #[test]
    fn bad_values_name_their_path() {
        let p = "Providers[1].transformer";
        let e = parse(&json!({"use": [["maxtoken", {}]]}), p).unwrap_err();
        assert_eq!(e.to_string(), "Providers[1].transformer.use[0]: maxtoken needs options {\"max_tokens\": N} with N ≥ 1");
        let e = parse(&json!({"use": "deepseek"}), p).unwrap_err();
        assert_eq!(e.path, "Providers[1].transformer.use");
        let e = parse(&json!({"m": {"use": [3]}}), p).unwrap_err();
        assert_eq!(e.path, "Providers[1].transformer.m.use[0]");
        let e = parse(&json!([]), p).unwrap_err();
        assert_eq!(e.path, p);
    }
}
