//! The proxy's translation step: when the caller's API differs from the
//! provider's, the request is translated on the way up and the response —
//! JSON, error or stream — on the way down; the provider's transformers
//! (see [`crate::transformer`]) edit the upstream request either way.
//!
//! Streams are translated frame by frame ([`body::TranslatedBody`]); a JSON
//! answer is read (bounded by `BODY_LIMIT_BYTES`) and translated whole, as
//! it must be; an error answer keeps its status and gets the caller's error
//! shape.

pub mod body;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use crate::config::ApiKind;
use crate::error::ApiError;
use crate::transformer::Chain;
use crate::translate::chat_to_messages::chat_to_messages;
use crate::translate::chunks_to_events::{ChunksToEvents, StreamOptions};
use crate::translate::completion_to_message::completion_to_message;
use crate::translate::events_to_chunks::{ChunkOptions, EventsToChunks};
use crate::translate::message_to_completion::message_to_completion;
use crate::translate::messages_to_chat::{messages_to_chat, thinking_budget, ChatOptions};
use crate::translate::{errors, TranslateError};
use body::{StreamTranslator, TranslatedBody};

/// Which way a response is translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// OpenAI-format provider, Anthropic caller.
    ToAnthropic,
    /// Anthropic provider, OpenAI caller.
    ToOpenAi,
}

/// How to translate one response back.
#[derive(Clone, Debug)]
pub struct Bridge {
    /// The direction.
    pub direction: Direction,
    /// The provider's name (in error messages).
    pub provider: String,
    /// The upstream model (reported when the upstream names none).
    pub model: String,
    /// The `tooluse` transformer is on.
    pub exit_tool: bool,
    /// The OpenAI caller asked `stream_options.include_usage`.
    pub include_usage: bool,
}

fn invalid(provider: &str, api: ApiKind, e: TranslateError) -> ApiError {
    ApiError::bad_request(
        "untranslatable_request",
        format!(
            "cannot translate this request for provider \"{provider}\" ({} API): {e}",
            api.as_str()
        ),
    )
}

/// Prepares the upstream request body: translated when `caller` ≠
/// `provider_api`, the model set to `model`, the transformers applied.
/// Returns the body and, when translated, how to translate the response.
pub fn request(
    caller: ApiKind,
    provider_api: ApiKind,
    provider: &str,
    req: &mut Value,
    model: &str,
    chain: &Chain,
) -> Result<(Bytes, Option<Bridge>), ApiError> {
    let budget = match caller {
        ApiKind::Anthropic => thinking_budget(req),
        ApiKind::OpenAi => None,
    };
    let bridge = |direction, include_usage| Bridge {
        direction,
        provider: provider.to_owned(),
        model: model.to_owned(),
        exit_tool: chain.exit_tool(),
        include_usage,
    };
    let (mut up, bridge) = match (caller, provider_api) {
        (ApiKind::Anthropic, ApiKind::OpenAi) => {
            let up = messages_to_chat(req, model, &ChatOptions::default())
                .map_err(|e| invalid(provider, provider_api, e))?;
            (up, Some(bridge(Direction::ToAnthropic, false)))
        }
        (ApiKind::OpenAi, ApiKind::Anthropic) => {
            let usage = req
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true);
            let up =
                chat_to_messages(req, model).map_err(|e| invalid(provider, provider_api, e))?;
            (up, Some(bridge(Direction::ToOpenAi, usage)))
        }
        _ => {
            req["model"] = Value::String(model.to_owned());
            (std::mem::take(req), None)
        }
    };
    chain.apply(&mut up, budget);
    let bytes = serde_json::to_vec(&up).map_err(|e| {
        ApiError::bad_request("invalid_request", format!("cannot encode the request: {e}"))
    })?;
    Ok((Bytes::from(bytes), bridge))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn is_sse(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

impl Bridge {
    /// The stream translator for this response.
    pub fn stream_translator(&self) -> StreamTranslator {
        match self.direction {
            Direction::ToAnthropic => {
                let mut o = StreamOptions::new(&self.model, &self.provider);
                o.exit_tool = self.exit_tool;
                StreamTranslator::ToAnthropic(ChunksToEvents::new(o))
            }
            Direction::ToOpenAi => {
                let mut o = ChunkOptions::new(&self.model, &self.provider);
                o.include_usage = self.include_usage;
                o.created = now();
                StreamTranslator::ToOpenAi(EventsToChunks::new(o))
            }
        }
    }

    /// Translates an upstream response (`status`, downstream `headers`,
    /// upstream `body`). A stream is wrapped; JSON is read (at most `limit`
    /// bytes) and translated.
    pub async fn response<B>(
        &self,
        status: StatusCode,
        mut headers: HeaderMap,
        body: B,
        limit: usize,
    ) -> Response
    where
        B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
        B::Error: std::fmt::Display + Into<axum::BoxError>,
    {
        headers.remove(CONTENT_LENGTH);
        if status.is_success() && is_sse(&headers) {
            let body = TranslatedBody::new(body, self.stream_translator());
            let mut r = Response::new(Body::new(body));
            *r.status_mut() = status;
            *r.headers_mut() = headers;
            return r;
        }
        let json = |status: StatusCode, mut headers: HeaderMap, v: &Value| {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let mut r = Response::new(Body::from(v.to_string()));
            *r.status_mut() = status;
            *r.headers_mut() = headers;
            r
        };
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                let msg = format!(
                    "provider {}: reading the response failed (limit {limit} bytes): {e}",
                    self.provider
                );
                let v = self.error_body(502, msg.as_bytes());
                return json(StatusCode::BAD_GATEWAY, headers, &v);
            }
        };
        if !status.is_success() {
            return json(status, headers, &self.error_body(status.as_u16(), &bytes));
        }
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            let v = self.error_body(502, &bytes);
            return json(StatusCode::BAD_GATEWAY, headers, &v);
        };
        let out = match self.direction {
            Direction::ToAnthropic => completion_to_message(&v, &self.model, self.exit_tool),
            Direction::ToOpenAi => message_to_completion(&v, &self.model, now()),
        };
        json(status, headers, &out)
    }

    fn error_body(&self, status: u16, body: &[u8]) -> Value {
        match self.direction {
            Direction::ToAnthropic => errors::to_anthropic(status, body, &self.provider),
            Direction::ToOpenAi => errors::to_openai(status, body, &self.provider),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transformer::Transformer;
    use http_body_util::Full;
    use serde_json::json;

    #[test]
    fn requests_are_translated_and_transformed() {
        let chain = Chain(vec![Transformer::Deepseek]);
        let mut req = json!({"model": "ds,deepseek-chat", "max_tokens": 20000, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]});
        let (bytes, bridge) = request(
            ApiKind::Anthropic,
            ApiKind::OpenAi,
            "ds",
            &mut req,
            "deepseek-chat",
            &chain,
        )
        .unwrap();
        let up: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(up["max_tokens"], 8192);
        assert_eq!(up["stream_options"], json!({"include_usage": true}));
        assert_eq!(bridge.unwrap().direction, Direction::ToAnthropic);

        let mut req = json!({"model": "a,claude", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]});
        let (bytes, bridge) = request(
            ApiKind::OpenAi,
            ApiKind::Anthropic,
            "a",
            &mut req,
            "claude",
            &Chain::default(),
        )
        .unwrap();
        let up: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(up["max_tokens"], 4096);
        assert!(bridge.unwrap().include_usage);

        let mut req = json!({"model": "a,m", "max_tokens": 9000, "messages": []});
        let (bytes, bridge) =
            request(ApiKind::OpenAi, ApiKind::OpenAi, "a", &mut req, "m", &chain).unwrap();
        assert!(bridge.is_none());
        assert_eq!(
            serde_json::from_slice::<Value>(&bytes).unwrap(),
            json!({"model": "m", "max_tokens": 8192, "messages": []})
        );

        let mut bad = json!({"messages": [{"role": "user", "content": [{"type": "document"}]}]});
        let e = request(
            ApiKind::Anthropic,
            ApiKind::OpenAi,
            "ds",
            &mut bad,
            "m",
            &chain,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.starts_with("cannot translate this request for provider \"ds\" (openai API): messages[0].content[0].type"), "{}", e.message);
    }

    #[tokio::test]
    async fn json_and_error_responses_are_translated() {
        let b = Bridge {
            direction: Direction::ToAnthropic,
            provider: "ds".into(),
            model: "m".into(),
            exit_tool: false,
            include_usage: false,
        };
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("999"));
        let ok = Full::new(Bytes::from(
            r#"{"id":"chatcmpl-1","choices":[{"message":{"content":"hey"},"finish_reason":"stop"}]}"#,
        ));
        let r = b.response(StatusCode::OK, h.clone(), ok, 1 << 20).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get(CONTENT_LENGTH).is_none());
        let v: Value =
            serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(v["content"], json!([{"type": "text", "text": "hey"}]));
        assert_eq!(v["stop_reason"], "end_turn");

        let err = Full::new(Bytes::from(r#"{"error":{"message":"bad key"}}"#));
        let r = b
            .response(StatusCode::UNAUTHORIZED, HeaderMap::new(), err, 1 << 20)
            .await;
        assert_eq!(r.status(), 401);
        let v: Value =
            serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "provider ds answered 401: bad key"}})
        );

        let big = Full::new(Bytes::from(vec![b'x'; 100]));
        let r = b.response(StatusCode::OK, HeaderMap::new(), big, 10).await;
        assert_eq!(r.status(), 502);
    }
}
