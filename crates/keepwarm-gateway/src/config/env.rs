//! `$VAR` and `${VAR}` in config strings, replaced from the environment.

/// Replaces every `$NAME` and `${NAME}` (NAME = `[A-Za-z_][A-Za-z0-9_]*`)
/// in `s` with `env(NAME)`, in one pass (replacements are not expanded
/// again). A `$` not followed by a name, or `${` without a valid name and
/// `}`, stays literal. `Err(NAME)` names the first variable that is unset.
pub(crate) fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, used) = match after.strip_prefix('{') {
            Some(inner) => match inner.find('}') {
                Some(end) if is_name(&inner[..end]) => (&inner[..end], end + 2),
                _ => ("", 0),
            },
            None => {
                let len = name_len(after);
                (&after[..len], len)
            }
        };
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(&env(name).ok_or_else(|| name.to_owned())?);
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Length in bytes of the variable name at the start of `s` (0 if none).
fn name_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        b.iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count()
    } else {
        0
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && name_len(s) == s.len()
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST_A" => Some("a.example".into()),
            "K" => Some("v$K".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms_anywhere() {
        let got = expand("https://${HOST_A}:8443/v1/messages", &env).unwrap();
        assert_eq!(got, "https://a.example:8443/v1/messages");
        assert_eq!(expand("$HOST_A/x", &env).unwrap(), "a.example/x");
        assert_eq!(expand("$K$K", &env).unwrap(), "v$Kv$K"); // one pass
    }

    #[test]
    fn lone_dollars_stay_literal() {
        for s in ["$", "a$", "$ 5", "$1", "${", "${1x}", "${A", "$$", "€$€"] {
            assert_eq!(expand(s, &env).unwrap(), s);
        }
    }

    #[test]
    fn unset_variable_is_named() {
        assert_eq!(expand("x${NOPE}y", &env).unwrap_err(), "NOPE");
        assert_eq!(expand("$NOPE_2", &env).unwrap_err(), "NOPE_2");
    }
}
