//! The Anthropic Messages API mock.

use serde_json::{json, Value};

use super::{
    header, parse_body, pieces, prompt_tokens, route, sse_reply, word_count, Config,
    MOCK_TOOL_ARGUMENTS,
};
use crate::reply::Reply;
use crate::stats::RequestRecord;

/// The exact bytes of the Anthropic mock's streaming reply for `model` and
/// `text`, so tests can assert a proxy forwarded them unchanged.
///
/// Events, each `event: <type>\ndata: <json>\n\n` and each sent as its own
/// HTTP chunk: `message_start` (id `"msg_mock"`, usage `input_tokens` fixed
/// at 1 so the body depends only on `model` and `text`), `content_block_start`,
/// `ping`, one `content_block_delta` (`text_delta`) per word of `text` (the
/// word and the whitespace after it, so the deltas concatenate to `text`),
/// an unknown `x_mock_unknown` event (data `{"type":"x_mock_unknown"}`) that
/// proxies must pass through, `content_block_stop`, `message_delta`
/// (`stop_reason` `end_turn`, usage `output_tokens` = words in `text`) and
/// `message_stop`.
pub fn anthropic_sse_body(model: &str, text: &str) -> String {
    events(model, text).concat()
}

/// One SSE event.
fn event(ty: &str, data: &Value) -> String {
    let data = serde_json::to_string(data).expect("serializing a serde_json::Value cannot fail");
    format!("event: {ty}\ndata: {data}\n\n")
}

/// The streaming reply's events, in order.
fn events(model: &str, text: &str) -> Vec<String> {
    let mut out = vec![
        event(
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": "msg_mock",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {"input_tokens": 1, "output_tokens": 1},
                },
            }),
        ),
        event(
            "content_block_start",
            &json!({
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    for piece in pieces(text) {
        out.push(event(
            "content_block_delta",
            &json!({
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }),
        ));
    }
    out.push(event("x_mock_unknown", &json!({"type": "x_mock_unknown"})));
    out.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": word_count(text)},
        }),
    ));
    out.push(event("message_stop", &json!({"type": "message_stop"})));
    out
}

/// The streaming reply that calls tool `name` (id `toolu_mock`), its input
/// in [`MOCK_TOOL_ARGUMENTS`] fragments, `stop_reason` `tool_use`.
fn tool_events(model: &str, name: &str) -> Vec<String> {
    let mut out = events(model, "");
    out.truncate(1); // message_start
    out.push(event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_mock", "name": name, "input": {}}}),
    ));
    for a in MOCK_TOOL_ARGUMENTS {
        out.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": a}}),
        ));
    }
    out.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 3}}),
    ));
    out.push(event("message_stop", &json!({"type": "message_stop"})));
    out
}

/// An Anthropic-shaped error reply.
fn error(seq: u64, status: u16, ty: &str, message: &str) -> Reply {
    let mut r = Reply::json(
        status,
        &json!({"type": "error", "error": {"type": ty, "message": message}}),
    );
    r.headers
        .push(("request-id".to_owned(), format!("req_mock_{seq}")));
    r
}

/// Adds the success headers.
fn ok(mut r: Reply, seq: u64) -> Reply {
    r.headers
        .push(("request-id".to_owned(), format!("req_mock_{seq}")));
    r.headers.push((
        "anthropic-ratelimit-requests-remaining".to_owned(),
        "99".to_owned(),
    ));
    r
}

/// Answers one request.
pub(super) fn handle(cfg: &Config, seq: u64, req: &RequestRecord) -> Reply {
    let count_tokens = match (req.method.as_str(), route(req)) {
        ("POST", "/v1/messages") => false,
        ("POST", "/v1/messages/count_tokens") => true,
        _ => {
            let msg = format!("Not found: {} {}", req.method, req.path);
            return error(seq, 404, "not_found_error", &msg);
        }
    };
    if header(req, "x-api-key") != Some(cfg.key.as_str()) {
        return error(seq, 401, "authentication_error", "invalid x-api-key");
    }
    if header(req, "anthropic-version").is_none() {
        let msg = "anthropic-version header is required";
        return error(seq, 400, "invalid_request_error", msg);
    }
    let body = match parse_body(req) {
        Ok(b) => b,
        Err(msg) => return error(seq, 400, "invalid_request_error", &msg),
    };
    let input_tokens = prompt_tokens(req);
    if count_tokens {
        return ok(
            Reply::json(200, &json!({"input_tokens": input_tokens})),
            seq,
        );
    }
    if body.stream {
        let evs = match &body.tool {
            Some(name) => tool_events(&body.model, name),
            None => events(&body.model, &cfg.text),
        };
        return ok(sse_reply(evs, cfg.event_delay), seq);
    }
    let (content, stop) = match &body.tool {
        Some(name) => {
            let input: Value = serde_json::from_str(&MOCK_TOOL_ARGUMENTS.concat())
                .expect("the mock's tool arguments are JSON");
            (
                json!([{"type": "tool_use", "id": "toolu_mock", "name": name, "input": input}]),
                "tool_use",
            )
        }
        None => (json!([{"type": "text", "text": cfg.text}]), "end_turn"),
    };
    let message = json!({
        "id": format!("msg_mock_{seq}"),
        "type": "message",
        "role": "assistant",
        "model": body.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": word_count(&cfg.text)},
    });
    ok(Reply::json(200, &message), seq)
}
