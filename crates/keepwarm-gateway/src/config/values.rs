//! The config's leaf values as serde types, each checking its own JSON and
//! failing with "expected …, got …" (the path is added by
//! [`Diag`](super::de::Diag)), plus the helpers for those messages.

use std::time::Duration;

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

use super::ConfigError;

/// Longest accepted duration: 365 days, in milliseconds.
pub(crate) const MAX_MS: u64 = 365 * 24 * 3600 * 1000;

pub(crate) fn err(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// A short rendering of a JSON value for "got …" in messages.
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
        Value::String(s) => quoted(s),
        other => other.to_string(),
    }
}

/// `s` as a JSON string, cut at 80 characters.
pub(crate) fn quoted(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("{}{more}", Value::String(cut))
}

/// "expected {what}, got {v}".
fn expected(what: &str, v: &Value) -> String {
    format!("expected {what}, got {}", show(v))
}

/// An absolute `http` or `https` URL with a host.
pub(crate) fn http_url(s: &str) -> Option<http::Uri> {
    let uri: http::Uri = s.parse().ok()?;
    let scheme = matches!(uri.scheme_str(), Some("http" | "https"));
    (scheme && uri.host().is_some_and(|h| !h.is_empty())).then_some(uri)
}

/// A TCP port 1–65535 from a number or a numeric string.
pub(crate) fn port(s: &str) -> Option<u16> {
    s.trim().parse().ok().filter(|&p| p != 0)
}

/// Implements `Deserialize` for a leaf from a check of its JSON value.
macro_rules! leaf {
    ($(#[$doc:meta])* $name:ident $(<$c:ident>)?, |$v:ident| $check:expr) => {
        impl<'de $(, const $c: u64)?> Deserialize<'de> for $name $(<$c>)? {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let $v = Value::deserialize(d)?;
                let r: Result<Self, String> = $check;
                r.map_err(D::Error::custom)
            }
        }
    };
}

/// A string as written; `$VAR`/`${VAR}` are expanded where it is used,
/// with its path (see `parse.rs`).
#[derive(Debug)]
pub(crate) struct Text(pub String);
leaf!(Text, |v| match v {
    Value::String(s) => Ok(Text(s)),
    other => Err(expected("a string", &other)),
});

/// `true` or `false`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flag(pub bool);
leaf!(Flag, |v| v
    .as_bool()
    .map(Flag)
    .ok_or_else(|| expected("true or false", &v)));

/// An integer ≥ `MIN` (0 or 1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Int<const MIN: u64>(pub u64);
leaf!(Int<MIN>, |v| {
    let what = match MIN {
        0 => "a non-negative integer",
        _ => "a positive integer",
    };
    (v.as_u64().filter(|&n| n >= MIN))
        .map(Int)
        .ok_or_else(|| expected(what, &v))
});

/// A count of things (connections, bytes) ≥ `MIN`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Size<const MIN: u64>(pub usize);
leaf!(Size<MIN>, |v| match Int::<MIN>::deserialize(&v) {
    Ok(Int(n)) => usize::try_from(n)
        .map(Size)
        .map_err(|_| format!("{n} is too large")),
    Err(e) => Err(e.to_string()),
});

/// A positive integer that fits in 32 bits (e.g. a stream count).
#[derive(Clone, Copy, Debug)]
pub(crate) struct U32(pub u32);
leaf!(U32, |v| match Int::<1>::deserialize(&v) {
    Ok(Int(n)) => u32::try_from(n)
        .map(U32)
        .map_err(|_| format!("{n} is above {}", u32::MAX)),
    Err(e) => Err(e.to_string()),
});

/// `"auto"`, `"http1"` or `"http2"` (see [`keepwarm::Protocol`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proto(pub keepwarm::Protocol);
leaf!(Proto, |v| match v.as_str().map(str::parse) {
    Some(Ok(p)) => Ok(Proto(p)),
    _ => Err(expected("\"auto\", \"http1\" or \"http2\"", &v)),
});

/// A positive number of milliseconds, at most 365 days.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Millis(pub Duration);
leaf!(Millis, |v| match v.as_u64().filter(|&n| n > 0) {
    None => Err(expected("a positive integer (milliseconds)", &v)),
    Some(n) if n > MAX_MS => Err(format!("{n} ms is above {MAX_MS} (365 days)")),
    Some(n) => Ok(Millis(Duration::from_millis(n))),
});

/// A percentage from 0 to 100.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Percent(pub f64);
leaf!(Percent, |v| match v.as_f64() {
    Some(p) if (0.0..=100.0).contains(&p) => Ok(Percent(p)),
    _ => Err(expected("a percentage from 0 to 100", &v)),
});

/// `PORT`: a number, checked now, or a string, checked after `$VAR`
/// expansion.
#[derive(Debug)]
pub(crate) enum Port {
    /// A valid port number.
    Number(u16),
    /// A string as written.
    Text(String),
}
leaf!(Port, |v| match v {
    Value::String(s) => Ok(Port::Text(s)),
    Value::Number(ref n) => port(&n.to_string())
        .map(Port::Number)
        .ok_or_else(|| expected("an integer from 1 to 65535", &v)),
    other => Err(expected("an integer from 1 to 65535", &other)),
});

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message<T: for<'de> Deserialize<'de> + std::fmt::Debug>(v: Value) -> String {
        T::deserialize(&v).unwrap_err().to_string()
    }

    #[test]
    fn each_leaf_names_what_it_expected_and_what_it_got() {
        assert_eq!(message::<Text>(json!(5)), "expected a string, got 5");
        assert_eq!(
            message::<Flag>(json!("yes")),
            "expected true or false, got \"yes\""
        );
        assert_eq!(
            message::<Int<0>>(json!(-1)),
            "expected a non-negative integer, got -1"
        );
        assert_eq!(
            message::<Size<1>>(json!(0)),
            "expected a positive integer, got 0"
        );
        assert_eq!(
            message::<Millis>(json!(0)),
            "expected a positive integer (milliseconds), got 0"
        );
        assert_eq!(
            message::<Millis>(json!(MAX_MS + 1)),
            format!("{} ms is above {MAX_MS} (365 days)", MAX_MS + 1)
        );
        assert_eq!(
            message::<Percent>(json!(101)),
            "expected a percentage from 0 to 100, got 101"
        );
        assert_eq!(
            message::<Port>(json!([80])),
            "expected an integer from 1 to 65535, got an array"
        );
        assert_eq!(
            message::<Text>(json!({"a": 1})),
            "expected a string, got an object"
        );
        assert_eq!(
            message::<U32>(json!(5_000_000_000u64)),
            "5000000000 is above 4294967295"
        );
        assert_eq!(
            message::<U32>(json!(0)),
            "expected a positive integer, got 0"
        );
        assert_eq!(
            message::<Proto>(json!("h3")),
            r#"expected "auto", "http1" or "http2", got "h3""#
        );
        assert_eq!(
            Proto::deserialize(&json!("http2")).unwrap().0,
            keepwarm::Protocol::Http2
        );
        assert!(matches!(
            Port::deserialize(&json!(80)),
            Ok(Port::Number(80))
        ));
        assert!(matches!(Port::deserialize(&json!("$P")), Ok(Port::Text(s)) if s == "$P"));
        assert_eq!(Size::<0>::deserialize(&json!(0)).unwrap().0, 0);
    }
}
