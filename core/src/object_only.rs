//! Structs that users write as JSON are read from JSON objects only.
//!
//! serde's derived `Deserialize` also fills a struct from a JSON array, by
//! position: `["model", "Execute web_search", …]` would be a decision
//! request and `["name", "1.0", "permissive"]` a policy. Lexecon's inputs
//! are objects with named fields, so such an array must be refused, not
//! guessed at. [`object_only!`] gives a struct derived with
//! `#[serde(remote = "Self")]` a `Deserialize` impl that asks for a map
//! ([`ObjectOnly`]), so serde_json (and `serde_json::Value`) answer an
//! array with `invalid type: sequence, expected …`. Objects take exactly
//! the path they took before: no cost on the decision path.
//!
//! [`named_path`] is where such a parse failed, as the user's errors name it.

use serde::de::{Deserializer, Visitor};

/// A deserializer that reads a struct as a map, never as a sequence. It is
/// handed only to the derived function of one struct, which asks for
/// nothing but `deserialize_struct`; everything else goes to the inner
/// deserializer as `deserialize_any`.
pub(crate) struct ObjectOnly<D>(pub(crate) D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// `object_only!(Type)`: implements `Deserialize` for a struct whose derive
/// carries `#[serde(remote = "Self")]` (which turns the derived code into
/// an inherent `Type::deserialize`), reading it from objects only. A type
/// that also derives `Serialize` gets its `Serialize` impl forwarded too
/// (`object_only!(Type, serialize)`), since `remote` applies to both.
macro_rules! object_only {
    ($t:ty) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize(crate::object_only::ObjectOnly(d))
            }
        }
    };
    ($t:ty, serialize) => {
        crate::object_only::object_only!($t);
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$t>::serialize(self, s)
            }
        }
    };
}
pub(crate) use object_only;

/// The path of a parse error without the `?` segments serde_path_to_error
/// writes for places it could not name (inside a value that did not parse):
/// `relations[0].?` is `relations[0]`, `?` is empty.
pub(crate) fn named_path(path: &serde_path_to_error::Path) -> String {
    let path = path.to_string();
    match path.find('?') {
        Some(at) => path
            .get(..at)
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_string(),
        None => path,
    }
}
