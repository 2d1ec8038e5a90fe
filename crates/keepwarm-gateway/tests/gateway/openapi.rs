//! docs/openapi.yaml is kept true: every documented route answers with its
//! documented status, content type and required fields (types checked).

use serde_json::Value;

use keepwarm_testkit::MockProvider;

use crate::support::*;

const SPEC: &str = include_str!("../../../../docs/openapi.yaml");

fn spec() -> Value {
    let y: serde_yaml::Value = serde_yaml::from_str(SPEC).expect("openapi.yaml parses");
    serde_json::to_value(y).expect("as JSON")
}

fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let path = r.trim_start_matches("#/");
            path.split('/').fold(root, |v, k| &v[k])
        }
        None => s,
    }
}

/// Checks `v` against `schema` (type, required, properties, items, allOf,
/// enum, nullable); returns every mismatch with its JSON path.
fn check(root: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let s = resolve(root, schema);
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for part in all {
            check(root, part, v, at, errs);
        }
    }
    if v.is_null() && s["nullable"] == true {
        return;
    }
    let ok = match s.get("type").and_then(Value::as_str) {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_u64() || v.is_i64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    };
    if !ok {
        errs.push(format!("{at}: expected {}, got {v}", s["type"]));
        return;
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errs.push(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let Some(req) = s.get("required").and_then(Value::as_array) {
        for r in req {
            let k = r.as_str().unwrap();
            if v.get(k).is_none() {
                errs.push(format!("{at}.{k}: required but missing"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (
        s.get("properties").and_then(Value::as_object),
        v.as_object(),
    ) {
        for (k, ps) in props {
            if let Some(x) = obj.get(k) {
                check(root, ps, x, &format!("{at}.{k}"), errs);
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(root, items, x, &format!("{at}[{i}]"), errs);
        }
    }
}

#[tokio::test]
async fn every_documented_route_answers_as_documented() {
    let root = spec();
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(r#", "STATS_INTERVAL_MS": 50"#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let c = client();
    for _ in 0..3 {
        read(
            post(
                &c,
                &format!("{}/v1/messages", gw.url),
                &[],
                r#"{"model":"mock,claude-test"}"#,
            )
            .await,
        )
        .await;
    }
    let mut checked = 0;
    let mut errs = Vec::new();
    for (path, item) in root["paths"].as_object().unwrap() {
        if path == "/api/config/reload" {
            // Needs APIKEY and a config file: tests/gateway/reload.rs
            // covers its answers (200 with the documented keys, 400, 403).
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let url = format!(
                "{}{}",
                gw.url,
                path.replace("{name}", "mock").replace("{provider}", "mock")
            );
            let req = http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&url)
                .body(bytes::Bytes::new())
                .unwrap();
            let resp = c.request(req).await.unwrap();
            let status = resp.status().as_u16();
            let (code, doc) = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.starts_with('2'))
                .expect("a documented success");
            assert_eq!(status.to_string(), *code, "{method} {path}");
            let (ctype, media) = doc["content"].as_object().unwrap().iter().next().unwrap();
            let got_type = resp.headers()["content-type"].to_str().unwrap().to_string();
            assert!(
                got_type.starts_with(ctype.as_str()),
                "{method} {path}: content-type {got_type}, documented {ctype}"
            );
            if ctype == "text/event-stream" {
                // The first event arrives at once; that is enough here.
                let mut body = resp.into_body();
                let f = http_body_util::BodyExt::frame(&mut body)
                    .await
                    .unwrap()
                    .unwrap();
                assert!(std::str::from_utf8(f.data_ref().unwrap())
                    .unwrap()
                    .contains("event: stats"));
            } else if ctype == "application/json" {
                let (_, _, text) = read(resp).await;
                check(
                    &root,
                    &media["schema"],
                    &json(&text),
                    &format!("{method} {path}"),
                    &mut errs,
                );
            } else if ctype == "text/html" {
                let (_, _, text) = read(resp).await;
                assert!(text.starts_with("<!doctype html>"), "{path}");
            } else {
                let (_, _, text) = read(resp).await;
                assert!(text.contains("keepwarm_requests_total"), "{path}");
            }
            checked += 1;
        }
    }
    assert!(
        errs.is_empty(),
        "responses differ from docs/openapi.yaml:\n{}",
        errs.join("\n")
    );
    assert_eq!(checked, 10, "every documented operation was called");
    // The documented error answers.
    let (s, _, t) = read(
        c.get(&format!("{}/api/connections/provider/nope", gw.url))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    let mut errs = Vec::new();
    check(
        &root,
        &root["components"]["schemas"]["Error"],
        &json(&t),
        "404",
        &mut errs,
    );
    let req = http::Request::post(format!("{}/api/connections/destroy/mock", gw.url))
        .body(bytes::Bytes::from_static(br#"{"protocol":"gopher"}"#))
        .unwrap();
    let (s, _, t) = read(c.request(req).await.unwrap()).await;
    assert_eq!(s, 400);
    check(
        &root,
        &root["components"]["schemas"]["Error"],
        &json(&t),
        "400",
        &mut errs,
    );
    assert!(errs.is_empty(), "{errs:?}");
}
