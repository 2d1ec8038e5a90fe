//! The OpenAI Chat Completions API mock.

use serde_json::{json, Value};

use super::{header, parse_body, pieces, prompt_tokens, route, sse_reply, word_count, Config};
use crate::reply::Reply;
use crate::stats::RequestRecord;

/// The fixed `created` timestamp of every mock completion.
const CREATED: u64 = 1_700_000_000;

/// The exact bytes of the OpenAI mock's streaming reply for `model` and
/// `text`, so tests can assert a proxy forwarded them unchanged.
///
/// Lines `data: <chunk json>\n\n`, each sent as its own HTTP chunk, every
/// chunk with id `"chatcmpl-mock"`, object `"chat.completion.chunk"`,
/// created `1700000000`: first a delta `{"role":"assistant","content":""}`,
/// then one delta `{"content": <piece>}` per word of `text` (the word and
/// the whitespace after it, so the pieces concatenate to `text`), then an
/// empty delta with `finish_reason` `"stop"`, then `data: [DONE]\n\n`.
pub fn openai_sse_body(model: &str, text: &str) -> String {
    events(model, text).concat()
}

/// One `data:` line of a completion chunk.
fn chunk(model: &str, delta: &Value, finish: Option<&str>) -> String {
    let v = json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    let data = serde_json::to_string(&v).expect("serializing a serde_json::Value cannot fail");
    format!("data: {data}\n\n")
}

/// The streaming reply's events, in order.
fn events(model: &str, text: &str) -> Vec<String> {
    let mut out = vec![chunk(
        model,
        &json!({"role": "assistant", "content": ""}),
        None,
    )];
    for piece in pieces(text) {
        out.push(chunk(model, &json!({"content": piece}), None));
    }
    out.push(chunk(model, &json!({}), Some("stop")));
    out.push("data: [DONE]\n\n".to_owned());
    out
}

/// An OpenAI-shaped error reply.
fn error(seq: u64, status: u16, error: Value) -> Reply {
    let mut r = Reply::json(status, &json!({ "error": error }));
    r.headers
        .push(("x-request-id".to_owned(), format!("req_mock_{seq}")));
    r
}

/// Adds the success headers.
fn ok(mut r: Reply, seq: u64) -> Reply {
    r.headers
        .push(("x-request-id".to_owned(), format!("req_mock_{seq}")));
    r.headers
        .push(("x-ratelimit-remaining-requests".to_owned(), "99".to_owned()));
    r
}

/// Whether `value` is `Bearer <key>` (scheme case-insensitive).
fn bearer_matches(value: Option<&str>, key: &str) -> bool {
    value
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && token.trim() == key)
}

/// Answers one request.
pub(super) fn handle(cfg: &Config, seq: u64, req: &RequestRecord) -> Reply {
    if (req.method.as_str(), route(req)) != ("POST", "/v1/chat/completions") {
        let msg = format!("Unknown request URL: {} {}.", req.method, req.path);
        let e = json!({"message": msg, "type": "invalid_request_error", "param": null, "code": "unknown_url"});
        return error(seq, 404, e);
    }
    if !bearer_matches(header(req, "authorization"), &cfg.key) {
        let e = json!({
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        });
        return error(seq, 401, e);
    }
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(msg) => {
            let e = json!({"message": msg, "type": "invalid_request_error", "param": null, "code": null});
            return error(seq, 400, e);
        }
    };
    if body.stream {
        return ok(
            sse_reply(events(&body.model, &cfg.text), cfg.event_delay),
            seq,
        );
    }
    let (prompt, completion) = (prompt_tokens(req), word_count(&cfg.text));
    let v = json!({
        "id": format!("chatcmpl-mock-{seq}"),
        "object": "chat.completion",
        "created": CREATED,
        "model": body.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": cfg.text},
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    });
    ok(Reply::json(200, &v), seq)
}
