//! The tamper-evident audit ledger: entry format, hashing and verification.
//!
//! An entry is the RFC 8785 canonical JSON object
//! `{"entry_hash", "index", "kind", "payload", "prev_hash", "timestamp"}`.
//! `entry_hash` is the lowercase-hex SHA-256 of the canonical JSON of the same
//! object *without* `entry_hash`; `prev_hash` is the previous entry's
//! `entry_hash`, and [`GENESIS_HASH`] for index 0. Because `entry_hash` sorts
//! first and `timestamp` has a fixed width, the stored bytes are
//! `{"entry_hash":"<64 hex>",` followed by the hashed body without its `{`:
//! verification hashes without parsing JSON (see `DESIGN.md`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use sha2::{Digest, Sha256};

use crate::canonical;
use crate::hash;
use crate::storage::EntryRecord;

/// `prev_hash` of entry 0: SHA-256 of `lexecon-ledger-genesis-v1`.
pub const GENESIS_HASH: &str = "572e68f91602bbac395929fa6441298df4c3752ec175e561bb7cd191c6b873e8";

const HEAD: &[u8] = b"{\"entry_hash\":\"";
/// Bytes before the body: `{"entry_hash":"` + 64 hex + `",`.
const PREFIX_LEN: usize = HEAD.len() + 64 + 2;

/// The `entry_hash` that stored bytes begin with, as every entry
/// [`build_entry`] makes does (its key sorts first); `None` for bytes that
/// do not start that way. Not a check that the hash is right.
pub fn stored_entry_hash(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .strip_prefix(HEAD)?
        .get(..64)
        .filter(|_| bytes.get(HEAD.len() + 64) == Some(&b'"'))
}
/// `,"prev_hash":"` + 64 + `","timestamp":"` + 24 + `"}`.
const SUFFIX_LEN: usize = 14 + 64 + 15 + 24 + 2;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A policy became active; the payload holds it.
    PolicyLoad,
    /// A decision was made.
    Decision,
}

impl EntryKind {
    /// `policy_load` or `decision`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PolicyLoad => "policy_load",
            Self::Decision => "decision",
        }
    }
}

/// A ledger entry, parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position, from 0.
    pub index: u64,
    /// The previous entry's hash, or [`GENESIS_HASH`].
    pub prev_hash: String,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub timestamp: String,
    /// What it records.
    pub kind: EntryKind,
    /// The record itself.
    pub payload: Value,
    /// SHA-256 of the entry without this field.
    pub entry_hash: String,
}

impl Entry {
    /// Parses stored bytes (no verification: see [`ChainVerifier`]).
    ///
    /// # Errors
    /// When the bytes are not an entry.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Builds the stored form of a new entry from its payload's canonical JSON.
///
/// The body is assembled by concatenation: its keys are fixed and sorted,
/// and `kind`, `prev_hash` and `timestamp` never need escaping.
pub fn build_entry(
    index: u64,
    prev_hash: &str,
    timestamp: &str,
    kind: EntryKind,
    canonical_payload: &[u8],
) -> EntryRecord {
    build_entry_from_parts(
        index,
        prev_hash.to_string(),
        timestamp,
        kind,
        &[canonical_payload],
    )
}

/// [`build_entry`] for a payload whose canonical JSON is the concatenation
/// of `payload_parts` (so a caller need not copy them into one buffer),
/// keeping `prev_hash` as the record's own.
pub fn build_entry_from_parts(
    index: u64,
    prev_hash: String,
    timestamp: &str,
    kind: EntryKind,
    payload_parts: &[&[u8]],
) -> EntryRecord {
    let mut digits = [0u8; 20];
    let index_digits = canonical::u64_digits(index, &mut digits);
    let payload_len: usize = payload_parts.iter().map(|p| p.len()).sum();
    // The body after its `{`, as the parts that make it up.
    let head: [&[u8]; 5] = [
        b"\"index\":",
        index_digits,
        b",\"kind\":\"",
        kind.as_str().as_bytes(),
        b"\",\"payload\":",
    ];
    let tail: [&[u8]; 5] = [
        b",\"prev_hash\":\"",
        prev_hash.as_bytes(),
        b"\",\"timestamp\":\"",
        timestamp.as_bytes(),
        b"\"}",
    ];
    let body = || head.iter().chain(payload_parts).chain(&tail);
    let mut hasher = Sha256::new();
    hasher.update(b"{");
    body().for_each(|part| hasher.update(part));
    let entry_hash = hash::hex(&hasher.finalize());
    let body_len: usize = head.iter().chain(&tail).map(|p| p.len()).sum::<usize>() + payload_len;
    let mut bytes = Vec::with_capacity(PREFIX_LEN + body_len);
    bytes.extend_from_slice(HEAD);
    bytes.extend_from_slice(entry_hash.as_bytes());
    bytes.extend_from_slice(b"\",");
    body().for_each(|part| bytes.extend_from_slice(part));
    EntryRecord {
        index,
        entry_hash,
        prev_hash,
        bytes,
    }
}

/// [`build_entry`] for a payload given as a JSON value.
pub fn build_entry_value(
    index: u64,
    prev_hash: &str,
    timestamp: &str,
    kind: EntryKind,
    payload: &Value,
) -> EntryRecord {
    build_entry(
        index,
        prev_hash,
        timestamp,
        kind,
        &canonical::to_vec(payload),
    )
}

/// Why the chain is broken at an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The bytes are not a well-formed entry.
    Malformed,
    /// The content does not match its `entry_hash`: the entry was altered.
    HashMismatch,
    /// The entry says it is at another position: entries were removed or reordered.
    IndexMismatch,
    /// `prev_hash` is not the previous entry's hash.
    BrokenLink,
    /// Entry 0 does not start from the genesis hash.
    BadGenesis,
    /// Storage has no entry at this index, or could not read it.
    Missing,
}

/// The first broken entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyFailure {
    /// Index of the first bad entry.
    pub index: u64,
    /// Why.
    pub kind: FailureKind,
    /// In words.
    pub message: String,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}: {}", self.index, self.message)
    }
}

/// The outcome of walking a whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether every entry verified.
    pub valid: bool,
    /// How many entries verified before the first failure (all of them when valid).
    pub entries: u64,
    /// Hash of the last good entry (anchor it elsewhere to detect truncation).
    pub head_hash: String,
    /// Index of the first bad entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_invalid: Option<u64>,
    /// Why it is bad.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<VerifyFailure>,
}

/// Verifies a chain one entry at a time, without parsing JSON.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_index: u64,
    prev_hash: String,
    /// What a node committed, `(len, head)`: see [`ChainVerifier::committed`].
    committed: Option<(u64, String)>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            next_index: 0,
            prev_hash: GENESIS_HASH.to_string(),
            committed: None,
        }
    }
}

impl ChainVerifier {
    /// A verifier expecting entry 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that continues after entry `len - 1`, whose hash is `head_hash`.
    pub fn resume(len: u64, head_hash: &str) -> Self {
        Self {
            next_index: len,
            prev_hash: head_hash.to_string(),
            committed: None,
        }
    }

    /// Also holds the chain to what a live node committed: `len` entries,
    /// the last with hash `head`. A chain that is valid on its own but
    /// shorter fails with [`FailureKind::Missing`] where it ends (entries
    /// were removed from its end); one whose entry `len - 1` has another
    /// hash fails there with [`FailureKind::HashMismatch`] (the ledger was
    /// rewritten at or before it, hashes recomputed). Entries after `len`
    /// (other writers') are checked as usual. Nothing when `len` is 0.
    #[must_use]
    pub fn committed(mut self, len: u64, head: &str) -> Self {
        self.committed = (len > 0).then(|| (len, head.to_string()));
        self
    }

    /// Index of the next entry expected.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Hash of the last verified entry.
    pub fn head_hash(&self) -> &str {
        &self.prev_hash
    }

    /// Checks the next stored entry.
    ///
    /// # Errors
    /// The [`VerifyFailure`] for this entry; the verifier does not advance.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), VerifyFailure> {
        let index = self.next_index;
        let checked = check_entry(bytes, index)?;
        if checked.prev_hash != self.prev_hash.as_bytes() {
            return Err(link_failure(index));
        }
        if let Some((len, head)) = &self.committed
            && index + 1 == *len
            && checked.entry_hash() != head
        {
            return Err(VerifyFailure {
                index,
                kind: FailureKind::HashMismatch,
                message: format!(
                    "this node committed entry {index} with hash {head}, but the stored entry {index} has hash {}: the ledger was rewritten at or before this entry",
                    checked.entry_hash()
                ),
            });
        }
        self.prev_hash.clear();
        self.prev_hash.push_str(checked.entry_hash());
        self.next_index += 1;
        Ok(())
    }

    /// Checks `entries`, the next ones in order, split across up to
    /// `threads` threads (natively; wasm targets use one). The outcome is the
    /// same as pushing them one by one: the first failure by index, with
    /// the verifier advanced to just before it.
    ///
    /// Each entry's checks need only its own bytes and the hash the entry
    /// before it claims, so parts of the slice verify independently; a part
    /// starts from the claim of the entry before it, and if that claim is
    /// false the part before fails first.
    ///
    /// # Errors
    /// The first [`VerifyFailure`].
    pub fn push_all<E: AsRef<[u8]> + Sync>(
        &mut self,
        entries: &[E],
        threads: usize,
    ) -> Result<(), VerifyFailure> {
        // Below this many entries per thread, starting threads costs more
        // than it saves.
        const MIN_PER_THREAD: usize = 256;
        let parts = threads.min(entries.len() / MIN_PER_THREAD).max(1);
        if parts == 1 || cfg!(target_family = "wasm") {
            return entries.iter().try_for_each(|e| self.push(e.as_ref()));
        }
        let chunks: Vec<&[E]> = entries.chunks(entries.len().div_ceil(parts)).collect();
        let mut verifiers = Vec::with_capacity(chunks.len());
        let mut next_index = self.next_index;
        let mut prev_hash = self.prev_hash.clone();
        for chunk in &chunks {
            verifiers.push(Self {
                next_index,
                prev_hash,
                committed: self.committed.clone(),
            });
            next_index += chunk.len() as u64;
            prev_hash = chunk
                .last()
                .and_then(|e| split_hash(e.as_ref()))
                .map_or_else(String::new, |h| {
                    String::from_utf8_lossy(h.entry_hash_hex).into_owned()
                });
        }
        let outcomes: Vec<(Self, Result<(), VerifyFailure>)> = std::thread::scope(|scope| {
            let verify = |mut v: Self, chunk: &[E]| {
                let r = chunk.iter().try_for_each(|e| v.push(e.as_ref()));
                (v, r)
            };
            let mut pairs = verifiers.into_iter().zip(chunks);
            let first = pairs.next();
            let spawned: Vec<_> = pairs
                .map(|(v, chunk)| {
                    let thread = std::thread::Builder::new();
                    let moved = v.clone();
                    (
                        thread.spawn_scoped(scope, move || verify(moved, chunk)),
                        v,
                        chunk,
                    )
                })
                .collect();
            let mut out = Vec::with_capacity(spawned.len() + 1);
            out.extend(first.map(|(v, chunk)| verify(v, chunk)));
            for (handle, v, chunk) in spawned {
                // A thread that could not start (or died): its part runs here.
                let joined = handle.ok().and_then(|h| h.join().ok());
                out.push(joined.unwrap_or_else(|| verify(v, chunk)));
            }
            out
        });
        for (v, result) in outcomes {
            *self = v;
            result?;
        }
        Ok(())
    }

    /// The report for a chain that ended (or failed) here.
    pub fn report(&self, failure: Option<VerifyFailure>) -> VerifyReport {
        let failure = failure.or_else(|| {
            let (len, head) = self.committed.as_ref()?;
            (self.next_index < *len).then(|| VerifyFailure {
                index: self.next_index,
                kind: FailureKind::Missing,
                message: format!(
                    "this node committed {len} entries (head {head}), but the ledger holds {}: entries were removed from its end",
                    self.next_index
                ),
            })
        });
        VerifyReport {
            valid: failure.is_none(),
            entries: self.next_index,
            head_hash: self.prev_hash.clone(),
            first_invalid: failure.as_ref().map(|f| f.index),
            failure,
        }
    }
}

/// One stored entry that checked out on its own (see [`check_entry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedEntry<'a> {
    entry_hash_hex: [u8; 64],
    /// The `prev_hash` it claims (64 lowercase hex digits, not yet checked
    /// against the entry before it).
    pub prev_hash: &'a [u8],
}

impl CheckedEntry<'_> {
    /// Its `entry_hash`, recomputed from its content (and equal to the one stored).
    pub fn entry_hash(&self) -> &str {
        // Lowercase hex digits: always UTF-8.
        std::str::from_utf8(&self.entry_hash_hex).unwrap_or_default()
    }
}

/// Checks what one stored entry can prove on its own: it is a well-formed
/// canonical entry, its content matches its `entry_hash`, and it says it is
/// at `index`. Whether it links to the entry before it is the caller's check
/// (against [`CheckedEntry::prev_hash`]; [`link_failure`] names the failure).
///
/// # Errors
/// The [`VerifyFailure`] for this entry.
pub fn check_entry(bytes: &[u8], index: u64) -> Result<CheckedEntry<'_>, VerifyFailure> {
    let fail = |kind, message: String| VerifyFailure {
        index,
        kind,
        message,
    };
    let malformed = || {
        fail(
            FailureKind::Malformed,
            "not a canonical ledger entry".into(),
        )
    };
    let hashed = split_hash(bytes).ok_or_else(malformed)?;
    let computed: [u8; 32] = Sha256::new()
        .chain_update(b"{")
        .chain_update(hashed.body)
        .finalize()
        .into();
    // Compared as hex, so the claim needs no decoding on the (usual)
    // matching path.
    let mut entry_hash_hex = [0u8; 64];
    hash::hex_into(&computed, &mut entry_hash_hex);
    if entry_hash_hex != *hashed.entry_hash_hex {
        if !hash::is_hash_hex(hashed.entry_hash_hex) {
            return Err(malformed());
        }
        return Err(fail(
            FailureKind::HashMismatch,
            "content does not match its entry_hash: the entry was altered".into(),
        ));
    }
    let parts = split_links(hashed.body).ok_or_else(malformed)?;
    if parts.index != index {
        return Err(fail(
            FailureKind::IndexMismatch,
            format!(
                "found entry {} at position {index}: entries were removed or reordered",
                parts.index
            ),
        ));
    }
    Ok(CheckedEntry {
        entry_hash_hex,
        prev_hash: parts.prev_hash,
    })
}

/// The failure of entry `index` whose `prev_hash` is not the hash of the
/// entry before it (or, for entry 0, not [`GENESIS_HASH`]).
pub fn link_failure(index: u64) -> VerifyFailure {
    let (kind, message) = if index == 0 {
        (
            FailureKind::BadGenesis,
            "entry 0 does not link to the genesis hash".to_string(),
        )
    } else {
        (
            FailureKind::BrokenLink,
            format!("prev_hash does not match the hash of entry {}", index - 1),
        )
    };
    VerifyFailure {
        index,
        kind,
        message,
    }
}

/// Verifies a complete chain held in memory.
pub fn verify_chain<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> VerifyReport {
    let mut v = ChainVerifier::new();
    for bytes in entries {
        if let Err(f) = v.push(bytes) {
            return v.report(Some(f));
        }
    }
    v.report(None)
}

/// [`verify_chain`] for a chain held in a slice, checked on up to `threads`
/// threads (see [`ChainVerifier::push_all`]); the report is the same.
pub fn verify_chain_parallel<E: AsRef<[u8]> + Sync>(entries: &[E], threads: usize) -> VerifyReport {
    let mut v = ChainVerifier::new();
    let outcome = v.push_all(entries, threads);
    v.report(outcome.err())
}

/// The hashed part of stored entry bytes: the claimed hash and the body.
struct Hashed<'a> {
    /// The claimed `entry_hash`, as stored (64 bytes, not yet checked).
    entry_hash_hex: &'a [u8; 64],
    body: &'a [u8],
}

/// The members the chain check reads.
struct Links<'a> {
    index: u64,
    prev_hash: &'a [u8],
}

fn split_hash(bytes: &[u8]) -> Option<Hashed<'_>> {
    if bytes.len() < PREFIX_LEN + SUFFIX_LEN || !bytes.starts_with(HEAD) {
        return None;
    }
    let entry_hash_hex = bytes.get(HEAD.len()..HEAD.len() + 64)?.try_into().ok()?;
    if bytes.get(HEAD.len() + 64..PREFIX_LEN)? != b"\"," {
        return None;
    }
    Some(Hashed {
        entry_hash_hex,
        body: bytes.get(PREFIX_LEN..)?,
    })
}

fn split_links(body: &[u8]) -> Option<Links<'_>> {
    let digits = body.strip_prefix(b"\"index\":")?;
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    let index: u64 = std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok()?;
    // The members between `index` and the suffix must be exactly `kind` and
    // one balanced `payload` value ending where the suffix starts; otherwise
    // the suffix could sit inside the payload and name a `prev_hash` that a
    // JSON parser would not see (found by the `ledger_entry` fuzz target).
    let after_index = digits.get(end..)?.strip_prefix(b",\"kind\":\"")?;
    let kind_len = after_index.iter().position(|b| *b == b'"')?;
    let kind = after_index.get(..kind_len)?;
    if kind.is_empty() || !kind.iter().all(|b| b.is_ascii_lowercase() || *b == b'_') {
        return None;
    }
    let payload = after_index
        .get(kind_len..)?
        .strip_prefix(b"\",\"payload\":")?;
    let payload_len = payload.len().checked_sub(SUFFIX_LEN)?;
    if crate::json_extent::value_len(payload)? != payload_len {
        return None;
    }
    let suffix = payload.get(payload_len..)?;
    if !suffix.starts_with(b",\"prev_hash\":\"")
        || suffix.get(78..93)? != b"\",\"timestamp\":\""
        || !suffix.ends_with(b"\"}")
    {
        return None;
    }
    Some(Links {
        index,
        prev_hash: suffix.get(14..78)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: u64) -> Vec<Vec<u8>> {
        let mut prev = GENESIS_HASH.to_string();
        let mut out = Vec::new();
        for i in 0..n {
            let rec = build_entry_value(
                i,
                &prev,
                "2026-11-24T13:08:01.123Z",
                EntryKind::Decision,
                &json!({"i": i, "s": "x\"y"}),
            );
            prev = rec.entry_hash.clone();
            out.push(rec.bytes);
        }
        out
    }

    #[test]
    fn parallel_verification_reports_what_sequential_verification_does() {
        let good = chain(1500);
        let mut cases: Vec<(String, Vec<Vec<u8>>)> = vec![("intact".into(), good.clone())];
        for at in [0usize, 1, 255, 256, 511, 750, 1023, 1499] {
            let mut flipped = good.clone();
            if let Some(b) = flipped.get_mut(at).and_then(|e| e.get_mut(40)) {
                *b ^= 1;
            }
            cases.push((format!("byte flipped in {at}"), flipped));
            let mut removed = good.clone();
            removed.remove(at);
            cases.push((format!("{at} removed"), removed));
            let mut swapped = good.clone();
            swapped.swap(at, (at + 1) % good.len());
            cases.push((format!("{at} swapped"), swapped));
            let mut hash_claim = good.clone();
            if let Some(b) = hash_claim.get_mut(at).and_then(|e| e.get_mut(20)) {
                *b = if *b == b'0' { b'1' } else { b'0' };
            }
            cases.push((format!("{at} claims another hash"), hash_claim));
            let mut garbage = good.clone();
            if let Some(e) = garbage.get_mut(at) {
                *e = b"not an entry".to_vec();
            }
            cases.push((format!("{at} is garbage"), garbage));
        }
        for (what, entries) in &cases {
            let sequential = verify_chain(entries.iter().map(Vec::as_slice));
            for threads in [1, 2, 3, 4, 7] {
                assert_eq!(
                    verify_chain_parallel(entries, threads),
                    sequential,
                    "{what}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn genesis_hash_is_what_design_says() {
        assert_eq!(hash::sha256_hex(b"lexecon-ledger-genesis-v1"), GENESIS_HASH);
    }

    #[test]
    fn stored_bytes_are_canonical_and_hash_matches_definition() {
        let rec = build_entry_value(
            0,
            GENESIS_HASH,
            "2026-11-24T13:08:01.123Z",
            EntryKind::PolicyLoad,
            &json!({"b": 1, "a": 2}),
        );
        let entry = Entry::parse(&rec.bytes).unwrap();
        let parsed: Value = serde_json::from_slice(&rec.bytes).unwrap();
        assert_eq!(canonical::to_vec(&parsed), rec.bytes);
        let mut without = parsed.as_object().unwrap().clone();
        without.remove("entry_hash");
        assert_eq!(
            hash::sha256_hex(&canonical::to_vec(&Value::Object(without))),
            entry.entry_hash
        );
        assert_eq!(entry.entry_hash, rec.entry_hash);
        assert_eq!(entry.payload, json!({"a": 2, "b": 1}));
    }

    #[test]
    fn a_suffix_hidden_in_the_payload_is_malformed() {
        // The fuzz finding: a body whose fixed-width "suffix" is really inside
        // the payload, followed by the real prev_hash and timestamp.
        let body = format!(
            "{{\"index\":0,\"kind\":\"decision\",\"prev_hash\":\"{}\",\"payload\":{{\"a\":1,\"prev_hash\":\"{GENESIS_HASH}\",\"timestamp\":\"x\"}},\"timestamp\":\"2026-11\"}}",
            "ab".repeat(32)
        );
        let hash = hash::sha256_hex(body.as_bytes());
        let stored = format!("{{\"entry_hash\":\"{hash}\",{}", &body[1..]);
        let r = verify_chain([stored.as_bytes()]);
        assert_eq!(r.failure.map(|f| f.kind), Some(FailureKind::Malformed));
        assert_eq!(
            crate::json_extent::value_len(br#"{"a":"}\"{","b":[1,{}]} tail"#),
            Some(23)
        );
    }

    #[test]
    fn a_good_chain_verifies() {
        let c = chain(5);
        let r = verify_chain(c.iter().map(Vec::as_slice));
        assert!(r.valid);
        assert_eq!(r.entries, 5);
    }

    #[test]
    fn alteration_removal_reordering_are_found() {
        let c = chain(5);
        let mut altered = c.clone();
        let pos = altered[2].len() - 140;
        altered[2][pos] ^= 1;
        let r = verify_chain(altered.iter().map(Vec::as_slice));
        assert_eq!(
            (r.first_invalid, r.failure.unwrap().kind),
            (Some(2), FailureKind::HashMismatch)
        );

        let mut removed = c.clone();
        removed.remove(3);
        let r = verify_chain(removed.iter().map(Vec::as_slice));
        assert_eq!(
            (r.first_invalid, r.failure.unwrap().kind),
            (Some(3), FailureKind::IndexMismatch)
        );

        let mut swapped = c.clone();
        swapped.swap(1, 2);
        let r = verify_chain(swapped.iter().map(Vec::as_slice));
        assert_eq!(r.first_invalid, Some(1));

        let first_removed = &c[1..];
        let r = verify_chain(first_removed.iter().map(Vec::as_slice));
        assert_eq!(r.first_invalid, Some(0));
    }

    #[test]
    fn relinked_forgery_breaks_the_next_link() {
        // Rewrite entry 1 with a fresh, self-consistent hash: entry 2 no longer links.
        let c = chain(3);
        let e1 = Entry::parse(&c[1]).unwrap();
        let forged = build_entry_value(
            1,
            &e1.prev_hash,
            &e1.timestamp,
            EntryKind::Decision,
            &json!({"i": 999}),
        );
        let mut t = c.clone();
        t[1] = forged.bytes;
        let r = verify_chain(t.iter().map(Vec::as_slice));
        assert_eq!(
            (r.first_invalid, r.failure.unwrap().kind),
            (Some(2), FailureKind::BrokenLink)
        );
    }
}
