//! The request body's top level, read without building a JSON tree: the
//! `"model"` member is read and rewritten, every other member is copied
//! byte for byte. An LLM request can carry megabytes of context; the
//! gateway validates it in one pass and allocates nothing per message.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level members of a JSON object, in order, values unparsed.
pub struct TopLevel<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// Why a body was rejected.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all (the parser's message).
    Syntax(String),
    /// Valid JSON, but not an object.
    NotAnObject,
}

struct MembersVisitor;

/// A member name borrowed from the body when it has no escapes (serde's own
/// `Cow<str>` always copies): one allocation less per member.
struct Name<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((Name(k), v)) = map.next_entry::<Name<'de>, &'de RawValue>()? {
            out.push((k, v));
        }
        Ok(out)
    }
}

impl<'a> TopLevel<'a> {
    /// Parses `bytes` as a JSON object (the whole document is validated).
    pub fn parse(bytes: &'a [u8]) -> Result<TopLevel<'a>, BodyError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let members = de
            .deserialize_map(MembersVisitor)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => BodyError::NotAnObject,
                _ => BodyError::Syntax(e.to_string()),
            })?;
        Ok(TopLevel { members })
    }

    /// The raw value of the last member named `name` (JSON keeps the last).
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// The object again, with every `name` member set to the string `value`.
    pub fn with_string(&self, name: &str, value: &str) -> Vec<u8> {
        let raw_len: usize = self
            .members
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(raw_len + value.len() + 2);
        out.push(b'{');
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Writing a &str to a Vec cannot fail.
            serde_json::to_writer(&mut out, k.as_ref()).expect("to a Vec");
            out.push(b':');
            if k == name {
                serde_json::to_writer(&mut out, value).expect("to a Vec");
            } else {
                out.extend_from_slice(v.get().as_bytes());
            }
        }
        out.push(b'}');
        out
    }
}

/// `raw` as a string when it is a JSON string: borrowed when it has no
/// escapes; `None` for any other JSON value.
pub fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Name<'_>>(raw.get())
        .ok()
        .map(|n| n.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_borrowed_and_escaped_ones_still_match() {
        let body = br#"{"model":"a,b","mo\u0064e":1}"#;
        let t = TopLevel::parse(body).unwrap();
        assert!(matches!(t.members[0].0, Cow::Borrowed("model")));
        assert!(matches!(&t.members[1].0, Cow::Owned(k) if k == "mode"));
        assert_eq!(t.get("mode").unwrap().get(), "1");
        assert!(matches!(
            string(t.get("model").unwrap()),
            Some(Cow::Borrowed("a,b"))
        ));
        assert_eq!(
            string(t.get("mode").unwrap()),
            None,
            "a number is not a string"
        );
    }

    #[test]
    fn rewrites_only_the_named_member() {
        let body = br#"{"model":"a,b","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"stream":true}"#;
        let t = TopLevel::parse(body).unwrap();
        assert_eq!(t.get("model").unwrap().get(), r#""a,b""#);
        let out = t.with_string("model", "b");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let orig: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["model"], "b");
        assert_eq!(v["messages"], orig["messages"]);
        assert_eq!(v["stream"], true);
        // Other members are copied byte for byte.
        assert!(std::str::from_utf8(&out)
            .unwrap()
            .contains(r#""content":"h\u00e9 \"x\"""#));
    }

    #[test]
    fn rejects_what_is_not_an_object() {
        assert_eq!(
            TopLevel::parse(b"[1,2]").err(),
            Some(BodyError::NotAnObject)
        );
        assert!(matches!(
            TopLevel::parse(b"{oops"),
            Err(BodyError::Syntax(_))
        ));
        assert!(matches!(
            TopLevel::parse(b"{} trailing"),
            Err(BodyError::Syntax(_))
        ));
        assert!(matches!(
            TopLevel::parse(br#"{"a":1"#),
            Err(BodyError::Syntax(_))
        ));
    }

    #[test]
    fn escaped_keys_are_matched_decoded() {
        let t = TopLevel::parse(br#"{"mod\u0065l":"x"}"#).unwrap();
        assert_eq!(t.get("model").unwrap().get(), r#""x""#);
    }
}
