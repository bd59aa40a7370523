//! `Policy::parse` on arbitrary text.
//!
//! Oracles (beyond "never panics"):
//! - an error's line, when given, is 1-based, and comes with a column;
//! - a policy that loads reloads from its own canonical JSON (as a node
//!   restoring it from the ledger does) with the same hash and canonical
//!   bytes, and `Policy::from_value` of the same document agrees;
//! - the loaded policy's lookups and constraints can be exercised.
#![no_main]

use lexecon_core::Policy;
use lexecon_core::condition::Facts;
use lexecon_core::policy::TermKind;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match Policy::parse(text) {
        Ok(p) => p,
        Err(e) => {
            // serde_json reports column 0 for an error at the very start of a
            // line (e.g. an empty policy: line 1, column 0), so only the line
            // is checked to be 1-based.
            assert!(e.line.is_none_or(|l| l >= 1), "line 0 in {e:?}");
            assert_eq!(e.line.is_some(), e.column.is_some(), "{e:?}");
            return;
        }
    };

    // Canonical bytes are valid UTF-8 JSON and their hash is the policy hash.
    let canonical = std::str::from_utf8(&policy.canonical).expect("canonical policy is not UTF-8");
    assert_eq!(
        lexecon_core::hash::sha256_hex(&policy.canonical),
        policy.hash
    );
    let again = Policy::parse(canonical)
        .unwrap_or_else(|e| panic!("canonical form of a loaded policy does not load: {e}"));
    assert_eq!(
        again.hash, policy.hash,
        "reloading the canonical form changes the hash"
    );
    assert_eq!(again.canonical, policy.canonical);
    assert_eq!(again.counts(), policy.counts());

    let value: Value = serde_json::from_str(text).expect("Policy::parse accepted invalid JSON");
    let via_value = Policy::from_value(&value)
        .unwrap_or_else(|e| panic!("Policy::from_value rejects what Policy::parse accepts: {e}"));
    assert_eq!(via_value.hash, policy.hash);

    // Exercise the loaded policy.
    let counts = policy.counts();
    for i in 0..counts.terms.min(64) {
        let term = policy.term(i).expect("term index out of range");
        assert_eq!(policy.resolve(term.kind, &term.id), Some(i));
    }
    let actor = policy.resolve(TermKind::Actor, "model");
    let action = policy.resolve(TermKind::Action, "read");
    let classes: Vec<usize> = (0..counts.terms.min(8)).collect();
    for r in policy.candidates(actor, action, &classes) {
        assert!((r as usize) < counts.relations);
    }
    let ctx = Map::new();
    let facts = Facts::example(3, &[], &ctx);
    for c in policy.constraints().iter().take(64) {
        let _ = c.condition.holds(&facts);
    }
    for r in policy.relations().iter().take(64) {
        for c in &r.conditions {
            let _ = c.holds(&ctx);
        }
    }
});
