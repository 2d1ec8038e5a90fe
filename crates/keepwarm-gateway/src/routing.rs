//! Picks the provider and upstream model for a request's `"model"` field:
//! `"provider,model"` (split at the first comma, provider matched
//! case-insensitively); a bare model goes to `Router.default` when set (its
//! model replaces the bare one, as in claude-code-router), else to the one
//! provider that lists it.

use crate::config::{Config, ProviderConfig};
use crate::error::ApiError;

/// Where a request goes.
#[derive(Debug)]
pub struct Route<'a> {
    /// The provider.
    pub provider: &'a ProviderConfig,
    /// The model sent upstream (without the provider prefix).
    pub model: String,
}

fn known(config: &Config) -> String {
    let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
    if names.is_empty() {
        "none are configured".into()
    } else {
        format!("configured: {}", names.join(", "))
    }
}

fn provider<'a>(config: &'a Config, name: &str) -> Result<&'a ProviderConfig, ApiError> {
    config.provider(name).ok_or_else(|| {
        ApiError::bad_request(
            "provider_not_found",
            format!("unknown provider \"{name}\" ({})", known(config)),
        )
    })
}

/// Resolves `model` to a provider and upstream model.
pub fn route<'a>(config: &'a Config, model: &str) -> Result<Route<'a>, ApiError> {
    if let Some((p, m)) = model.split_once(',') {
        let (p, m) = (p.trim(), m.trim());
        if m.is_empty() {
            return Err(ApiError::bad_request(
                "model_not_found",
                format!("model \"{model}\" names provider \"{p}\" but no model after the comma"),
            ));
        }
        return Ok(Route {
            provider: provider(config, p)?,
            model: m.to_string(),
        });
    }
    if let Some(d) = &config.router_default {
        return Ok(Route {
            provider: provider(config, &d.provider)?,
            model: d.model.clone(),
        });
    }
    let listing: Vec<&ProviderConfig> = config
        .providers
        .iter()
        .filter(|p| p.models.iter().any(|m| m == model))
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
                known(config)
            ),
        )),
        many => Err(ApiError::bad_request(
            "model_not_found",
            format!(
                "model \"{model}\" is listed by several providers ({}); use \"provider,model\"",
                many.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}
