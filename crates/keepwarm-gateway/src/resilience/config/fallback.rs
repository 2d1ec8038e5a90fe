//! The `fallback` section, claude-code-router's shape:
//! `{"default": ["p2,m2", "p3,m3"], "think": ["p4,m4"]}` — per routing
//! scenario, the targets tried in order when the chosen provider fails
//! after its retries or its breaker is open.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error;
use crate::config::{ConfigError, RouteTarget};

/// Fallback chains by scenario name. Default: none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fallbacks {
    chains: BTreeMap<String, Vec<RouteTarget>>,
}

impl Fallbacks {
    /// The chain for `scenario` (e.g. `"think"`); a scenario without its
    /// own chain, or no scenario, uses `"default"`. Empty when neither is
    /// configured.
    pub fn chain(&self, scenario: Option<&str>) -> &[RouteTarget] {
        scenario
            .and_then(|s| self.chains.get(s))
            .or_else(|| self.chains.get("default"))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether no chain is configured.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }

    /// Every scenario with a chain, and its chain.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[RouteTarget])> {
        self.chains.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// Reads a `fallback` object found at `path`. `providers` are the
/// configured provider names; a target's provider is matched
/// case-insensitively and written as configured.
pub fn parse(value: &Value, path: &str, providers: &[&str]) -> Result<Fallbacks, ConfigError> {
    let Value::Object(map) = value else {
        return Err(error(
            path,
            "expected an object of scenario: [\"provider,model\", …]",
        ));
    };
    let mut chains = BTreeMap::new();
    for (scenario, list) in map {
        let at = format!("{path}.{scenario}");
        let Value::Array(items) = list else {
            return Err(error(&at, "expected an array of \"provider,model\""));
        };
        let mut chain = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let text = item
                .as_str()
                .ok_or_else(|| error(&at, "expected a \"provider,model\" string"))?;
            let t = RouteTarget::parse(text).ok_or_else(|| {
                error(
                    &at,
                    format!("expected \"provider,model\", got {}", Value::from(text)),
                )
            })?;
            let name = providers
                .iter()
                .find(|p| p.eq_ignore_ascii_case(&t.provider))
                .ok_or_else(|| {
                    error(
                        &at,
                        format!("unknown provider {}", Value::from(t.provider.as_str())),
                    )
                })?;
            chain.push(RouteTarget {
                provider: (*name).to_owned(),
                model: t.model,
            });
        }
        chains.insert(scenario.clone(), chain);
    }
    Ok(Fallbacks { chains })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NAMES: [&str; 3] = ["anthropic", "OpenAI", "deepseek"];

    #[test]
    fn chains_by_scenario_with_default() {
        let v = json!({"default": ["openai,gpt-4o", "deepseek,deepseek-chat"], "think": ["anthropic,claude-opus-4"]});
        let f = parse(&v, "fallback", &NAMES).unwrap();
        let show = |c: &[RouteTarget]| c.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            show(f.chain(None)),
            ["OpenAI,gpt-4o", "deepseek,deepseek-chat"]
        );
        assert_eq!(show(f.chain(Some("think"))), ["anthropic,claude-opus-4"]);
        assert_eq!(
            show(f.chain(Some("background"))),
            show(f.chain(Some("default")))
        );
        let none = parse(&json!({"think": ["deepseek,r1"]}), "fallback", &NAMES).unwrap();
        assert!(none.chain(None).is_empty() && none.chain(Some("think")).len() == 1);
        assert!(Fallbacks::default().chain(Some("think")).is_empty());
    }

    #[test]
    fn errors_name_the_path_and_reason() {
        let e = |v: Value| parse(&v, "fallback", &NAMES).unwrap_err().to_string();
        assert_eq!(
            e(json!({"default": ["nope,m"]})),
            "fallback.default[0]: unknown provider \"nope\""
        );
        assert_eq!(
            e(json!({"default": ["openai,m", "gpt"]})),
            "fallback.default[1]: expected \"provider,model\", got \"gpt\""
        );
        assert_eq!(
            e(json!({"think": "openai,m"})),
            "fallback.think: expected an array of \"provider,model\""
        );
        assert_eq!(
            e(json!({"think": [1]})),
            "fallback.think[0]: expected a \"provider,model\" string"
        );
        assert!(e(json!([])).starts_with("fallback: expected an object"));
    }
}
