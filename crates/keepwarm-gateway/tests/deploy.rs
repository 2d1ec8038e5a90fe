//! deploy/ is kept true: every metric that the alert rules and the Grafana
//! dashboard query exists in a running gateway's `/metrics`; the Operator's
//! PrometheusRule holds the same rules as alerts.yml; the sample config is
//! valid; the kustomization names files that exist.

use std::collections::BTreeSet;

use keepwarm_gateway::{config, server, AppState};
use keepwarm_testkit::MockProvider;
use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}{path}"))
        .unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// Every `keepwarm_…` identifier in a PromQL expression.
fn metric_names(expr: &str, into: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("keepwarm_") {
        let start = i + at;
        let boundary = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            into.insert(expr[start..end].to_string());
        }
        i = end;
    }
}

fn alert_exprs(groups: &serde_yaml::Value) -> Vec<String> {
    groups
        .as_sequence()
        .expect("groups is a list")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .map(|r| {
            r["expr"]
                .as_str()
                .expect("every rule has an expr")
                .to_string()
        })
        .collect()
}

fn grafana_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(e)) = m.get("expr") {
                out.push(e.clone());
            }
            for x in m.values() {
                grafana_exprs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| grafana_exprs(x, out)),
        _ => {}
    }
}

/// Sample names in Prometheus text.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

async fn scrape() -> String {
    let mock = MockProvider::anthropic().await;
    let text = r#"{ "Providers": [{ "name": "mock", "api_base_url": "$U", "api_key": "$K", "models": ["m"] }] }"#;
    let vars = [("U", mock.endpoint()), ("K", mock.key().to_string())];
    let (cfg, _) = config::parse(text, &|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    let state = AppState::new(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, state, async {
        let _ = rx.await;
    }));
    let client = keepwarm::Client::new().unwrap();
    // One request, so the per-request histograms have a series.
    let req = http::Request::post(format!("{base}/v1/messages"))
        .header("content-type", "application/json")
        .body(bytes::Bytes::from_static(
            br#"{"model":"mock,m","messages":[]}"#,
        ))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().bytes().await.unwrap();
    let resp = client.get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().bytes().await.unwrap();
    let _ = tx.send(());
    task.await.unwrap().unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn every_metric_in_the_alerts_and_the_grafana_dashboard_exists() {
    let mut wanted = BTreeSet::new();
    let alerts: serde_yaml::Value = serde_yaml::from_str(&read("prometheus/alerts.yml")).unwrap();
    let exprs = alert_exprs(&alerts["groups"]);
    assert!(exprs.len() >= 4, "{exprs:?}");
    for e in &exprs {
        metric_names(e, &mut wanted);
    }
    let dash: Value = serde_json::from_str(&read("grafana/keepwarm.json")).unwrap();
    let mut exprs = Vec::new();
    grafana_exprs(&dash["panels"], &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    for e in &exprs {
        metric_names(e, &mut wanted);
    }
    let have = exposed(&scrape().await);
    let missing: Vec<&String> = wanted.iter().filter(|m| !have.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "queried in deploy/ but not in /metrics: {missing:?}\n/metrics has: {have:?}"
    );
    // The rules cover what docs/DEPLOY.md promises.
    for m in [
        "keepwarm_requests_reused_total",
        "keepwarm_pool_max_sockets",
        "keepwarm_connections_stale_total",
        "keepwarm_http_client_request_duration_seconds_bucket",
    ] {
        assert!(wanted.contains(m), "{m} is not used");
    }
}

#[test]
fn the_operator_rule_equals_alerts_yml() {
    let alerts: serde_yaml::Value = serde_yaml::from_str(&read("prometheus/alerts.yml")).unwrap();
    let rule: serde_yaml::Value =
        serde_yaml::from_str(&read("kubernetes/prometheusrule.yaml")).unwrap();
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["spec"]["groups"], alerts["groups"]);
}

#[test]
fn the_sample_config_is_valid_and_needs_its_keys() {
    let text = read("kubernetes/config.json");
    let env = |k: &str| match k {
        "KEEPWARM_API_KEY" | "ANTHROPIC_API_KEY" | "OPENAI_API_KEY" => Some(format!("x-{k}")),
        _ => None,
    };
    let (cfg, warnings) =
        config::parse(&text, &env).expect("deploy/kubernetes/config.json is valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cfg.host, "0.0.0.0");
    // Listening beyond loopback needs APIKEY: the sample has it.
    assert!(server::check_exposure(&cfg).is_ok());
    assert_eq!(cfg.providers.len(), 2);
}

#[test]
fn the_kustomization_names_files_that_exist() {
    let k: serde_yaml::Value =
        serde_yaml::from_str(&read("kubernetes/kustomization.yaml")).unwrap();
    let mut files: Vec<String> = k["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    for g in k["configMapGenerator"].as_sequence().unwrap() {
        files.extend(
            g["files"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string()),
        );
    }
    for f in files {
        let text = read(&format!("kubernetes/{f}"));
        if f.ends_with(".yaml") {
            let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            assert!(v["kind"].is_string(), "{f} is a Kubernetes object");
        }
    }
    let deployment: serde_yaml::Value =
        serde_yaml::from_str(&read("kubernetes/deployment.yaml")).unwrap();
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert!(c["readinessProbe"].is_mapping() && c["livenessProbe"].is_mapping());
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
}
