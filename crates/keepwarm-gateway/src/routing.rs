//! Picks the provider and upstream model for a request's `"model"` field:
//! `"provider,model"` (split at the first comma, provider matched
//! case-insensitively); a bare model goes to `Router.default` when set (its
//! model replaces the bare one, as in claude-code-router), else to the one
//! provider that lists it.

use crate::error::ApiError;
use crate::registry::{Provider, Registry};

/// Where a request goes.
#[derive(Debug)]
pub struct Route<'a> {
    /// The provider.
    pub provider: &'a Provider,
    /// The model sent upstream (without the provider prefix).
    pub model: String,
}

fn provider<'a>(reg: &'a Registry, name: &str) -> Result<&'a Provider, ApiError> {
    reg.get(name).ok_or_else(|| {
        ApiError::bad_request(
            "provider_not_found",
            format!("unknown provider \"{name}\" ({})", reg.known()),
        )
    })
}

/// Resolves `model` to a provider and upstream model.
pub fn route<'a>(reg: &'a Registry, model: &str) -> Result<Route<'a>, ApiError> {
    if let Some((p, m)) = model.split_once(',') {
        let (p, m) = (p.trim(), m.trim());
        if m.is_empty() {
            return Err(ApiError::bad_request(
                "model_not_found",
                format!("model \"{model}\" names provider \"{p}\" but no model after the comma"),
            ));
        }
        return Ok(Route {
            provider: provider(reg, p)?,
            model: m.to_string(),
        });
    }
    if let Some(d) = &reg.config().router_default {
        return Ok(Route {
            provider: provider(reg, &d.provider)?,
            model: d.model.clone(),
        });
    }
    let listing: Vec<&Provider> = (reg.providers().iter())
        .filter(|p| p.config.models.iter().any(|m| m == model))
        .collect();
    match listing.as_slice() {
        [one] => Ok(Route {
            provider: one,
            model: model.to_string(),
        }),
        [] => Err(ApiError::bad_request(
            "model_not_found",
            format!(
                "unknown model \"{model}\": no provider lists it and Router.default is not set; use \"provider,model\" ({})",
                reg.known()
            ),
        )),
        many => Err(ApiError::bad_request(
            "model_not_found",
            format!(
                "model \"{model}\" is listed by several providers ({}); use \"provider,model\"",
                many.iter().map(|p| &*p.name).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}
