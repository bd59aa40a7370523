//! Tamper detection with a real oracle.
//!
//! Builds a valid chain with `build_entry_value` (payloads, kinds and
//! timestamps chosen by the fuzzer), checks that it verifies and that each
//! entry parses back to what was built, then applies fuzzer-chosen edits:
//! byte flips, inserted/removed bytes, truncation, replacement, and removing,
//! swapping or duplicating whole entries. Oracle: `verify_chain` reports as
//! first invalid exactly the first position whose bytes differ from the
//! original chain, with a kind that fits the edit, and the report's
//! `entries`/`head_hash` describe the untouched prefix. When nothing differs
//! (or the edits only truncated the chain's end) the chain is valid.
#![no_main]

use lexecon_core::EntryKind;
use lexecon_core::ledger::{Entry, FailureKind, GENESIS_HASH, build_entry_value, verify_chain};
use lexecon_core::time::format_rfc3339_ms;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<(bool, String, i32)>,
    start_ms: u64,
    step_ms: u32,
    edits: Vec<Edit>,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Flip { entry: u8, pos: u16, mask: u8 },
    Insert { entry: u8, pos: u16, byte: u8 },
    Remove { entry: u8, pos: u16 },
    Truncate { entry: u8, len: u16 },
    Replace { entry: u8, bytes: Vec<u8> },
    DropEntry { entry: u8 },
    SwapEntries { a: u8, b: u8 },
    DuplicateEntry { entry: u8 },
}

const MAX_ENTRIES: usize = 8;

fn pick(n: usize, i: u8) -> Option<usize> {
    (n > 0).then(|| usize::from(i) % n)
}

fuzz_target!(|input: Input| {
    // Build.
    let mut prev = GENESIS_HASH.to_string();
    let mut original: Vec<Vec<u8>> = Vec::new();
    let mut ms = input.start_ms;
    for (i, (policy, text, n)) in input.entries.iter().take(MAX_ENTRIES).enumerate() {
        let kind = if *policy {
            EntryKind::PolicyLoad
        } else {
            EntryKind::Decision
        };
        let payload = json!({"i": i, "s": text, "n": n, "nested": {"t": [text, Value::Null]}});
        let timestamp = format_rfc3339_ms(ms);
        assert_eq!(
            timestamp.len(),
            24,
            "timestamp {timestamp} is not 24 characters"
        );
        let rec = build_entry_value(i as u64, &prev, &timestamp, kind, &payload);
        let entry = Entry::parse(&rec.bytes)
            .unwrap_or_else(|e| panic!("built entry {i} does not parse: {e}"));
        assert_eq!(entry.index, i as u64);
        assert_eq!(entry.prev_hash, prev);
        assert_eq!(entry.timestamp, timestamp);
        assert_eq!(entry.kind, kind);
        assert_eq!(entry.payload, payload);
        assert_eq!(entry.entry_hash, rec.entry_hash);
        prev = rec.entry_hash;
        original.push(rec.bytes);
        ms = ms.saturating_add(u64::from(input.step_ms));
    }
    let report = verify_chain(original.iter().map(Vec::as_slice));
    assert!(
        report.valid,
        "a freshly built chain does not verify: {report:?}"
    );
    assert_eq!(report.entries, original.len() as u64);
    assert_eq!(report.head_hash, prev);

    // Tamper.
    let mut chain = original.clone();
    let mut byte_edited = false;
    for edit in input.edits.iter().take(16) {
        let n = chain.len();
        match *edit {
            Edit::Flip { entry, pos, mask } => {
                if let Some(e) = pick(n, entry).and_then(|e| chain.get_mut(e))
                    && !e.is_empty()
                {
                    let p = usize::from(pos) % e.len();
                    e[p] ^= mask;
                    byte_edited = true;
                }
            }
            Edit::Insert { entry, pos, byte } => {
                if let Some(e) = pick(n, entry).and_then(|e| chain.get_mut(e)) {
                    let p = usize::from(pos) % (e.len() + 1);
                    e.insert(p, byte);
                    byte_edited = true;
                }
            }
            Edit::Remove { entry, pos } => {
                if let Some(e) = pick(n, entry).and_then(|e| chain.get_mut(e))
                    && !e.is_empty()
                {
                    let p = usize::from(pos) % e.len();
                    e.remove(p);
                    byte_edited = true;
                }
            }
            Edit::Truncate { entry, len } => {
                if let Some(e) = pick(n, entry).and_then(|e| chain.get_mut(e)) {
                    e.truncate(usize::from(len));
                    byte_edited = true;
                }
            }
            Edit::Replace { entry, ref bytes } => {
                if let Some(e) = pick(n, entry).and_then(|e| chain.get_mut(e)) {
                    e.clone_from(bytes);
                    byte_edited = true;
                }
            }
            Edit::DropEntry { entry } => {
                if let Some(e) = pick(n, entry) {
                    chain.remove(e);
                }
            }
            Edit::SwapEntries { a, b } => {
                if let (Some(a), Some(b)) = (pick(n, a), pick(n, b)) {
                    chain.swap(a, b);
                }
            }
            Edit::DuplicateEntry { entry } => {
                if let Some(e) = pick(n, entry) {
                    let copy = chain[e].clone();
                    chain.insert(e, copy);
                }
            }
        }
    }

    // The oracle.
    let first_diff = (0..chain.len()).find(|&i| original.get(i) != chain.get(i));
    let report = verify_chain(chain.iter().map(Vec::as_slice));
    match first_diff {
        None => {
            // Unchanged, or a prefix of the original (the end was cut off).
            assert!(
                report.valid,
                "unchanged prefix reported invalid: {report:?}"
            );
            assert_eq!(report.entries, chain.len() as u64);
        }
        Some(d) => {
            assert!(
                !report.valid,
                "chain altered at entry {d} verifies: {report:?}"
            );
            assert_eq!(
                report.first_invalid,
                Some(d as u64),
                "altered at entry {d}, reported at {:?}: {report:?}",
                report.first_invalid
            );
            let failure = report
                .failure
                .as_ref()
                .expect("invalid report without a failure");
            assert_eq!(failure.index, d as u64);
            let from_original = original.iter().any(|o| Some(o) == chain.get(d));
            if from_original {
                // A whole original entry at the wrong position.
                assert_eq!(failure.kind, FailureKind::IndexMismatch, "{report:?}");
            } else {
                assert!(byte_edited);
                assert!(
                    matches!(
                        failure.kind,
                        FailureKind::Malformed | FailureKind::HashMismatch
                    ),
                    "edited bytes reported as {:?}",
                    failure.kind
                );
            }
            assert_eq!(report.entries, d as u64);
            let head = if d == 0 {
                GENESIS_HASH.to_string()
            } else {
                Entry::parse(&original[d - 1])
                    .expect("original entry")
                    .entry_hash
            };
            assert_eq!(report.head_hash, head);
        }
    }
});
