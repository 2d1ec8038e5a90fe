//! A gateway under test: config text → server on port 0 → base URL.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use keepwarm::{Client, ResponseBody};
use keepwarm_gateway::config;
use keepwarm_gateway::{server, AppState};
use keepwarm_testkit::MockProvider;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running gateway; dropping it shuts it down.
pub(crate) struct Gateway {
    pub(crate) url: String,
    pub(crate) state: AppState,
    stop: Option<oneshot::Sender<()>>,
    pub(crate) task: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Starts one from config text; `$NAME` in it comes from `vars`.
    pub(crate) async fn start(
        text: &str,
        vars: &[(&str, String)],
        mocks: &[&MockProvider],
    ) -> Gateway {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let roots: Vec<_> = mocks.iter().map(|m| m.upstream().ca_der()).collect();
        Self::start_trusting(text, vars, roots).await
    }

    /// [`start`](Self::start) trusting `roots` (e.g. an `H2Server`'s CA).
    pub(crate) async fn start_trusting(
        text: &str,
        vars: HashMap<String, String>,
        roots: Vec<keepwarm::CertificateDer<'static>>,
    ) -> Gateway {
        let (cfg, warnings) =
            config::parse(text, &|k| vars.get(k).cloned()).expect("valid test config");
        assert!(
            warnings.is_empty(),
            "unexpected config warnings: {warnings:?}"
        );
        let mut b = AppState::builder(cfg).built_in_roots(false);
        for r in roots {
            b = b.add_root_certificate(r);
        }
        let state = b.build().expect("pools build");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        let task = tokio::spawn(async move {
            task.await.unwrap().unwrap();
        });
        Gateway {
            url,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Asks the server to shut down gracefully.
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One Anthropic provider `mock` at `$MOCK_URL` with key `$MOCK_KEY`.
pub(crate) fn anthropic_config(extra: &str) -> String {
    format!(
        r#"{{
          "Providers": [{{ "name": "mock", "api_base_url": "$MOCK_URL", "api_key": "$MOCK_KEY", "models": ["claude-test"] }}]
          {extra}
        }}"#
    )
}

/// The env vars for [`anthropic_config`].
pub(crate) fn vars(mock: &MockProvider) -> Vec<(&'static str, String)> {
    vec![
        ("MOCK_URL", mock.endpoint()),
        ("MOCK_KEY", mock.key().to_string()),
    ]
}

/// A plain HTTP client for talking to the gateway.
pub(crate) fn client() -> Client {
    Client::builder().build().unwrap()
}

/// POSTs JSON to the gateway.
pub(crate) async fn post(
    client: &Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Response<ResponseBody> {
    let mut b = http::Request::post(url).header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    client
        .request(b.body(Bytes::from(body.to_string())).unwrap())
        .await
        .expect("the gateway answers")
}

/// Reads a response as (status, headers, body text).
pub(crate) async fn read(resp: http::Response<ResponseBody>) -> (u16, http::HeaderMap, String) {
    let (p, body) = resp.into_parts();
    let bytes = body.bytes().await.unwrap();
    (
        p.status.as_u16(),
        p.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

/// Parses JSON text.
pub(crate) fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Waits (bounded) until `f` holds.
pub(crate) async fn eventually(f: impl Fn() -> bool) -> bool {
    for _ in 0..400 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    f()
}
