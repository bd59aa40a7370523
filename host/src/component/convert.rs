//! Conversions between the WIT records of `lexecon:governance` and
//! `lexecon-core`'s own types, so that callers of the component see exactly
//! the types a native engine returns. They are the inverses of those in the
//! guest crate (`core/component`).

use lexecon_core::capability::{CapabilityToken, TokenClaims, TokenError};
use lexecon_core::engine::{EngineError, PolicyLoaded};
use lexecon_core::ledger::{Entry, EntryKind, FailureKind, VerifyFailure, VerifyReport};
use lexecon_core::policy::{Mode, PolicyError};
use lexecon_core::random::RandomError;
use lexecon_core::request::{DecisionRequest, RequestError};
use lexecon_core::signer::SignerError;
use lexecon_core::storage::{EntryRecord, StorageError};
use lexecon_core::{Decision, Verdict};

use super::bindings::exports::lexecon::governance::engine as wit;
use super::bindings::lexecon::governance::{signer as wit_signer, storage as wit_storage};
use crate::engine::PolicyInfo;

pub(crate) fn storage_error_to_wit(e: StorageError) -> wit_storage::StorageError {
    match e {
        StorageError::Conflict { len } => wit_storage::StorageError::Conflict(len),
        StorageError::Unavailable(why) => wit_storage::StorageError::Unavailable(why),
        StorageError::Corrupt { index, detail } => {
            wit_storage::StorageError::Corrupt(wit_storage::Corruption { index, detail })
        }
    }
}

pub(crate) fn storage_error_from_wit(e: wit_storage::StorageError) -> StorageError {
    match e {
        wit_storage::StorageError::Conflict(len) => StorageError::Conflict { len },
        wit_storage::StorageError::Unavailable(why) => StorageError::Unavailable(why),
        wit_storage::StorageError::Corrupt(c) => StorageError::Corrupt {
            index: c.index,
            detail: c.detail,
        },
    }
}

pub(crate) fn entry_record_from_wit(r: wit_storage::EntryRecord) -> EntryRecord {
    EntryRecord {
        index: r.index,
        entry_hash: r.entry_hash,
        prev_hash: r.prev_hash,
        bytes: r.bytes,
    }
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

pub(crate) fn node_config_to_wit(c: &lexecon_core::NodeConfig) -> wit::NodeConfig {
    wit::NodeConfig {
        node_id: c.node_id.clone(),
        default_token_ttl: c.default_token_ttl,
        max_token_ttl: c.max_token_ttl,
    }
}

fn mode_to_wit(m: Mode) -> wit::PolicyMode {
    match m {
        Mode::Strict => wit::PolicyMode::Strict,
        Mode::Permissive => wit::PolicyMode::Permissive,
    }
}

fn mode_from_wit(m: wit::PolicyMode) -> Mode {
    match m {
        wit::PolicyMode::Strict => Mode::Strict,
        wit::PolicyMode::Permissive => Mode::Permissive,
    }
}

pub(crate) fn request_to_wit(r: &DecisionRequest) -> wit::DecisionRequest {
    wit::DecisionRequest {
        request_id: r.request_id.clone(),
        actor: r.actor.clone(),
        proposed_action: r.proposed_action.clone(),
        tool: r.tool.clone(),
        user_intent: r.user_intent.clone(),
        risk_level: r.risk_level,
        data_classes: r.data_classes.clone(),
        // A map of JSON values always serialises.
        context: (!r.context.is_empty())
            .then(|| serde_json::to_string(&r.context).unwrap_or_default()),
        policy_mode: r.policy_mode.map(mode_to_wit),
        token_ttl: r.token_ttl,
    }
}

pub(crate) fn request_error_from_wit(e: wit::RequestError) -> RequestError {
    RequestError {
        field: e.field,
        message: e.message,
    }
}

pub(crate) fn engine_error_from_wit(e: wit::EngineError) -> EngineError {
    match e {
        wit::EngineError::Request(e) => EngineError::Request(request_error_from_wit(e)),
        wit::EngineError::Policy(e) => EngineError::Policy(PolicyError {
            path: e.path,
            message: e.message,
            line: e.line.map(to_usize),
            column: e.column.map(to_usize),
        }),
        wit::EngineError::Storage(e) => EngineError::Storage(storage_error_from_wit(e)),
        wit::EngineError::Signer(wit_signer::SignerError::Unavailable(why)) => {
            EngineError::Signer(SignerError(why))
        }
        wit::EngineError::Random(why) => EngineError::Random(RandomError(why)),
        wit::EngineError::Ledger(why) => EngineError::Ledger(why),
        wit::EngineError::BatchTooLarge(n) => EngineError::BatchTooLarge(to_usize(n)),
    }
}

pub(crate) fn claims_from_wit(c: wit::TokenClaims) -> TokenClaims {
    TokenClaims {
        token_id: c.token_id,
        actor: c.actor,
        tool: c.tool,
        action: c.action,
        decision_hash: c.decision_hash,
        policy_version_hash: c.policy_version_hash,
        issued_at: c.issued_at,
        expires_at: c.expires_at,
        key_id: c.key_id,
        node_id: c.node_id,
    }
}

pub(crate) fn decision_from_wit(d: wit::Decision) -> Decision {
    Decision {
        request_id: d.request_id,
        decision_id: d.decision_id,
        allowed: d.allowed,
        decision: match d.decision {
            wit::Verdict::Permit => Verdict::Permit,
            wit::Verdict::Deny => Verdict::Deny,
            wit::Verdict::Escalate => Verdict::Escalate,
        },
        reason: d.reason,
        reasoning: d.reasoning,
        policy_version_hash: d.policy_version_hash,
        decision_hash: d.decision_hash,
        capability_token: d.capability_token.map(|t| CapabilityToken {
            claims: claims_from_wit(t.claims),
            token: t.token,
        }),
        ledger_entry_hash: d.ledger_entry_hash,
        ledger_index: d.ledger_index,
        signature: d.signature,
        timestamp: d.timestamp,
    }
}

pub(crate) fn policy_info_from_wit(p: wit::PolicyInfo) -> PolicyInfo {
    PolicyInfo {
        name: p.name,
        version: p.version,
        mode: mode_from_wit(p.mode),
        policy_hash: p.policy_hash,
        terms: to_usize(p.terms),
        relations: to_usize(p.relations),
        constraints: to_usize(p.constraints),
    }
}

pub(crate) fn policy_loaded_from_wit(l: wit::PolicyLoaded) -> PolicyLoaded {
    PolicyLoaded {
        policy: policy_info_from_wit(l.policy),
        ledger_index: l.ledger_index,
        ledger_entry_hash: l.ledger_entry_hash,
        recorded: l.recorded,
    }
}

pub(crate) fn token_error_from_wit(e: wit::TokenError) -> TokenError {
    match e {
        wit::TokenError::Malformed(why) => TokenError::Malformed(why),
        wit::TokenError::UnknownKey(key_id) => TokenError::UnknownKey { key_id },
        wit::TokenError::BadSignature => TokenError::BadSignature,
        wit::TokenError::Expired(expires_at) => TokenError::Expired { expires_at },
        wit::TokenError::WrongTool(m) => TokenError::WrongTool {
            expected: m.expected,
            actual: m.actual,
        },
        wit::TokenError::WrongActor(m) => TokenError::WrongActor {
            expected: m.expected,
            actual: m.actual,
        },
    }
}

pub(crate) fn report_from_wit(r: wit::VerifyReport) -> VerifyReport {
    VerifyReport {
        valid: r.valid,
        entries: r.entries,
        head_hash: r.head_hash,
        first_invalid: r.first_invalid,
        failure: r.failure.map(|f| VerifyFailure {
            index: f.index,
            kind: match f.kind {
                wit::FailureKind::Malformed => FailureKind::Malformed,
                wit::FailureKind::HashMismatch => FailureKind::HashMismatch,
                wit::FailureKind::IndexMismatch => FailureKind::IndexMismatch,
                wit::FailureKind::BrokenLink => FailureKind::BrokenLink,
                wit::FailureKind::BadGenesis => FailureKind::BadGenesis,
                wit::FailureKind::Missing => FailureKind::Missing,
            },
            message: f.message,
        }),
    }
}

/// A ledger entry read through the component: parsed, with its stored bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// The parsed entry.
    pub entry: Entry,
    /// The canonical bytes exactly as storage holds them.
    pub bytes: Vec<u8>,
}

pub(crate) fn entry_from_wit(e: wit::LedgerEntry) -> Result<StoredEntry, EngineError> {
    let payload = serde_json::from_str(&e.payload).map_err(|err| {
        EngineError::Ledger(format!("entry {}: payload is not JSON: {err}", e.index))
    })?;
    Ok(StoredEntry {
        entry: Entry {
            index: e.index,
            prev_hash: e.prev_hash,
            timestamp: e.timestamp,
            kind: match e.kind {
                wit::EntryKind::PolicyLoad => EntryKind::PolicyLoad,
                wit::EntryKind::Decision => EntryKind::Decision,
            },
            payload,
            entry_hash: e.entry_hash,
        },
        bytes: e.bytes,
    })
}
