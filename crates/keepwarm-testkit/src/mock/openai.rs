//! The OpenAI Chat Completions API mock.

use serde_json::{json, Value};

use super::{
    header, parse_body, pieces, prompt_tokens, route, sse_reply, word_count, Config,
    MOCK_TOOL_ARGUMENTS,
};
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

/// The streaming reply that calls tool `name` (id `call_mock`), its
/// arguments in [`MOCK_TOOL_ARGUMENTS`] fragments, finish `tool_calls`.
fn tool_events(model: &str, name: &str) -> Vec<String> {
    let mut out = vec![chunk(
        model,
        &json!({"role": "assistant", "content": null}),
        None,
    )];
    out.push(chunk(
        model,
        &json!({"tool_calls": [{"index": 0, "id": "call_mock", "type": "function",
            "function": {"name": name, "arguments": ""}}]}),
        None,
    ));
    for a in MOCK_TOOL_ARGUMENTS {
        let call = json!({"index": 0, "function": {"arguments": a}});
        out.push(chunk(model, &json!({"tool_calls": [call]}), None));
    }
    out.push(chunk(model, &json!({}), Some("tool_calls")));
    out.push("data: [DONE]\n\n".to_owned());
    out
}

/// The usage chunk (`choices: []`) sent before `[DONE]` when the request
/// asked `stream_options.include_usage`.
fn with_usage(mut events: Vec<String>, model: &str, prompt: u64, completion: u64) -> Vec<String> {
    let v = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED,
        "model": model, "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}});
    let done = events.pop();
    events.push(format!("data: {v}\n\n"));
    events.extend(done);
    events
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
    let (prompt, completion) = (prompt_tokens(req), word_count(&cfg.text));
    if body.stream {
        let mut evs = match &body.tool {
            Some(name) => tool_events(&body.model, name),
            None => events(&body.model, &cfg.text),
        };
        if body.include_usage {
            evs = with_usage(evs, &body.model, prompt, completion);
        }
        return ok(sse_reply(evs, cfg.event_delay), seq);
    }
    let (message, finish) = match &body.tool {
        Some(name) => (
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock", "type": "function",
                "function": {"name": name, "arguments": MOCK_TOOL_ARGUMENTS.concat()}}]}),
            "tool_calls",
        ),
        None => (json!({"role": "assistant", "content": cfg.text}), "stop"),
    };
    let v = json!({
        "id": format!("chatcmpl-mock-{seq}"),
        "object": "chat.completion",
        "created": CREATED,
        "model": body.model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish,
        }],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    });
    ok(Reply::json(200, &v), seq)
}
