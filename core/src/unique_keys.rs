//! JSON read with every object's keys unique, at any depth: a key given
//! twice is an error, never "the last one wins".
//!
//! `serde_json::Value` keeps the last of two equal keys. Another parser on
//! the way (a proxy, the agent's own audit log) may keep the first, and
//! then what it saw and what was decided differ, for instance on a request
//! context of `{"user_approved": false, "user_approved": true}`. So a
//! request's `context` and a policy's `metadata` are read with this, and
//! a duplicated key is refused as a duplicated top-level field is.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Deserializes a JSON object whose keys are unique at every depth.
///
/// # Errors
/// `duplicate key` naming the key, or the deserializer's own errors.
pub fn object<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    d.deserialize_map(ObjectVisitor)
}

/// Deserializes an optional JSON value (absent or `null`: `None`) whose
/// objects' keys are unique at every depth.
///
/// # Errors
/// As [`object`].
pub fn optional_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(match UniqueValue::deserialize(d)?.0 {
        Value::Null => None,
        v => Some(v),
    })
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let UniqueValue(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

/// Any JSON value, its objects' keys unique.
struct UniqueValue(Value);

impl<'de> Deserialize<'de> for UniqueValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = UniqueValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E: Error>(self, v: bool) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Bool(v)))
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Number(v.into())))
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Number(v.into())))
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::String(v.to_owned())))
    }
    fn visit_string<E: Error>(self, v: String) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::String(v)))
    }
    fn visit_unit<E: Error>(self) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Null))
    }
    fn visit_none<E: Error>(self) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<UniqueValue, D::Error> {
        UniqueValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueValue, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(UniqueValue(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<UniqueValue, A::Error> {
        ObjectVisitor
            .visit_map(map)
            .map(|m| UniqueValue(Value::Object(m)))
    }
}
