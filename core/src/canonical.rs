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

/// Appends `map`'s canonical JSON.
pub fn write_object(out: &mut Vec<u8>, map: &serde_json::Map<String, Value>) {
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
        write_u64(out, u);
    } else if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= EXACT) {
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        let f = n.as_f64().unwrap_or(0.0);
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format(f).as_bytes());
    }
}

/// Appends `s` as a canonical JSON string: only `"`, `\\` and control
/// characters are escaped (`\b \t \n \f \r`, else `\u00xx`, lowercase hex),
/// exactly as `serde_json` writes them.
///
/// Runs of bytes that need no escape are found eight at a time and copied
/// whole: most of a decision record's text is hex, ids and plain words.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        // A chunk with something to escape, or the tail: byte by byte.
        let end = (i + 8).min(bytes.len());
        while i < end {
            if let Some(&b) = bytes.get(i)
                && (b < 0x20 || b == b'"' || b == b'\\')
            {
                out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
                write_escape(out, b);
                start = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// Whether any of the eight bytes in `w` is a control character, `"` or `\\`
/// (exact: the SWAR "has zero byte" and "has byte below n" tests never miss
/// and, asked only "any?", never report a byte that is not there).
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
    below_space || has_zero(w ^ (ONES * u64::from(b'"'))) || has_zero(w ^ (ONES * u64::from(b'\\')))
}

fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x09 => out.extend_from_slice(b"\\t"),
        0x0a => out.extend_from_slice(b"\\n"),
        0x0c => out.extend_from_slice(b"\\f"),
        0x0d => out.extend_from_slice(b"\\r"),
        _ => {
            out.extend_from_slice(b"\\u00");
            for nibble in [b >> 4, b & 0xf] {
                out.push(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'));
            }
        }
    }
}

/// Appends an unsigned integer in decimal (canonical for values up to 2^53).
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(u64_digits(n, &mut [0u8; 20]));
}

/// The decimal digits of `n`, written at the end of `buf`.
pub fn u64_digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(d) = buf.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.get(at..).unwrap_or_default()
}

/// Appends a JSON array of strings.
pub fn write_string_array<S: AsRef<str>>(out: &mut Vec<u8>, items: &[S]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, item.as_ref());
    }
    out.push(b']');
}

/// Text with everything that needs escaping, multi-byte UTF-8 and plain runs
/// longer than [`write_string`]'s 8-byte chunks: the strings the proptests of
/// the hand-written JSON writers (decision records, decisions) are fed.
#[cfg(test)]
pub(crate) fn escapable_text() -> impl proptest::strategy::Strategy<Value = String> {
    "([a-z0-9_:]{0,12}|[\"\\\\\n\t\u{0}-\u{1f}\u{7f}é\u{1F600}]){0,6}"
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
    fn strings_match_serde_json_byte_for_byte() {
        // Every position of every escapable byte in and around the 8-byte
        // chunks, beside multi-byte UTF-8.
        let specials = [
            '"',
            '\\',
            '\n',
            '\u{0}',
            '\u{1f}',
            '\u{7f}',
            'é',
            '\u{1F600}',
            'a',
        ];
        for len in 0..20 {
            for at in 0..len {
                for c in specials {
                    let s: String = (0..len).map(|i| if i == at { c } else { 'x' }).collect();
                    let mut ours = Vec::new();
                    write_string(&mut ours, &s);
                    assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
                }
            }
        }
        for b in 0u8..=0x7f {
            let s = format!("0123456{}89abcdef", char::from(b));
            let mut ours = Vec::new();
            write_string(&mut ours, &s);
            assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "byte {b:#x}");
        }
    }

    #[test]
    fn integers() {
        for n in [0, 7, 10, 99, 1_795_525_681, 1 << 53, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
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
