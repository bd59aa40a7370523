//! Reading the ledger for people and API clients: entries as JSON, one-line
//! summaries for `lexecon ledger show`, and the history of policy loads.

use lexecon_core::ledger::{Entry, EntryKind};
use lexecon_core::storage::{Storage, StorageError};
use serde::Serialize;
use serde_json::{Map, Value};

/// Entries read per storage call when scanning.
pub const SCAN_CHUNK: u64 = 1024;

/// An entry as the API returns it: the parsed entry, plus `decision_hash`
/// at the top level for decision entries (the guide's
/// `ledger_entry.decision_hash`).
pub fn entry_json(entry: &Entry) -> Value {
    let mut obj = Map::new();
    obj.insert("index".into(), Value::from(entry.index));
    obj.insert("prev_hash".into(), Value::from(entry.prev_hash.clone()));
    obj.insert("timestamp".into(), Value::from(entry.timestamp.clone()));
    obj.insert("kind".into(), Value::from(entry.kind.as_str()));
    obj.insert("entry_hash".into(), Value::from(entry.entry_hash.clone()));
    if let Some(h) = entry
        .payload
        .get("decision_hash")
        .filter(|_| entry.kind == EntryKind::Decision)
    {
        obj.insert("decision_hash".into(), h.clone());
    }
    if let Some(h) = entry
        .payload
        .get("policy_hash")
        .filter(|_| entry.kind == EntryKind::PolicyLoad)
    {
        obj.insert("policy_hash".into(), h.clone());
    }
    obj.insert("payload".into(), entry.payload.clone());
    Value::Object(obj)
}

/// The `kind` of stored entry bytes without parsing them (canonical JSON puts
/// `"index":N,"kind":"…"` right after the entry hash).
pub fn peek_kind(bytes: &[u8]) -> Option<EntryKind> {
    let start = bytes.windows(8).position(|w| w == b",\"kind\":")?;
    let rest = bytes.get(start + 8..)?;
    if rest.starts_with(b"\"policy_load\"") {
        Some(EntryKind::PolicyLoad)
    } else if rest.starts_with(b"\"decision\"") {
        Some(EntryKind::Decision)
    } else {
        None
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}

/// One line describing an entry (`lexecon ledger show`).
pub fn entry_line(entry: &Entry) -> String {
    let p = &entry.payload;
    let short = entry.entry_hash.get(..16).unwrap_or(&entry.entry_hash);
    match entry.kind {
        EntryKind::Decision => {
            // The decision record (nested under `record` since the core's v2 payload).
            let p = p.get("record").filter(|r| r.is_object()).unwrap_or(p);
            let allowed = p.get("allowed").and_then(Value::as_bool).unwrap_or(false);
            let risk = p
                .get("risk_level")
                .map_or_else(|| "?".to_string(), Value::to_string);
            format!(
                "#{} {} decision allowed: {allowed} decision: {} actor: {} tool: {} risk: {risk} request_id: {} reason: {} entry: {short}",
                entry.index,
                entry.timestamp,
                s(p, "decision"),
                s(p, "actor"),
                s(p, "tool"),
                s(p, "request_id"),
                s(p, "reason"),
            )
        }
        EntryKind::PolicyLoad => format!(
            "#{} {} policy_load name: {} version: {} mode: {} policy_hash: {} entry: {short}",
            entry.index,
            entry.timestamp,
            s(p, "name"),
            s(p, "version"),
            s(p, "mode"),
            s(p, "policy_hash"),
        ),
    }
}

/// One `policy_load` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyLoad {
    /// Its ledger index.
    pub ledger_index: u64,
    /// Its entry hash.
    pub ledger_entry_hash: String,
    /// When it was loaded.
    pub loaded_at: String,
    /// The policy's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `strict` or `permissive`.
    pub mode: String,
    /// Its hash.
    pub policy_hash: String,
    /// Numbers of terms, relations and constraints.
    pub counts: Value,
    /// Whether it is the active policy (the latest load).
    pub active: bool,
    /// The policy document.
    #[serde(skip)]
    pub policy: Value,
}

/// Why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Storage failed.
    Storage(StorageError),
    /// An entry does not parse.
    Malformed(u64, String),
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Storage(e) => write!(f, "{e}"),
            Self::Malformed(i, why) => write!(
                f,
                "ledger entry {i} does not parse: {why}; run `lexecon ledger verify`"
            ),
        }
    }
}

impl std::error::Error for ScanError {}

impl From<StorageError> for ScanError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// Collects the `policy_load` entries in `start..end` into `out` (the
/// latest marked active when `end` is the ledger's end).
///
/// # Errors
/// [`ScanError`].
pub fn scan_policy_loads<S: Storage + ?Sized>(
    storage: &mut S,
    start: u64,
    end: u64,
    out: &mut Vec<PolicyLoad>,
) -> Result<(), ScanError> {
    let mut at = start;
    while at < end {
        let chunk = storage.get_range(at, end.min(at + SCAN_CHUNK))?;
        if chunk.is_empty() {
            break;
        }
        for bytes in chunk {
            let index = at;
            at += 1;
            if peek_kind(&bytes) != Some(EntryKind::PolicyLoad) {
                continue;
            }
            let entry =
                Entry::parse(&bytes).map_err(|e| ScanError::Malformed(index, e.to_string()))?;
            let p = &entry.payload;
            out.push(PolicyLoad {
                ledger_index: entry.index,
                ledger_entry_hash: entry.entry_hash.clone(),
                loaded_at: entry.timestamp.clone(),
                name: s(p, "name").to_string(),
                version: s(p, "version").to_string(),
                mode: s(p, "mode").to_string(),
                policy_hash: s(p, "policy_hash").to_string(),
                counts: p.get("counts").cloned().unwrap_or(Value::Null),
                active: false,
                policy: p.get("policy").cloned().unwrap_or(Value::Null),
            });
        }
    }
    let n = out.len();
    for (i, load) in out.iter_mut().enumerate() {
        load.active = i + 1 == n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use lexecon_core::canonical;
    use lexecon_core::ledger::{GENESIS_HASH, build_entry};
    use serde_json::json;

    #[test]
    fn kinds_are_peeked_and_lines_are_greppable() {
        let d = build_entry(
            3,
            GENESIS_HASH,
            "2026-11-24T13:08:01.123Z",
            EntryKind::Decision,
            &canonical::to_vec(
                &json!({"allowed": false, "decision": "deny", "actor": "model", "tool": "execute", "reason": "forbidden by x",
                   "decision_hash": "ab", "note": ",\"kind\":\"policy_load\""}),
            ),
        );
        assert_eq!(peek_kind(&d.bytes), Some(EntryKind::Decision));
        let e = Entry::parse(&d.bytes).unwrap();
        assert!(entry_line(&e).contains("allowed: false"));
        assert_eq!(entry_json(&e)["decision_hash"], "ab");
        let p = build_entry(
            0,
            GENESIS_HASH,
            "2026-11-24T13:08:01.123Z",
            EntryKind::PolicyLoad,
            &canonical::to_vec(&json!({"name": "x"})),
        );
        assert_eq!(peek_kind(&p.bytes), Some(EntryKind::PolicyLoad));
    }
}
