//! Arbitrary bytes into `ChainVerifier::push` and `Entry::parse`.
//!
//! The first byte picks a mode:
//! - even: the rest is a ledger as stored (one entry per line, as the file
//!   log keeps it); each line is pushed into one verifier until one fails.
//!   Oracle: a failure names the entry the verifier was at and leaves it
//!   where it was; a success advances it by one, to the entry's own hash.
//! - odd: the rest is an entry *body* (what follows `{"entry_hash":"…",`).
//!   The target computes its correct entry_hash, so the hash check cannot be
//!   what fails: push may only report `malformed`, `index_mismatch` or
//!   `bad_genesis`. When both the verifier and `Entry::parse` accept the
//!   bytes, they must agree on index, prev_hash and entry_hash.
#![no_main]

use lexecon_core::ledger::{ChainVerifier, Entry, FailureKind, GENESIS_HASH};
use libfuzzer_sys::fuzz_target;

const HEAD: &[u8] = b"{\"entry_hash\":\"";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let mut v = ChainVerifier::new();
        for line in rest.split(|&b| b == b'\n') {
            let _ = Entry::parse(line);
            let (before, head) = (v.next_index(), v.head_hash().to_string());
            match v.push(line) {
                Ok(()) => {
                    assert_eq!(v.next_index(), before + 1);
                    let own = line
                        .get(HEAD.len()..HEAD.len() + 64)
                        .expect("accepted entry shorter than its hash");
                    assert_eq!(
                        v.head_hash().as_bytes(),
                        own,
                        "head is not the entry's hash"
                    );
                }
                Err(f) => {
                    assert_eq!(f.index, before, "failure names the wrong entry");
                    assert_eq!((v.next_index(), v.head_hash()), (before, head.as_str()));
                    break;
                }
            }
        }
        return;
    }

    // Self-hashed entry: `{"entry_hash":"<sha256('{' ‖ body)>",` ‖ body.
    let mut hashed = Vec::with_capacity(rest.len() + 1);
    hashed.push(b'{');
    hashed.extend_from_slice(rest);
    let hash = lexecon_core::hash::sha256_hex(&hashed);
    let mut bytes = Vec::with_capacity(rest.len() + 81);
    bytes.extend_from_slice(HEAD);
    bytes.extend_from_slice(hash.as_bytes());
    bytes.extend_from_slice(b"\",");
    bytes.extend_from_slice(rest);

    let mut v = ChainVerifier::new();
    let pushed = v.push(&bytes);
    if let Err(f) = &pushed {
        assert!(
            matches!(
                f.kind,
                FailureKind::Malformed | FailureKind::IndexMismatch | FailureKind::BadGenesis
            ),
            "correctly hashed entry failed with {f:?}"
        );
    }
    let parsed = Entry::parse(&bytes);
    if let (Ok(()), Ok(entry)) = (&pushed, &parsed) {
        assert_eq!(entry.index, 0, "verifier and parser disagree on index");
        assert_eq!(
            entry.prev_hash, GENESIS_HASH,
            "verifier and parser disagree on prev_hash"
        );
        assert_eq!(
            entry.entry_hash, hash,
            "verifier and parser disagree on entry_hash"
        );
    }
});
