//! Upstream TLS trust: a provider's `tls.ca_file` trusts a private CA for
//! that provider only; `SSL_CERT_FILE` for all; a bad file is an error at
//! start naming the provider (or the variable) and the file.

use std::path::PathBuf;

use keepwarm_gateway::{config, AppState};
use keepwarm_testkit::{cert_pem, MockApi, MockProvider};

use crate::support::{client, post, read, Gateway};

const BODY: &str =
    r#"{"max_tokens":8,"messages":[{"role":"user","content":"hi"}],"model":"MODEL"}"#;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keepwarm-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn status_of(gw: &Gateway, provider: &str) -> (u16, String) {
    let body = BODY.replace("MODEL", &format!("{provider},claude-test"));
    let (status, _, text) =
        read(post(&client(), &format!("{}/v1/messages", gw.url), &[], &body).await).await;
    (status, text)
}

#[tokio::test]
async fn ca_file_trusts_a_private_ca_for_its_provider_only() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .tls(true)
        .start()
        .await;
    let other = MockProvider::builder(MockApi::Anthropic)
        .tls(true)
        .start()
        .await;
    let dir = temp_dir("ca-file");
    let ca = dir.join("mock-ca.pem");
    std::fs::write(&ca, cert_pem(&mock.upstream().ca_der())).unwrap();
    let wrong = dir.join("other-ca.pem");
    std::fs::write(&wrong, cert_pem(&other.upstream().ca_der())).unwrap();
    let cfg = r#"{ "Providers": [
        { "name": "trusted", "api_base_url": "$URL", "api_key": "$KEY", "tls": { "ca_file": "$CA" } },
        { "name": "plain", "api_base_url": "$URL", "api_key": "$KEY" },
        { "name": "wrong", "api_base_url": "$URL", "api_key": "$KEY", "tls": { "ca_file": "$WRONG" } }
    ] }"#;
    let vars = [
        ("URL", mock.endpoint()),
        ("KEY", mock.key().to_string()),
        ("CA", ca.display().to_string()),
        ("WRONG", wrong.display().to_string()),
    ];
    // No extra roots and no built-in ones: only a ca_file can make it work.
    let gw = Gateway::start(cfg, &vars, &[]).await;
    let (s, text) = status_of(&gw, "trusted").await;
    assert_eq!(s, 200, "{text}");
    for name in ["plain", "wrong"] {
        let (s, text) = status_of(&gw, name).await;
        assert_eq!(s, 502, "{name}: {text}");
        assert!(
            text.contains(name) && text.contains("TLS"),
            "{name}: {text}"
        );
    }
    let st = mock.upstream().stats();
    assert_eq!(
        st.tls_full + st.tls_resumed,
        1,
        "only `trusted` finished one: {st:?}"
    );
    assert_eq!(st.requests, 1, "{st:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn ssl_cert_file_trusts_a_ca_for_every_provider() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .tls(true)
        .start()
        .await;
    let dir = temp_dir("ssl-cert-file");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert_pem(&mock.upstream().ca_der())).unwrap();
    let text = r#"{ "Providers": [{ "name": "m", "api_base_url": "$URL", "api_key": "k" }] }"#;
    let env = |k: &str| match k {
        "URL" => Some(mock.endpoint()),
        "SSL_CERT_FILE" => Some(ca.display().to_string()),
        _ => None,
    };
    let (cfg, _) = config::parse(text, &env).unwrap();
    assert_eq!(cfg.ssl_cert_file.as_deref(), Some(ca.as_path()));
    let state = AppState::builder(cfg)
        .built_in_roots(false)
        .build()
        .unwrap();
    let mut req = http::Request::get(mock.upstream().url("/"))
        .body(bytes::Bytes::new())
        .unwrap();
    req.extensions_mut().insert(keepwarm::Label("m".into()));
    let resp = state
        .client()
        .request(req)
        .await
        .expect("SSL_CERT_FILE's CA is trusted");
    resp.into_body().bytes().await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_bad_trust_file_fails_the_start_naming_provider_and_file() {
    let dir = temp_dir("bad-trust");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let missing = dir.join("missing.pem");
    let build = |ca: &PathBuf, ssl: Option<&PathBuf>| {
        let text = format!(
            r#"{{ "Providers": [{{ "name": "corp", "api_base_url": "https://corp.example/v1/messages",
                "api_key": "k", "tls": {{ "ca_file": {:?} }} }}] }}"#,
            ca.display().to_string()
        );
        let ssl = ssl.map(|p| p.display().to_string());
        let (cfg, _) = config::parse(&text, &|k| {
            (k == "SSL_CERT_FILE").then(|| ssl.clone()).flatten()
        })
        .unwrap();
        AppState::new(cfg)
            .err()
            .expect("the start fails")
            .to_string()
    };
    let e = build(&missing, None);
    assert!(
        e.starts_with("provider \"corp\": tls.ca_file: cannot read "),
        "{e}"
    );
    assert!(e.contains("missing.pem"), "{e}");
    let e = build(&empty, None);
    assert!(e.starts_with("provider \"corp\": tls.ca_file: "), "{e}");
    assert!(
        e.contains("empty.pem holds no PEM CERTIFICATE block"),
        "{e}"
    );
    let e = build(&empty, Some(&missing));
    assert!(e.starts_with("SSL_CERT_FILE: cannot read "), "{e}");
    assert!(e.contains("missing.pem"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
