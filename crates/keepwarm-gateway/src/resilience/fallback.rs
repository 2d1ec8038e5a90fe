//! The order in which targets are tried for one request: the routed
//! target first, then the scenario's fallback chain, each target once.
//! Fallbacks taken are counted per scenario-independent `from → to` pair by
//! the caller; this module only decides the order.

use super::config::Fallbacks;
use crate::config::RouteTarget;

/// The routed `primary` followed by the chain for `scenario` (see
/// [`Fallbacks::chain`]), without repeating a `provider,model` pair already
/// in the list (provider names compared case-insensitively).
pub fn targets(
    primary: RouteTarget,
    scenario: Option<&str>,
    fallbacks: &Fallbacks,
) -> Vec<RouteTarget> {
    let mut out = vec![primary];
    for t in fallbacks.chain(scenario) {
        let seen = out
            .iter()
            .any(|o| o.provider.eq_ignore_ascii_case(&t.provider) && o.model == t.model);
        if !seen {
            out.push(t.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resilience::config::fallback;

    #[test]
    fn primary_first_then_the_chain_without_repeats() {
        let f = fallback::parse(
            &json!({"default": ["a,m1", "b,m2", "a,m3"], "think": ["c,m4"]}),
            "fallback",
            &["a", "b", "c"],
        )
        .unwrap();
        let t = |p: &str, m: &str| RouteTarget {
            provider: p.into(),
            model: m.into(),
        };
        let names = |v: Vec<RouteTarget>| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(targets(t("A", "m1"), None, &f)),
            ["A,m1", "b,m2", "a,m3"]
        );
        assert_eq!(
            names(targets(t("a", "m1"), Some("think"), &f)),
            ["a,m1", "c,m4"]
        );
        assert_eq!(
            names(targets(t("x", "y"), None, &Fallbacks::default())),
            ["x,y"]
        );
    }
}
