//! Provider error bodies in the caller's shape, status unchanged.
//!
//! An OpenAI-format error (`{"error": {"message", "type", "code"}}`) becomes
//! Anthropic's `{"type": "error", "error": {"type", "message"}}` and back.
//! The Anthropic error type follows the status (400 invalid_request_error,
//! 401 authentication_error, 403 permission_error, 404 not_found_error,
//! 413 request_too_large, 429 rate_limit_error, 529 overloaded_error,
//! other 5xx api_error). Messages start with the provider's name; a body
//! that is not JSON is quoted (its first 200 characters).

use serde_json::{json, Value};

use super::str_of;

/// The Anthropic error type for an HTTP status.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

fn message_of(body: &[u8], status: u16, provider: &str) -> (String, Option<Value>) {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let e = v.get("error").unwrap_or(&v);
            let msg = str_of(e.get("message")).map_or_else(|| e.to_string(), str::to_owned);
            (
                format!("provider {provider} answered {status}: {msg}"),
                Some(e.clone()),
            )
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let short: String = text.chars().take(200).collect();
            (
                format!("provider {provider} answered {status}: {short:?}"),
                None,
            )
        }
    }
}

/// An OpenAI-format provider's error body → an Anthropic error body.
pub fn to_anthropic(status: u16, body: &[u8], provider: &str) -> Value {
    let (message, _) = message_of(body, status, provider);
    json!({"type": "error", "error": {"type": anthropic_error_type(status), "message": message}})
}

/// An Anthropic provider's error body → an OpenAI error body (the
/// Anthropic error type kept as `type`).
pub fn to_openai(status: u16, body: &[u8], provider: &str) -> Value {
    let (message, e) = message_of(body, status, provider);
    let ty = e
        .as_ref()
        .and_then(|e| str_of(e.get("type")))
        .unwrap_or(anthropic_error_type(status))
        .to_owned();
    json!({"error": {"message": message, "type": ty, "param": null, "code": null}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ways() {
        let body = br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            to_anthropic(429, body, "groq"),
            json!({"type": "error", "error": {"type": "rate_limit_error",
                "message": "provider groq answered 429: Rate limit reached"}})
        );
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            to_openai(529, body, "anthropic"),
            json!({"error": {"message": "provider anthropic answered 529: Overloaded",
                "type": "overloaded_error", "param": null, "code": null}})
        );
        let e = to_anthropic(502, b"<html>bad gateway</html>", "p");
        assert_eq!(e["error"]["type"], "api_error");
        assert_eq!(
            e["error"]["message"],
            "provider p answered 502: \"<html>bad gateway</html>\""
        );
        for (s, t) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (500, "api_error"),
        ] {
            assert_eq!(anthropic_error_type(s), t);
        }
        let o = to_openai(401, b"{}", "a");
        assert_eq!(o["error"]["type"], "authentication_error");
    }
}
