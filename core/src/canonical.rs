//! RFC 8785 (JSON Canonicalization Scheme) serialisation.
//!
//! Every hash and signature in Lexecon is taken over canonical bytes, so any
//! implementation in any language can recompute them: object keys sorted by
//! their UTF-16 code units, no whitespace, strings escaped minimally, numbers
//! in ECMAScript `Number.prototype.toString` form (via `ryu-js`).

use serde::Serialize;
use serde_json::Value;

/// Serialises `value` to canonical JSON bytes.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value);
    out
}

/// Serialises a JSON object to canonical bytes (without cloning it into a
/// [`Value`]).
pub fn to_vec_object(map: &serde_json::Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_object(&mut out, map);
    out
}

/// Serialises any `Serialize` value to canonical JSON bytes.
///
/// # Errors
/// When `value` cannot be represented as JSON (a map with non-string keys).
pub fn to_vec_from<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    Ok(to_vec(&serde_json::to_value(value)?))
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut Vec<u8>, map: &serde_json::Map<String, Value>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    // `serde_json::Map` iterates in byte order, which is UTF-16 order unless
    // keys mix supplementary characters with U+E000..U+FFFF (UTF-8 lead
    // bytes 0xEE/0xEF) — or if some crate enabled `preserve_order`.
    let byte_sorted = entries
        .windows(2)
        .all(|w| w.first().map(|a| a.0) < w.get(1).map(|b| b.0));
    let risky = entries.iter().any(|(k, _)| k.bytes().any(|b| b >= 0xEE));
    if !byte_sorted || risky {
        entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    }
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, key);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    // Integers that an IEEE double holds exactly print as themselves; every
    // other number goes through the ECMAScript algorithm, as RFC 8785 says.
    const EXACT: u64 = 1 << 53;
    if let Some(u) = n.as_u64().filter(|u| *u <= EXACT) {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT) {
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        let f = n.as_f64().unwrap_or(0.0);
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format(f).as_bytes());
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x09 => Some(b"\\t"),
            0x0a => Some(b"\\n"),
            0x0c => Some(b"\\f"),
            0x0d => Some(b"\\r"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => {
                out.extend_from_slice(b"\\u00");
                for nibble in [b >> 4, b & 0xf] {
                    out.push(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'));
                }
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(to_vec(&v)).unwrap()
    }

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        assert_eq!(
            canon(json!({"b": 1, "a": [true, null, "x"]})),
            r#"{"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn sorts_by_utf16_code_units_not_bytes() {
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16, so it sorts
        // before U+E000; in UTF-8 (F0 9F… vs EE 80…) it would sort after.
        let v = json!({"\u{E000}": 2, "\u{1F600}": 1});
        assert_eq!(canon(v), "{\"\u{1F600}\":1,\"\u{E000}\":2}");
    }

    #[test]
    fn escapes_minimally() {
        assert_eq!(
            canon(json!("a\"b\\c\n\u{1}/é\u{7f}")),
            "\"a\\\"b\\\\c\\n\\u0001/é\u{7f}\""
        );
    }

    #[test]
    fn numbers_follow_ecmascript() {
        // Vectors from RFC 8785 appendix B.
        let cases = [
            (json!(1e30), "1e+30"),
            (json!(4.5), "4.5"),
            (json!(0.002), "0.002"),
            (json!(1e-7), "1e-7"),
            (json!(-0.0), "0"),
            (json!(333333333.3333333), "333333333.3333333"),
            (json!(9007199254740992u64), "9007199254740992"),
            (json!(18446744073709551615u64), "18446744073709552000"),
            (json!(-5), "-5"),
        ];
        for (v, want) in cases {
            assert_eq!(canon(v), want);
        }
    }
}
