//! The `keepwarm` binary: `check-config` and the refusal to expose the
//! gateway without `APIKEY`.

use std::process::Command;

fn keepwarm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keepwarm"));
    c.env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY");
    c
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keepwarm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_config_prints_the_effective_config_with_keys_redacted() {
    let p = write(
        "ok.json",
        r#"{"APIKEY": "gw-secret-1", "Providers": [{"name": "a", "api_base_url": "https://api.example.com/v1/messages",
            "api_key": "$KW_TEST_KEY", "models": ["m"]}], "HttpConnectionPool": {"providers": {"a": {"maxSockets": 20}}},
            "maxSocketz": 1}"#,
    );
    let out = keepwarm()
        .arg("check-config")
        .arg(&p)
        .env("KW_TEST_KEY", "sk-very-secret")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("unknown key maxSocketz"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["HttpConnectionPool"]["providers"]["a"]["maxSockets"], 20);
    assert_eq!(
        v["HttpConnectionPool"]["providers"]["a"]["maxFreeSockets"],
        10
    );
    assert!(
        !stdout.contains("sk-very-secret") && !stdout.contains("gw-secret-1"),
        "{stdout}"
    );
}

#[test]
fn a_bad_config_fails_with_its_json_path() {
    let p = write(
        "bad.json",
        r#"{"HttpConnectionPool": {"providers": {"anthropic": {"maxSockets": -1}}}}"#,
    );
    let out = keepwarm().arg("check-config").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HttpConnectionPool.providers.anthropic.maxSockets: expected a positive integer, got -1"),
        "{stderr}"
    );
    let out = keepwarm()
        .args(["serve", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "serve does not start on a bad config"
    );
}

#[test]
fn check_config_reports_every_error_and_every_ignored_key() {
    let p = write(
        "many.json",
        r#"{"PORT": "http", "LOG": true, "Providers": [
              {"name": "a", "api_base_url": "https://a.example/v1/messages", "api_key": "k", "modles": ["m"]},
              {"name": "b", "api_base_url": "b.example", "api_key": "k"}],
            "Router": {"default": "nobody,m"},
            "HttpConnectionPool": {"maxSockets": 5, "global": {"freeSocketTimeout": 0}}}"#,
    );
    let out = keepwarm().arg("check-config").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(
        errors,
        [
            r#"error: PORT: expected an integer from 1 to 65535, got "http""#,
            r#"error: Providers[1].api_base_url: expected an absolute http(s) URL, got "b.example""#,
            r#"error: Router.default: unknown provider "nobody""#,
            "error: HttpConnectionPool.global.freeSocketTimeout: expected a positive integer (milliseconds), got 0",
        ],
        "{stderr}"
    );
    for warning in [
        "warning: LOG: not supported by keepwarm (ignored)",
        "warning: unknown key Providers[0].modles (ignored)",
        "warning: HttpConnectionPool.maxSockets: pool settings go in HttpConnectionPool.global or providers.<name> (ignored)",
    ] {
        assert!(stderr.contains(warning), "{warning} missing from {stderr}");
    }
    assert!(
        stderr.contains("the config is invalid: 4 errors"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no effective config for an invalid one"
    );
    // `serve` refuses on the first.
    let out = keepwarm()
        .args(["serve", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"error: PORT: expected an integer"#),
        "{stderr}"
    );
    assert!(!stderr.contains("Router.default"), "{stderr}");
}

#[test]
fn serve_refuses_a_public_address_without_apikey() {
    let p = write("public.json", r#"{"HOST": "0.0.0.0", "PORT": 1}"#);
    let out = keepwarm()
        .args(["serve", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:1 without APIKEY"),
        "{stderr}"
    );
}

#[test]
fn help_lists_every_command() {
    let out = keepwarm().arg("--help").output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "check-config"] {
        assert!(s.contains(cmd), "{s}");
    }
}
