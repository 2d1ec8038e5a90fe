//! `ApiError`: every error the gateway answers with, in the caller's API
//! shape (Anthropic or OpenAI), with a clear message and never a secret or
//! a stack trace.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::json;

/// Which API's error shape to answer in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `{"type":"error","error":{"type":…,"message":…}}`
    Anthropic,
    /// `{"error":{"message":…,"type":…,"code":…}}`
    OpenAi,
    /// The management API's `{"success": false, "error": …}`.
    Management,
}

impl Shape {
    /// The shape for a request path: OpenAI for `/v1/chat/completions`,
    /// Anthropic otherwise.
    pub fn for_path(path: &str) -> Shape {
        if path.starts_with("/v1/chat/") {
            Shape::OpenAi
        } else if path.starts_with("/api/") || path == "/metrics" {
            Shape::Management
        } else {
            Shape::Anthropic
        }
    }
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Anthropic-style error type, e.g. `invalid_request_error`.
    pub kind: &'static str,
    /// OpenAI-style machine code, e.g. `model_not_found`.
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// The shape to answer in.
    pub shape: Shape,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        ApiError {
            status,
            kind,
            code,
            message,
            shape: Shape::Anthropic,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message.into(),
        )
    }

    /// 401 `authentication_error`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            "missing or invalid API key: send the gateway's APIKEY as x-api-key or Authorization: Bearer".into(),
        )
    }

    /// 404 `not_found_error`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "not_found",
            message.into(),
        )
    }

    /// 413 `request_too_large`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            "request_too_large",
            format!("request body is larger than the gateway's limit of {limit} bytes (BODY_LIMIT_BYTES)"),
        )
    }

    /// 408: the caller's request body paused longer than `which` allows
    /// (`BODY_READ_TIMEOUT_MS` between bytes, `API_TIMEOUT_MS` in total).
    /// The connection is closed after this answer.
    pub fn body_timeout(which: &str, limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout_error",
            "request_timeout",
            format!(
                "the request body did not arrive in time: {which} is {} ms",
                limit.as_millis()
            ),
        )
    }

    /// 502 or 504 for a failed upstream exchange, naming the provider and cause.
    pub fn upstream(provider: &str, err: &keepwarm::Error) -> Self {
        if err.is_timeout() || err.is_pool_exhausted() {
            Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout_error",
                "upstream_timeout",
                format!("provider {provider}: {err}"),
            )
        } else {
            Self::new(
                StatusCode::BAD_GATEWAY,
                "api_error",
                "upstream_error",
                format!("provider {provider}: {err}"),
            )
        }
    }

    /// The same error in `shape`.
    pub fn shaped(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        match self.shape {
            Shape::Anthropic => json!({
                "type": "error",
                "error": { "type": self.kind, "message": self.message }
            }),
            Shape::OpenAi => json!({
                "error": { "message": self.message, "type": self.kind, "code": self.code }
            }),
            Shape::Management => json!({ "success": false, "error": self.message }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come: do not read it as the
            // next request.
            r.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes() {
        let e = ApiError::bad_request("model_not_found", "unknown model x");
        assert_eq!(
            e.body(),
            json!({"type":"error","error":{"type":"invalid_request_error","message":"unknown model x"}})
        );
        let e = e.shaped(Shape::OpenAi);
        assert_eq!(
            e.body(),
            json!({"error":{"message":"unknown model x","type":"invalid_request_error","code":"model_not_found"}})
        );
        assert_eq!(Shape::for_path("/v1/chat/completions"), Shape::OpenAi);
        assert_eq!(Shape::for_path("/v1/messages"), Shape::Anthropic);
    }
}
