//! Decision requests: the guide's fields, validated before anything else.
//!
//! Unknown fields are rejected (a typo such as `risk_levle` must not pass
//! unnoticed), required fields must be present, and every size is bounded
//! (see the `MAX_*` constants) so a hostile request cannot exhaust memory.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::policy::Mode;

/// Longest `actor`, `tool`, a data class or a `request_id`, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest `proposed_action` or `user_intent`, in bytes.
pub const MAX_TEXT_LEN: usize = 4096;
/// Most `data_classes` in one request.
pub const MAX_DATA_CLASSES: usize = 64;
/// Largest `context`, as compact JSON, in bytes.
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;
/// Deepest nesting inside `context`.
pub const MAX_CONTEXT_DEPTH: usize = 16;
/// Most requests in one batch.
pub const MAX_BATCH: usize = 1000;

/// A request to run a tool, as the guide defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    expecting = "a decision request (a JSON object)"
)]
pub struct DecisionRequest {
    /// Caller's id for the request; generated (`req_…`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who wants to act (`model`, or a term id such as `actor:model`).
    pub actor: String,
    /// What the agent says it will do (`Execute web_search`).
    pub proposed_action: String,
    /// The tool to call (`web_search`).
    pub tool: String,
    /// Why the user wants it (`Research`).
    pub user_intent: String,
    /// 1 (harmless) to 5 (critical).
    #[serde(deserialize_with = "terms::risk_level")]
    pub risk_level: u8,
    /// Data classes touched, in addition to those of the tool's term.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "terms::strings"
    )]
    pub data_classes: Vec<String>,
    /// Free-form facts for conditions (`user_approved`, `purpose`, `user_id`).
    #[serde(
        default,
        skip_serializing_if = "Map::is_empty",
        deserialize_with = "crate::unique_keys::object"
    )]
    pub context: Map<String, Value>,
    /// Ask for strict evaluation; a request can never make a policy looser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_mode: Option<Mode>,
    /// Requested capability-token lifetime in seconds (capped by the node).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "terms::seconds"
    )]
    pub token_ttl: Option<u64>,
}
crate::object_only::object_only!(DecisionRequest, serialize);

/// A request that cannot be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// The field at fault (`risk_level`, `context.note`), or `request`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for RequestError {}

fn err(field: &str, message: impl Into<String>) -> RequestError {
    RequestError {
        field: field.to_string(),
        message: message.into(),
    }
}

impl DecisionRequest {
    /// A request with the four required texts and a risk level.
    pub fn new(
        actor: &str,
        proposed_action: &str,
        tool: &str,
        user_intent: &str,
        risk_level: u8,
    ) -> Self {
        Self {
            request_id: None,
            actor: actor.into(),
            proposed_action: proposed_action.into(),
            tool: tool.into(),
            user_intent: user_intent.into(),
            risk_level,
            data_classes: Vec::new(),
            context: Map::new(),
            policy_mode: None,
            token_ttl: None,
        }
    }

    /// Parses a request from JSON text; errors name the field.
    ///
    /// # Errors
    /// [`RequestError`] for malformed JSON, unknown or missing fields, wrong
    /// types, and everything [`DecisionRequest::validate`] rejects.
    pub fn from_json(text: &str) -> Result<Self, RequestError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let req: Self = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let inner = e.inner();
            // Malformed JSON keeps its position: the text is the user's.
            let message = if inner.is_syntax() || inner.is_eof() {
                inner.to_string()
            } else {
                strip_position(inner)
            };
            let path = crate::object_only::named_path(e.path());
            let path = if path.is_empty() { "." } else { &path };
            if let Some(e) = path
                .strip_prefix("context.")
                .and_then(|in_context| past_parser_depth(&message, in_context))
            {
                return e;
            }
            RequestError {
                field: error_field(path, &message),
                message,
            }
        })?;
        de.end().map_err(|e| err("request", strip_position(&e)))?;
        req.validate()?;
        Ok(req)
    }

    /// Parses a request from a JSON value.
    ///
    /// # Errors
    /// As [`DecisionRequest::from_json`].
    pub fn from_value(value: Value) -> Result<Self, RequestError> {
        let req: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let message = e.inner().to_string();
            RequestError {
                field: error_field(&e.path().to_string(), &message),
                message,
            }
        })?;
        req.validate()?;
        Ok(req)
    }

    /// Checks required fields, ranges and sizes.
    ///
    /// # Errors
    /// The first [`RequestError`] found.
    pub fn validate(&self) -> Result<(), RequestError> {
        for (field, value, max) in [
            ("actor", &self.actor, MAX_NAME_LEN),
            ("tool", &self.tool, MAX_NAME_LEN),
            ("proposed_action", &self.proposed_action, MAX_TEXT_LEN),
            ("user_intent", &self.user_intent, MAX_TEXT_LEN),
        ] {
            if value.trim().is_empty() {
                return Err(err(field, "must not be empty"));
            }
            if value.len() > max {
                return Err(err(field, format!("is longer than {max} bytes")));
            }
        }
        if let Some(id) = &self.request_id
            && (id.is_empty() || id.len() > MAX_NAME_LEN)
        {
            return Err(err(
                "request_id",
                format!("must be 1 to {MAX_NAME_LEN} bytes"),
            ));
        }
        if self.token_ttl == Some(0) {
            return Err(err("token_ttl", "must be at least 1 second"));
        }
        if !(1..=5).contains(&self.risk_level) {
            return Err(err(
                "risk_level",
                format!("must be between 1 and 5, got {}", self.risk_level),
            ));
        }
        if self.data_classes.len() > MAX_DATA_CLASSES {
            return Err(err(
                "data_classes",
                format!("has more than {MAX_DATA_CLASSES} entries"),
            ));
        }
        for (i, c) in self.data_classes.iter().enumerate() {
            if c.is_empty() || c.len() > MAX_NAME_LEN {
                return Err(err(
                    &format!("data_classes[{i}]"),
                    format!("must be 1 to {MAX_NAME_LEN} bytes"),
                ));
            }
        }
        if json_size(&self.context) > MAX_CONTEXT_BYTES {
            return Err(err(
                "context",
                format!("is larger than {MAX_CONTEXT_BYTES} bytes"),
            ));
        }
        for (key, value) in &self.context {
            if depth(value) > MAX_CONTEXT_DEPTH {
                return Err(too_deep(key));
            }
        }
        Ok(())
    }
}

/// Bytes of `value`'s compact JSON, counted without keeping them.
fn json_size(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The field a parse error is about: its path, or for an error about the
/// whole object (a duplicated field) the field it names, else `request`.
/// The error for the `context` member `key` nested deeper than
/// [`MAX_CONTEXT_DEPTH`].
fn too_deep(key: &str) -> RequestError {
    err(
        &format!("context.{key}"),
        format!("nests deeper than {MAX_CONTEXT_DEPTH} levels"),
    )
}

/// serde_json stops at 128 levels, before `validate` can say how deep a
/// context may be: for its "recursion limit exceeded" at `path` (inside the
/// context: `a[0][0]…`), the error `validate` gives ([`too_deep`]).
fn past_parser_depth(message: &str, path: &str) -> Option<RequestError> {
    if !message.starts_with("recursion limit exceeded") {
        return None;
    }
    let key = path.split(['.', '[']).next().filter(|k| !k.is_empty())?;
    Some(too_deep(key))
}

fn error_field(path: &str, message: &str) -> String {
    if path != "." {
        return path.to_string();
    }
    // serde names a duplicate or missing field only in its message.
    ["duplicate field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
        .map_or_else(|| "request".to_string(), str::to_string)
}

fn strip_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    msg.strip_suffix(&suffix)
        .map_or(msg.clone(), str::to_string)
}

/// Parses a request's `context` given as JSON text (the WIT interface
/// carries it so): a JSON object whose keys are unique at every depth, as
/// [`DecisionRequest::from_json`] requires of it. Errors name the field
/// (`context`, `context.a`).
///
/// # Errors
/// [`RequestError`] for text that is not such an object.
pub fn context_from_json(text: &str) -> Result<Map<String, Value>, RequestError> {
    struct Context(Map<String, Value>);
    impl<'de> Deserialize<'de> for Context {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            crate::unique_keys::object(d).map(Context)
        }
    }
    let fail = |path: &str, e: &serde_json::Error| {
        if let Some(e) = past_parser_depth(&e.to_string(), path) {
            return e;
        }
        RequestError {
            field: if path.is_empty() || path == "." {
                "context".to_string()
            } else {
                format!("context.{path}")
            },
            message: format!("must be the text of a JSON object: {e}"),
        }
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let Context(map) = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| fail(&crate::object_only::named_path(e.path()), e.inner()))?;
    de.end().map_err(|e| fail("", &e))?;
    Ok(map)
}

/// Fields read from JSON with errors in the request's terms (`expected an
/// integer from 1 to 5`, `expected a list of strings`), not Rust's
/// (`expected u8`, `expected a sequence`).
mod terms {
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{Deserializer, Error, SeqAccess, Unexpected, Visitor};

    /// `data_classes`: a list of strings.
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        struct Strings;
        impl<'de> Visitor<'de> for Strings {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(s) = seq.next_element()? {
                    out.push(s);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Strings)
    }

    /// A whole number from 0 to `max`; `expecting` says what the field takes.
    struct Whole {
        max: u64,
        expecting: &'static str,
    }

    impl Visitor<'_> for Whole {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
            if v > self.max {
                return Err(E::invalid_value(Unexpected::Unsigned(v), &self));
            }
            Ok(v)
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
            }
        }
    }

    /// `risk_level`: 0 to 255 here, 1 to 5 once validated; the message
    /// names the range that is valid.
    pub fn risk_level<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let v = d.deserialize_u64(Whole {
            max: u8::MAX.into(),
            expecting: "an integer from 1 to 5",
        })?;
        u8::try_from(v).map_err(|_| D::Error::custom("risk_level out of range"))
    }

    /// A whole number of seconds, or `null` for none.
    pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        struct Seconds(u64);
        impl<'de> Deserialize<'de> for Seconds {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_u64(Whole {
                    max: u64::MAX,
                    expecting: "a whole number of seconds",
                })
                .map(Seconds)
            }
        }
        Ok(Option::<Seconds>::deserialize(d)?.map(|s| s.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_nested_past_the_parsers_limit_is_refused_as_too_deep() {
        for (levels, open, close) in [
            (20, r#"{"a": "#, "}"),
            (127, r#"{"a": "#, "}"),
            (200, r#"{"a": "#, "}"),
            (5000, r#"{"a": "#, "}"),
            (200, "[", "]"),
            (5000, "[", "]"),
        ] {
            let text = format!(
                r#"{{"actor": "m", "proposed_action": "p", "tool": "t", "user_intent": "u", "risk_level": 1, "context": {{"deep": {}1{}}}}}"#,
                open.repeat(levels),
                close.repeat(levels)
            );
            let e = DecisionRequest::from_json(&text).unwrap_err();
            assert_eq!(e.field, "context.deep", "{levels} levels: {e:?}");
            assert_eq!(e.message, "nests deeper than 16 levels", "{levels} levels");
            // The same through the component's context-as-text path.
            let context = format!(
                r#"{{"deep": {}1{}}}"#,
                open.repeat(levels),
                close.repeat(levels)
            );
            if let Err(e) = context_from_json(&context) {
                assert_eq!(e.field, "context.deep", "{levels} levels: {e:?}");
                assert_eq!(e.message, "nests deeper than 16 levels");
            }
        }
    }

    #[test]
    fn a_token_ttl_of_zero_is_refused() {
        let mut r = DecisionRequest::new("model", "a", "t", "u", 1);
        r.token_ttl = Some(0);
        let e = r.validate().unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("token_ttl", "must be at least 1 second")
        );
        r.token_ttl = Some(1);
        assert!(r.validate().is_ok());
    }

    #[test]
    fn a_key_twice_in_context_is_refused_at_any_depth() {
        let base = r#""actor": "model", "proposed_action": "a", "tool": "t", "user_intent": "u", "risk_level": 1"#;
        for (context, field) in [
            (
                r#"{"user_approved": false, "user_approved": true}"#,
                "context",
            ),
            (r#"{"a": {"b": 1, "b": 2}}"#, "context.a"),
            (r#"{"a": [{"b": 1}, {"c": 1, "c": 1}]}"#, "context.a[1]"),
        ] {
            let e = DecisionRequest::from_json(&format!("{{{base}, \"context\": {context}}}"))
                .unwrap_err();
            assert!(e.message.starts_with("duplicate key `"), "{e:?}");
            assert_eq!(e.field, field, "{context}");
            // The batch path (the npm glue) refuses it too.
            let batch = format!("[{{{base}, \"context\": {context}}}]");
            assert!(serde_json::from_str::<Vec<DecisionRequest>>(&batch).is_err());
        }
        // Equal keys in different objects, every JSON type: as before.
        let ok = format!(
            r#"{{{base}, "context": {{"a": {{"k": 1}}, "b": {{"k": [true, null, -1, 2.5, "s"]}}}}}}"#
        );
        let r = DecisionRequest::from_json(&ok).unwrap();
        assert_eq!(
            Value::Object(r.context),
            serde_json::json!({"a": {"k": 1}, "b": {"k": [true, null, -1, 2.5, "s"]}})
        );
        // As text (the WIT interface's form), the same rule.
        let e =
            context_from_json(r#"{"user_approved": false, "user_approved": true}"#).unwrap_err();
        assert_eq!(e.field, "context", "{e}");
        assert!(e.message.contains("duplicate key `user_approved`"), "{e}");
        let e = context_from_json(r#"{"x": {"a": 1, "a": 2}}"#).unwrap_err();
        assert_eq!(e.field, "context.x", "{e}");
        assert!(context_from_json("[1]").is_err());
        assert!(context_from_json("{} x").is_err());
        assert_eq!(
            Value::Object(context_from_json(r#"{"a": {"k": [1, {"k": 2}]}}"#).unwrap()),
            serde_json::json!({"a": {"k": [1, {"k": 2}]}})
        );
        let e = DecisionRequest::from_json(&format!("{{{base}, \"context\": [1]}}")).unwrap_err();
        assert_eq!(e.field, "context");
        assert!(e.message.contains("expected a JSON object"), "{e:?}");
    }

    #[test]
    fn malformed_json_names_its_position() {
        let e = DecisionRequest::from_json("{\n  \"actor\": \"model\",\n").unwrap_err();
        assert_eq!(e.field, "request");
        assert_eq!(e.message, "EOF while parsing a value at line 3 column 0");
        let e =
            DecisionRequest::from_json(r#"{"actor": "model", "context": {"a": tru}}"#).unwrap_err();
        assert_eq!(e.field, "context.a");
        assert_eq!(e.message, "expected ident at line 1 column 40");
    }

    #[test]
    fn an_array_is_not_a_request() {
        // serde's derive would fill the fields by position.
        let positional = r#"["req_1", "model", "Execute web_search", "web_search", "Research", 1]"#;
        let e = DecisionRequest::from_json(positional).unwrap_err();
        assert_eq!(e.field, "request");
        assert!(
            e.message
                .contains("expected a decision request (a JSON object)"),
            "{e}"
        );
        let value: Value = serde_json::from_str(positional).unwrap();
        let e = DecisionRequest::from_value(value).unwrap_err();
        assert!(e.message.contains("invalid type: sequence"), "{e}");
        // The untracked paths the npm glue and the conformance runner take.
        let batch = format!("[{positional}]");
        let e = serde_json::from_str::<Vec<DecisionRequest>>(&batch).unwrap_err();
        assert!(e.to_string().contains("invalid type: sequence"), "{e}");
        // An object still parses, and serialises as before.
        let ok = r#"{"actor": "model", "proposed_action": "p", "tool": "t", "user_intent": "i", "risk_level": 1}"#;
        let r: DecisionRequest = serde_json::from_str(ok).unwrap();
        assert_eq!(r, DecisionRequest::new("model", "p", "t", "i", 1));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"actor":"model","proposed_action":"p","tool":"t","user_intent":"i","risk_level":1}"#
        );
    }

    #[test]
    fn parses_the_guides_request() {
        let r = DecisionRequest::from_json(
            r#"{"request_id": "req_1", "actor": "model", "proposed_action": "Execute web_search",
                "tool": "web_search", "user_intent": "Research", "risk_level": 1, "policy_mode": "strict"}"#,
        )
        .unwrap();
        assert_eq!(r.tool, "web_search");
        assert_eq!(r.policy_mode, Some(Mode::Strict));
    }

    #[test]
    fn missing_field_is_named() {
        let e = DecisionRequest::from_json(
            r#"{"actor": "model", "tool": "t", "user_intent": "u", "risk_level": 1}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("missing field `proposed_action`"),
            "{e}"
        );
        assert_eq!(e.field, "proposed_action");
        let value: Value = serde_json::json!({"actor": "model", "proposed_action": "p", "tool": "t", "user_intent": "u"});
        assert_eq!(
            DecisionRequest::from_value(value).unwrap_err().field,
            "risk_level"
        );
    }

    #[test]
    fn out_of_range_and_unknown_fields() {
        let base = r#""actor": "model", "proposed_action": "p", "tool": "t", "user_intent": "u""#;
        let e = DecisionRequest::from_json(&format!("{{{base}, \"risk_level\": 9}}")).unwrap_err();
        assert_eq!(e.field, "risk_level");
        let e =
            DecisionRequest::from_json(&format!("{{{base}, \"risk_level\": 300}}")).unwrap_err();
        assert_eq!(e.field, "risk_level");
        // In the request's terms, not Rust's (`expected u8`).
        for (value, message) in [
            (
                "300",
                "invalid value: integer `300`, expected an integer from 1 to 5",
            ),
            (
                "-1",
                "invalid value: integer `-1`, expected an integer from 1 to 5",
            ),
            (
                "1.5",
                "invalid type: floating point `1.5`, expected an integer from 1 to 5",
            ),
            (
                "\"high\"",
                "invalid type: string \"high\", expected an integer from 1 to 5",
            ),
        ] {
            let e = DecisionRequest::from_json(&format!("{{{base}, \"risk_level\": {value}}}"))
                .unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.message.as_str()),
                ("risk_level", message)
            );
        }
        let with = |extra: &str| {
            DecisionRequest::from_json(&format!("{{{base}, \"risk_level\": 1{extra}}}"))
        };
        let e = with(r#", "token_ttl": -5"#).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (
                "token_ttl",
                "invalid value: integer `-5`, expected a whole number of seconds"
            )
        );
        let e = with(r#", "token_ttl": "60""#).unwrap_err();
        assert!(
            e.message.ends_with("expected a whole number of seconds"),
            "{e}"
        );
        assert_eq!(with(r#", "token_ttl": null"#).unwrap().token_ttl, None);
        assert_eq!(with(r#", "token_ttl": 60"#).unwrap().token_ttl, Some(60));
        assert_eq!(with("").unwrap().token_ttl, None);
        let e = with(r#", "data_classes": "pii""#).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (
                "data_classes",
                "invalid type: string \"pii\", expected a list of strings"
            )
        );
        let e = with(r#", "data_classes": ["pii", 1]"#).unwrap_err();
        assert_eq!(e.field, "data_classes[1]", "{e}");
        assert_eq!(
            with(r#", "data_classes": ["pii", "financial"]"#)
                .unwrap()
                .data_classes,
            ["pii", "financial"]
        );
        let e = with(r#", "context": [1]"#).unwrap_err();
        assert!(e.message.ends_with("expected a JSON object"), "{e}");
        let e = DecisionRequest::from_json(&format!(
            "{{{base}, \"risk_level\": 1, \"risk_levle\": 1}}"
        ))
        .unwrap_err();
        assert!(e.message.contains("unknown field `risk_levle`"));
        let e =
            DecisionRequest::from_json(&format!("{{{base}, \"risk_level\": \"1\"}}")).unwrap_err();
        assert_eq!(e.field, "risk_level");
        let e =
            DecisionRequest::from_json(&format!("{{{base}, \"risk_level\": 1}} x")).unwrap_err();
        assert_eq!(e.field, "request");
    }

    #[test]
    fn sizes_are_bounded() {
        let mut r = DecisionRequest::new("model", "p", "t", "u", 1);
        r.actor = "a".repeat(MAX_NAME_LEN + 1);
        assert_eq!(r.validate().unwrap_err().field, "actor");
        let mut r = DecisionRequest::new("model", "p", "t", "u", 1);
        let mut deep = Value::Null;
        for _ in 0..40 {
            deep = Value::Array(vec![deep]);
        }
        r.context.insert("x".into(), deep);
        assert_eq!(r.validate().unwrap_err().field, "context.x");
    }
}
