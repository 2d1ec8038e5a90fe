//! Reading JSON into the raw structs of [`raw`](super::raw) at a known JSON
//! path: [`Lazy`] keeps a value until it is read, and [`Diag::read`] reads
//! it with `serde_path_to_error` (the full path of a bad value) and
//! `serde_ignored` (every key nothing read becomes a warning), collecting
//! every error and warning instead of stopping at the first.

use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;
use serde_json::Value;

use super::values::{err, show};
use super::ConfigError;

/// A value kept as JSON until [`Diag::read`] reads it as `T` at its path,
/// so a bad value fails only itself and the rest is still checked.
/// `null` is kept (it is not "absent"). Default: absent.
pub(crate) struct Lazy<T> {
    value: Option<Value>,
    kind: PhantomData<fn() -> T>,
}

impl<T> Default for Lazy<T> {
    fn default() -> Self {
        Lazy {
            value: None,
            kind: PhantomData,
        }
    }
}

impl<'de, T> Deserialize<'de> for Lazy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Lazy {
            value: Some(Value::deserialize(d)?),
            kind: PhantomData,
        })
    }
}

impl<T> Lazy<T> {
    /// The JSON as written; `None` when the key was absent.
    pub(crate) fn raw(&self) -> Option<&Value> {
        self.value.as_ref()
    }
}

impl<T> From<Value> for Lazy<T> {
    fn from(v: Value) -> Self {
        Lazy {
            value: Some(v),
            kind: PhantomData,
        }
    }
}

/// A key of a block of plain settings (with a container
/// `#[serde(default)]`): `Some` when written, even as `null`, so `null`
/// reaches `T`: an error for most settings, "no limit" for the nullable
/// ones (`Written<Option<T>>`). Default: not written (`None`).
pub(crate) struct Written<T>(Option<T>);

impl<T> Default for Written<T> {
    fn default() -> Self {
        Written(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Written<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|t| Written(Some(t)))
    }
}

impl<T> std::ops::Deref for Written<T> {
    type Target = Option<T>;
    fn deref(&self) -> &Option<T> {
        &self.0
    }
}

/// A value whose error is already recorded in the [`Diag`].
#[derive(Debug)]
pub(crate) struct Failed;

/// `base.key`, or `key` at the top level.
pub(crate) fn child(base: &str, key: &str) -> String {
    match base.is_empty() {
        true => key.to_owned(),
        false => format!("{base}.{key}"),
    }
}

/// The JSON path of `p` (as `serde_ignored` reports it) under `base`.
fn path_of(base: &str, p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => base.to_owned(),
        P::Seq { parent, index } => format!("{}[{index}]", path_of(base, parent)),
        P::Map { parent, key } => child(&path_of(base, parent), key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            path_of(base, parent)
        }
    }
}

/// What a config check found: errors (the config is rejected if any) and
/// warnings (keys that were ignored), both in the order found.
#[derive(Default)]
pub(crate) struct Diag {
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<String>,
}

impl Diag {
    /// Records an error at `path`.
    pub(crate) fn fail(&mut self, path: &str, message: impl Into<String>) -> Failed {
        self.errors.push(err(path, message));
        Failed
    }

    /// Records the error of `r`, if any.
    pub(crate) fn check<T>(&mut self, r: Result<T, ConfigError>) -> Result<T, Failed> {
        r.map_err(|e| {
            self.errors.push(e);
            Failed
        })
    }

    /// Records `(value, warnings)` from a section parser: its warnings
    /// always, its error if any.
    pub(crate) fn section<T>(
        &mut self,
        r: Result<(T, Vec<String>), ConfigError>,
    ) -> Result<T, Failed> {
        let (value, warnings) = self.check(r)?;
        self.warnings.extend(warnings);
        Ok(value)
    }

    /// Reads `lazy` as `T` at `path`; `Ok(None)` when it was absent.
    pub(crate) fn read<T: DeserializeOwned>(
        &mut self,
        lazy: &Lazy<T>,
        path: &str,
    ) -> Result<Option<T>, Failed> {
        lazy.raw().map(|v| self.value(v, path)).transpose()
    }

    /// Like [`read`](Self::read) for a `T` that is a JSON object: anything
    /// else is "expected an object, got …".
    pub(crate) fn object<T: DeserializeOwned>(
        &mut self,
        lazy: &Lazy<T>,
        path: &str,
    ) -> Result<Option<T>, Failed> {
        self.shaped(lazy, path, Value::is_object, "an object")
    }

    /// Like [`read`](Self::read) when `shape` holds for the JSON written,
    /// else "expected {what}, got …".
    pub(crate) fn shaped<T: DeserializeOwned>(
        &mut self,
        lazy: &Lazy<T>,
        path: &str,
        shape: fn(&Value) -> bool,
        what: &str,
    ) -> Result<Option<T>, Failed> {
        match lazy.raw() {
            Some(v) if !shape(v) => {
                Err(self.fail(path, format!("expected {what}, got {}", show(v))))
            }
            _ => self.read(lazy, path),
        }
    }

    /// Deserializes `v`, found at `path`, into `T`. An error names the
    /// full path of the bad value; every key `T` does not read is a
    /// warning (see [`ignored`](super::raw::ignored)).
    pub(crate) fn value<T: DeserializeOwned>(
        &mut self,
        v: &Value,
        path: &str,
    ) -> Result<T, Failed> {
        let mut track = serde_path_to_error::Track::new();
        let mut unread = Vec::new();
        let de = serde_path_to_error::Deserializer::new(v, &mut track);
        let result: Result<T, _> = serde_ignored::deserialize(de, |p| {
            unread.push(match p {
                serde_ignored::Path::Map { parent, key } => {
                    super::raw::ignored(&path_of(path, parent), &key)
                }
                other => format!("unknown key {} (ignored)", path_of(path, &other)),
            })
        });
        self.warnings.extend(unread);
        result.map_err(|e| {
            // `Providers[1].name` relative to `path`; "." when it is `path`.
            let at = match track.path().to_string() {
                rel if rel == "." => path.to_owned(),
                rel if path.is_empty() || rel.starts_with('[') => format!("{path}{rel}"),
                rel => format!("{path}.{rel}"),
            };
            self.fail(&at, e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::values::Int;

    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Probe {
        max_things: Written<Int<1>>,
        inner: Option<Vec<Int<0>>>,
        lazy: Lazy<Int<0>>,
    }

    #[test]
    fn errors_carry_the_full_path_and_unread_keys_are_warnings() {
        let mut d = Diag::default();
        let v = json!({"typo": 1, "maxThings": 0});
        assert!(d.value::<Probe>(&v, "Providers[2].retry").is_err());
        assert_eq!(
            d.errors[0].to_string(),
            "Providers[2].retry.maxThings: expected a positive integer, got 0"
        );
        assert_eq!(
            d.warnings,
            ["unknown key Providers[2].retry.typo (ignored)"]
        );

        let mut d = Diag::default();
        assert!(d.value::<Probe>(&json!({"inner": [1, "x"]}), "X").is_err());
        assert_eq!(d.errors[0].path, "X.inner[1]");
        // `null` is written, not absent: it reaches the value's check.
        assert!(d.value::<Probe>(&json!({"maxThings": null}), "X").is_err());
        assert_eq!(
            d.errors[1].to_string(),
            "X.maxThings: expected a positive integer, got null"
        );
    }

    #[test]
    fn a_lazy_value_fails_only_when_read_at_its_path() {
        let mut d = Diag::default();
        let p: Probe = d.value(&json!({"lazy": "y"}), "").unwrap();
        assert!(d.errors.is_empty());
        assert!(d.read(&p.lazy, "Top.lazy").is_err());
        assert_eq!(
            d.errors[0].to_string(),
            "Top.lazy: expected a non-negative integer, got \"y\""
        );
        assert!(d.object(&p.lazy, "Top.lazy").is_err());
        assert_eq!(
            d.errors[1].to_string(),
            "Top.lazy: expected an object, got \"y\""
        );
        assert!(matches!(d.read(&Lazy::<Int<0>>::default(), "a"), Ok(None)));
    }
}
