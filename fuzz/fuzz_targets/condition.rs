//! `Condition::parse` on arbitrary text; whatever parses is evaluated
//! against fixed facts.
//!
//! Oracles (beyond "never panics"):
//! - parsing is deterministic: the same text gives equal results twice;
//! - an error's column is a 1-based character column inside the text (or
//!   one past its end);
//! - evaluation is deterministic, and `not (X)` holds exactly when `X` does
//!   not, `(X) and (X)` / `(X) or (X)` hold exactly when `X` does (checked
//!   whenever the wrapped text still parses: wrapping adds one nesting level).
#![no_main]

use std::sync::OnceLock;

use lexecon_core::condition::{Condition, Facts, TermValue};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

static CONTEXT: OnceLock<Map<String, Value>> = OnceLock::new();

const CLASSES: [TermValue<'static>; 2] = [
    TermValue {
        id: "data:pii",
        name: "pii",
    },
    TermValue {
        id: "data:financial",
        name: "financial",
    },
];

fn context() -> &'static Map<String, Value> {
    CONTEXT.get_or_init(|| {
        let v = json!({
            "purpose": "support",
            "user_approved": true,
            "denied": false,
            "user_id": "u-42",
            "n": 3,
            "neg": -7,
            "f": 2.5,
            "big": 18446744073709551615u64,
            "nothing": null,
            "tags": ["a", "b", 1, true, null, ["nested"]],
            "empty": [],
            "obj": {"k": "v"},
            "unicode": "é\u{1F600}",
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    })
}

fn facts() -> Facts<'static> {
    Facts::example(4, &CLASSES, context())
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let first = Condition::parse(src);
    let second = Condition::parse(src);
    assert_eq!(first, second, "parsing is not deterministic");

    let cond = match first {
        Ok(c) => c,
        Err(e) => {
            let chars = src.chars().count();
            assert!(
                e.column >= 1 && e.column <= chars + 1,
                "error column {} outside 1..={} for a {chars}-character condition: {e}",
                e.column,
                chars + 1
            );
            return;
        }
    };
    let f = facts();
    let holds = cond.holds(&f);
    assert_eq!(holds, cond.holds(&f), "evaluation is not deterministic");

    if let Ok(neg) = Condition::parse(&format!("not ({src})")) {
        assert_eq!(neg.holds(&f), !holds, "`not (X)` is not the negation of X");
    }
    if let Ok(both) = Condition::parse(&format!("({src}) and ({src})")) {
        assert_eq!(both.holds(&f), holds, "`(X) and (X)` differs from X");
    }
    if let Ok(either) = Condition::parse(&format!("({src}) or ({src})")) {
        assert_eq!(either.holds(&f), holds, "`(X) or (X)` differs from X");
    }
});
