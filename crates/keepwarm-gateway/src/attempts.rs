//! Sends one caller request upstream through the resilience layer:
//! for each target (the routed one, then the scenario's fallback chain) —
//! circuit breaker check, API key pick, the attempt under the request's
//! overall deadline, and retries with backoff. It returns the first answer
//! worth relaying (or the last failure); nothing has been relayed to the
//! caller before it returns, so a retry can never follow a relayed byte.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use keepwarm::ResponseBody;
use tokio::time::Instant;

use crate::bridge::Bridge;
use crate::config::{ApiKind, RouteTarget};
use crate::error::{ApiError, Shape};
use crate::registry::{Provider, Registry};
use crate::resilience::{
    fallback, retry_after, Decision, KeyLease, NoKey, Outcome, ProviderGuards, RetryReason,
};
use crate::state::AppState;

/// Builds the upstream body for a provider and model.
pub(crate) type BodyFor<'a> =
    dyn Fn(&Provider, &str) -> Result<(Bytes, Option<Bridge>), ApiError> + Sync + 'a;

/// What every attempt needs from the caller's request.
pub(crate) struct Request<'a> {
    pub(crate) parts: &'a http::request::Parts,
    /// The API the caller speaks.
    pub(crate) api: ApiKind,
    /// The path suffix (`/count_tokens` or empty).
    pub(crate) suffix: &'static str,
    /// The routing scenario, for the fallback chain (`None` = default).
    pub(crate) scenario: Option<&'a str>,
    /// Whether a target speaking the other API can take it (translated).
    pub(crate) cross_api: bool,
    /// The upstream body for a provider and model (translated and
    /// transformed as needed), and how to translate the answer back.
    pub(crate) body: &'a BodyFor<'a>,
}

/// The answer to relay.
pub(crate) struct Served<'r> {
    pub(crate) provider: &'r Provider,
    pub(crate) model: String,
    pub(crate) response: http::Response<ResponseBody>,
    /// The key used, held until the body ends.
    pub(crate) lease: Option<KeyLease>,
    /// Upstream attempts made for this request, over all targets.
    pub(crate) attempts: u32,
    /// When the attempt that produced `response` was sent.
    pub(crate) sent: std::time::Instant,
    /// The `x-keepwarm-route` value: `<scenario> provider,model`.
    pub(crate) route: String,
    /// How to translate the answer back, when the provider speaks the
    /// other API.
    pub(crate) bridge: Option<Bridge>,
}

/// Why a target gave no answer to relay.
enum Failure<'r> {
    /// An upstream answer that was not good enough (relayed if nothing
    /// better comes).
    Answer(Box<Served<'r>>),
    /// Nothing to relay: this error.
    Error(ApiError),
}

fn outcome_of(e: &keepwarm::Error) -> Outcome {
    if e.is_connect() || e.is_tls() {
        Outcome::Connect
    } else if e.is_timeout() {
        Outcome::Timeout
    } else {
        Outcome::Transport
    }
}

fn unavailable(code: &'static str, message: String) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "overloaded_error",
        code,
        message,
        shape: Shape::Anthropic,
    }
}

fn deadline_passed(provider: &str) -> ApiError {
    ApiError {
        status: StatusCode::GATEWAY_TIMEOUT,
        kind: "timeout_error",
        code: "upstream_timeout",
        message: format!(
            "provider {provider}: waiting for response headers from {provider} outlasted the request's deadline (API_TIMEOUT_MS)"
        ),
        shape: Shape::Anthropic,
    }
}

fn breaker_open(provider: &str, reopens_in: Option<Duration>) -> ApiError {
    let when = match reopens_in {
        Some(d) => format!(
            "it lets a probe request through in {:.1} s",
            d.as_secs_f64()
        ),
        None => "a probe request is in flight now".to_owned(),
    };
    unavailable(
        "circuit_open",
        format!("provider {provider} is unavailable: its circuit breaker is open after repeated failures (CircuitBreaker); {when}"),
    )
}

fn no_key(provider: &str, why: NoKey) -> ApiError {
    match why {
        NoKey::AllCooling(d) => ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limit_error",
            code: "rate_limited",
            message: format!(
                "provider {provider}: every API key is rate limited (429); the first is usable again in {:.1} s",
                d.as_secs_f64()
            ),
            shape: Shape::Anthropic,
        },
        NoKey::AllDisabled => unavailable(
            "no_usable_key",
            format!("provider {provider}: every API key was refused (401/403) and is disabled until the config is reloaded"),
        ),
    }
}

/// The upstream request for `provider` and `model`: the provider's own
/// (sensitive) auth header, replaced by `lease`'s key when it has a key
/// pool. Sent under the provider's pool label in the one client.
fn build(
    req: &Request<'_>,
    provider: &Provider,
    model: &str,
    lease: Option<&KeyLease>,
) -> Result<(http::Request<Bytes>, Option<Bridge>), ApiError> {
    let (body, bridge) = (req.body)(provider, model)?;
    let uri = crate::proxy::upstream_uri(provider.base(), req.suffix, req.parts.uri.query())?;
    let mut up = http::Request::new(body);
    *up.method_mut() = Method::POST;
    *up.uri_mut() = uri;
    *up.headers_mut() = crate::headers::upstream_request(&req.parts.headers, provider);
    if let Some(lease) = lease {
        let key = lease.secret().expose();
        let (name, value) = match provider.api() {
            ApiKind::Anthropic => ("x-api-key", key.to_owned()),
            ApiKind::OpenAi => ("authorization", format!("Bearer {key}")),
        };
        let mut value = HeaderValue::try_from(value).map_err(|_| {
            unavailable(
                "invalid_key",
                format!(
                    "provider {}: API key {} cannot be sent in a header",
                    provider.name,
                    lease.redacted()
                ),
            )
        })?;
        value.set_sensitive(true);
        up.headers_mut().insert(name, value);
    }
    // The pool label goes with the call (`request_in`), not as an extension.
    Ok((up, bridge))
}

/// Tries `first`, then the fallback chain, until an answer is worth
/// relaying. `deadline` bounds everything, backoff waits included.
/// Targets are looked up in `reg`, the registry the request started with;
/// every attempt goes through the one client of `st`.
pub(crate) async fn send<'r>(
    st: &AppState,
    reg: &'r Registry,
    req: &Request<'_>,
    first: RouteTarget,
    deadline: Instant,
) -> Result<Served<'r>, ApiError> {
    let res = reg.resilience();
    let scenario = req.scenario.unwrap_or("default");
    let targets = fallback::targets(first, req.scenario, res.fallbacks());
    let mut attempts = 0u32;
    let mut last: Option<Failure<'r>> = None;
    let mut previous: Option<&'r Provider> = None;
    let mut skipped: Vec<String> = Vec::new();
    for target in &targets {
        let Some(provider) = reg.get(&target.provider) else {
            continue;
        };
        if provider.api() != req.api && !req.cross_api {
            if previous.is_some() {
                tracing::warn!(from = previous.map(|p| &*p.name), to = %target, "fallback target skipped: it speaks another API and translation is not available");
                skipped.push(format!("{target} ({} API)", provider.api().as_str()));
                continue;
            }
            let right = match provider.api() {
                ApiKind::Anthropic => "/v1/messages",
                ApiKind::OpenAi => "/v1/chat/completions",
            };
            return Err(ApiError::bad_request(
                "wrong_api",
                format!(
                    "provider \"{}\" speaks the {} API; send this request to {right}",
                    provider.name,
                    provider.api().as_str()
                ),
            ));
        }
        let Some(guards) = res.get(&provider.name) else {
            continue;
        };
        if let Some(from) = previous {
            res.count_fallback(&from.name, &provider.name);
            tracing::warn!(from = &*from.name, to = %target, scenario, "falling back to the next target");
        }
        previous = Some(provider);
        let route = format!("{scenario} {},{}", provider.name, target.model);
        match try_target(
            st,
            req,
            provider,
            guards,
            target,
            deadline,
            &mut attempts,
            route,
        )
        .await
        {
            Ok(served) => return Ok(served),
            Err(f) => last = Some(f),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    match last {
        Some(Failure::Answer(mut served)) => {
            served.attempts = attempts;
            Ok(*served)
        }
        Some(Failure::Error(mut e)) => {
            if !skipped.is_empty() {
                e.message = format!(
                    "{}; fallback skipped, it speaks the other API: {}",
                    e.message,
                    skipped.join(", ")
                );
            }
            Err(e)
        }
        None => Err(unavailable(
            "no_target",
            "no provider could take the request".to_owned(),
        )),
    }
}

/// One target with its retries.
#[allow(clippy::too_many_arguments)]
async fn try_target<'r>(
    st: &AppState,
    req: &Request<'_>,
    provider: &'r Provider,
    guards: &ProviderGuards,
    target: &RouteTarget,
    deadline: Instant,
    attempts: &mut u32,
    route: String,
) -> Result<Served<'r>, Failure<'r>> {
    let mut done = 0u32;
    loop {
        if deadline <= Instant::now() {
            // Out of time before trying: not this provider's failure.
            return Err(Failure::Error(deadline_passed(&provider.name)));
        }
        let permit = guards
            .breaker
            .admit(Instant::now())
            .map_err(|r| Failure::Error(breaker_open(&provider.name, r.reopens_in)))?;
        let lease = match &guards.keys {
            None => None,
            Some(pool) => Some(
                pool.pick(Instant::now())
                    .map_err(|why| Failure::Error(no_key(&provider.name, why)))?,
            ),
        };
        let (up, bridge) =
            build(req, provider, &target.model, lease.as_ref()).map_err(Failure::Error)?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let sent = std::time::Instant::now();
        *attempts += 1;
        done += 1;
        let result = match tokio::time::timeout(
            remaining,
            st.client().request_in(Some(&provider.label), up),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                permit.record(Outcome::Timeout, Instant::now());
                return Err(Failure::Error(deadline_passed(&provider.name)));
            }
        };
        let now = Instant::now();
        let (outcome, hint) = match &result {
            Ok(r) => (
                Outcome::Status(r.status()),
                retry_after(r.headers(), SystemTime::now()),
            ),
            Err(e) if e.is_pool_exhausted() => {
                drop(permit); // our own limit, not the provider's failure
                return Err(Failure::Error(ApiError::upstream(&provider.name, e)));
            }
            Err(e) => (outcome_of(e), None),
        };
        permit.record(outcome, now);
        if let (Some(lease), Outcome::Status(s)) = (&lease, outcome) {
            match s.as_u16() {
                429 => lease.rate_limited(hint, now),
                401 | 403 => lease.refused(s.as_u16()),
                _ => {}
            }
        }
        let failure = match result {
            Ok(response) => {
                let served = Served {
                    provider,
                    model: target.model.clone(),
                    response,
                    lease,
                    attempts: *attempts,
                    sent,
                    route: route.clone(),
                    bridge,
                };
                if RetryReason::of(outcome).is_none() && !outcome.is_breaker_failure() {
                    return Ok(served);
                }
                Failure::Answer(Box::new(served))
            }
            Err(e) => Failure::Error(ApiError::upstream(&provider.name, &e)),
        };
        let remaining = deadline.saturating_duration_since(now);
        let decision = guards
            .retry
            .next(done, outcome, hint, remaining, &mut rand::rng());
        let Decision::Retry { reason, delay } = decision else {
            return Err(failure);
        };
        drop(failure); // an answer we will not relay: its connection closes
        guards.retries.count(reason);
        // Another key may take a rate-limited request at once.
        let other_key = reason == RetryReason::RateLimited
            && guards.keys.as_ref().is_some_and(|k| k.available(now));
        let delay = if other_key { Duration::ZERO } else { delay };
        tracing::info!(
            provider = &*provider.name,
            reason = reason.label(),
            delay_ms = delay.as_millis() as u64,
            attempt = done + 1,
            "retrying upstream request"
        );
        tokio::time::sleep(delay).await;
    }
}
