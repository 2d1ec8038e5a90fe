//! claude-code-router's routing scenarios, pure: which `Router` target a
//! request goes to, and why.
//!
//! Precedence (CCR's): an explicit `"provider,model"` in the request
//! first; then `image` (CCR's image agent rewrites the model before its
//! router runs, so it sits right after explicit); `longContext` when the
//! request counts more than `longContextThreshold` tokens (counted only
//! when `longContext` is set); the `<CCR-SUBAGENT-MODEL>provider,model</CCR-SUBAGENT-MODEL>`
//! tag in the system prompt (removed from the prompt before forwarding);
//! `background` for `claude-3-5-haiku*` models (and `claude-haiku-*`,
//! Claude Code's newer small model); `think` when `thinking` is enabled;
//! `webSearch` when a `web_search*` tool is offered; else `default`.
//!
//! CCR also checks the previous turn's usage of the same session for long
//! context; keepwarm keeps no per-session state and counts this request only.

use serde_json::Value;

use crate::config::scenarios::RouterSection;
use crate::config::RouteTarget;

const TAG_OPEN: &str = "<CCR-SUBAGENT-MODEL>";
const TAG_CLOSE: &str = "</CCR-SUBAGENT-MODEL>";

/// The scenario a request was routed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// The request named `"provider,model"`.
    Explicit,
    /// `Router.image`.
    Image,
    /// `Router.longContext`.
    LongContext,
    /// The `<CCR-SUBAGENT-MODEL>` tag.
    Subagent,
    /// `Router.background`.
    Background,
    /// `Router.think`.
    Think,
    /// `Router.webSearch`.
    WebSearch,
    /// `Router.default`, or the bare model's own provider.
    Default,
}

impl Scenario {
    /// Every scenario, e.g. to pre-register metrics; in declaration order,
    /// so `ALL[s as usize] == s`.
    pub const ALL: [Scenario; 8] = [
        Scenario::Explicit,
        Scenario::Image,
        Scenario::LongContext,
        Scenario::Subagent,
        Scenario::Background,
        Scenario::Think,
        Scenario::WebSearch,
        Scenario::Default,
    ];

    /// The name used in `x-keepwarm-route`, logs and metrics (CCR's key names).
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Explicit => "explicit",
            Scenario::Image => "image",
            Scenario::LongContext => "longContext",
            Scenario::Subagent => "subagent",
            Scenario::Background => "background",
            Scenario::Think => "think",
            Scenario::WebSearch => "webSearch",
            Scenario::Default => "default",
        }
    }
}

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Why.
    pub scenario: Scenario,
    /// The target; `None` routes by the request's own `model` (explicit,
    /// or a bare model with no `Router.default`).
    pub target: Option<RouteTarget>,
}

/// Picks the scenario for an Anthropic-shape request `body` (the subagent
/// tag is removed from it). `count` is called only when `longContext` is
/// configured (see [`crate::tokens::count_request`]).
pub fn decide(
    body: &mut Value,
    router: &RouterSection,
    count: impl FnOnce(&Value) -> u64,
) -> Decision {
    let pick = |scenario, target: &Option<RouteTarget>| Decision {
        scenario,
        target: target.clone(),
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if model.contains(',') {
        return pick(Scenario::Explicit, &None);
    }
    if router.image.is_some() && last_user_has_image(body) {
        return pick(Scenario::Image, &router.image);
    }
    if router.long_context.is_some() && count(body) > router.long_context_threshold {
        return pick(Scenario::LongContext, &router.long_context);
    }
    if let Some(t) = take_subagent_tag(body) {
        if let Some(target) = RouteTarget::parse(t.trim()) {
            return Decision {
                scenario: Scenario::Subagent,
                target: Some(target),
            };
        }
    }
    if router.background.is_some()
        && (model.starts_with("claude-3-5-haiku") || model.starts_with("claude-haiku-"))
    {
        return pick(Scenario::Background, &router.background);
    }
    if router.think.is_some() && thinking_on(body) {
        return pick(Scenario::Think, &router.think);
    }
    if router.web_search.is_some() && offers_web_search(body) {
        return pick(Scenario::WebSearch, &router.web_search);
    }
    pick(Scenario::Default, &router.default)
}

fn last_user_has_image(body: &Value) -> bool {
    let last = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last());
    last.is_some_and(|m| {
        m.get("role").and_then(Value::as_str) == Some("user")
            && m.get("content").and_then(Value::as_array).is_some_and(|c| {
                c.iter().any(|b| {
                    matches!(
                        b.get("type").and_then(Value::as_str),
                        Some("image" | "image_url")
                    )
                })
            })
    })
}

fn thinking_on(body: &Value) -> bool {
    match body.get("thinking") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(t) => t.get("type").and_then(Value::as_str) != Some("disabled"),
    }
}

fn offers_web_search(body: &Value) -> bool {
    body.get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| {
            tools.iter().any(|t| {
                t.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|ty| ty.starts_with("web_search"))
            })
        })
}

/// Removes the first `<CCR-SUBAGENT-MODEL>…</CCR-SUBAGENT-MODEL>` from the
/// system prompt (a string or text blocks) and returns what it held.
fn take_subagent_tag(body: &mut Value) -> Option<String> {
    let system = body.get_mut("system")?;
    let texts: Vec<&mut Value> = match system {
        Value::String(_) => vec![system],
        Value::Array(blocks) => blocks
            .iter_mut()
            .filter_map(|b| b.get_mut("text"))
            .collect(),
        _ => return None,
    };
    for t in texts {
        let Some(s) = t.as_str() else { continue };
        let Some(start) = s.find(TAG_OPEN) else {
            continue;
        };
        let inner_from = start + TAG_OPEN.len();
        let Some(len) = s[inner_from..].find(TAG_CLOSE) else {
            continue;
        };
        let inner = s[inner_from..inner_from + len].to_owned();
        let rest = format!(
            "{}{}",
            &s[..start],
            &s[inner_from + len + TAG_CLOSE.len()..]
        );
        *t = Value::String(rest);
        return Some(inner);
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_is_in_declaration_order() {
        for (i, s) in super::Scenario::ALL.into_iter().enumerate() {
            assert_eq!(s as usize, i, "{s:?}");
        }
    }

    use super::*;
    use crate::config::scenarios::parse;
    use serde_json::json;

    fn all() -> RouterSection {
        parse(
            &json!({"default": "d,def", "background": "b,bg", "think": "t,th", "longContext": "l,long",
                    "longContextThreshold": 100, "webSearch": "w,web", "image": "i,img"}),
            "Router",
        )
        .unwrap()
        .0
    }

    fn route(
        body: Value,
        router: &RouterSection,
        tokens: u64,
    ) -> (Scenario, Option<String>, Value) {
        let mut body = body;
        let d = decide(&mut body, router, |_| tokens);
        (d.scenario, d.target.map(|t| t.to_string()), body)
    }

    #[test]
    fn each_scenario() {
        let r = all();
        let img = json!([{"role": "user", "content": [{"type": "image", "source": {}}]}]);
        let cases = [
            (
                json!({"model": "x,y", "thinking": {"type": "enabled"}}),
                1000,
                Scenario::Explicit,
                None,
            ),
            (
                json!({"model": "claude-sonnet-4", "messages": img}),
                1000,
                Scenario::Image,
                Some("i,img"),
            ),
            (
                json!({"model": "claude-sonnet-4"}),
                101,
                Scenario::LongContext,
                Some("l,long"),
            ),
            (
                json!({"model": "claude-3-5-haiku-20241022", "thinking": {"type": "enabled"}}),
                100,
                Scenario::Background,
                Some("b,bg"),
            ),
            (
                json!({"model": "claude-haiku-4-5"}),
                0,
                Scenario::Background,
                Some("b,bg"),
            ),
            (
                json!({"model": "claude-opus-4", "thinking": {"type": "enabled", "budget_tokens": 2000}}),
                0,
                Scenario::Think,
                Some("t,th"),
            ),
            (
                json!({"model": "claude-opus-4", "thinking": {"type": "disabled"}}),
                0,
                Scenario::Default,
                Some("d,def"),
            ),
            (
                json!({"model": "m", "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
                0,
                Scenario::WebSearch,
                Some("w,web"),
            ),
            (
                json!({"model": "m", "tools": [{"name": "get", "input_schema": {}}]}),
                0,
                Scenario::Default,
                Some("d,def"),
            ),
        ];
        for (body, tokens, scenario, target) in cases {
            let (s, t, _) = route(body.clone(), &r, tokens);
            assert_eq!((s, t.as_deref()), (scenario, target), "{body}");
        }
    }

    #[test]
    fn subagent_tag_is_taken_out_and_outranks_background() {
        let r = all();
        let body = json!({"model": "claude-3-5-haiku", "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "<CCR-SUBAGENT-MODEL>sub,model-x</CCR-SUBAGENT-MODEL>Do the task."}
        ]});
        let (s, t, body) = route(body, &r, 0);
        assert_eq!((s, t.as_deref()), (Scenario::Subagent, Some("sub,model-x")));
        assert_eq!(body["system"][1]["text"], "Do the task.");
        assert_eq!(body["system"][0]["text"], "You are Claude Code.");
        let (s, _, body) = route(
            json!({"model": "m", "system": "a<CCR-SUBAGENT-MODEL>p,q</CCR-SUBAGENT-MODEL>b"}),
            &r,
            0,
        );
        assert_eq!(
            (s, body["system"].as_str()),
            (Scenario::Subagent, Some("ab"))
        );
        // Long context outranks the tag (and leaves it in place).
        let (s, _, body) = route(
            json!({"model": "m", "system": "<CCR-SUBAGENT-MODEL>p,q</CCR-SUBAGENT-MODEL>"}),
            &r,
            500,
        );
        assert_eq!(s, Scenario::LongContext);
        assert!(body["system"].as_str().unwrap().contains("CCR-SUBAGENT"));
    }

    #[test]
    fn unset_targets_fall_through_and_count_is_lazy() {
        let r = RouterSection::default();
        let mut body = json!({"model": "claude-3-5-haiku", "thinking": {"type": "enabled"}});
        let d = decide(&mut body, &r, |_| panic!("counted without longContext"));
        assert_eq!(
            d,
            Decision {
                scenario: Scenario::Default,
                target: None
            }
        );
        assert_eq!(Scenario::ALL.map(Scenario::as_str).len(), 8);
        assert_eq!(Scenario::LongContext.as_str(), "longContext");
    }
}
