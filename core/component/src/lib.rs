//! Lexecon's engine as a WASI component (`lexecon:governance@0.1.0`, see
//! `wit/lexecon.wit`).
//!
//! This crate is only glue: the WIT bindings, conversions between WIT
//! records and `lexecon-core` types, and the four seams the core asks a host
//! for, implemented over the component's imports:
//!
//! - [`ImportStorage`]: [`Storage`] over the `storage` import;
//! - [`ImportSigner`]: [`Signer`] over the `signer` import (the key stays in
//!   the host);
//! - [`WasiClock`]: [`Clock`] over `wasi:clocks/wall-clock`, one read per
//!   [`Clock::now_ms`];
//! - [`WasiRandom`]: [`Random`] over `wasi:random/random`, read through a
//!   [`lexecon_core::BufferedRandom`] (512 bytes per host call). The core's
//!   bytes are the host's stream in order, so a host that feeds a
//!   deterministic stream gets byte-identical ledgers.
//!
//! Every decision is made by `lexecon_core::Governor`; nothing here looks at
//! a policy.
//!
//! Build: `scripts/build-component.sh` (`cargo build -p lexecon-component
//! --target wasm32-wasip2 --profile wasm-release`).

use std::cell::RefCell;

use lexecon_core::capability::{Expect, TokenClaims, TokenError};
use lexecon_core::engine::{EngineError, Governor, NodeConfig, PolicyLoaded};
use lexecon_core::ledger::{Entry, EntryKind, FailureKind, VerifyFailure, VerifyReport};
use lexecon_core::policy::{Mode, PolicyError, PolicyInfo};
use lexecon_core::random::{Random, RandomError};
use lexecon_core::request::{DecisionRequest, MAX_BATCH, RequestError};
use lexecon_core::signer::{Signer, SignerError};
use lexecon_core::storage::{EntryRecord, Storage, StorageError};
use lexecon_core::time::Clock;
use lexecon_core::{Decision, Engine, Verdict};

/// The bindings generated from `wit/` (unsafe ABI glue lives only here).
#[allow(unsafe_code, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "governance",
        generate_all,
    });
}

use bindings::exports::lexecon::governance::engine as wit;
use bindings::lexecon::governance::{signer as wit_signer, storage as wit_storage};
use bindings::wasi::clocks::wall_clock;
use bindings::wasi::random::random as wasi_random;

/// The component's exports.
struct Component;

#[allow(unsafe_code)]
mod export {
    use super::Component;
    super::bindings::export!(Component with_types_in super::bindings);
}

// ----- the four seams -----

/// [`Storage`] over the component's `storage` import.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportStorage;

impl Storage for ImportStorage {
    fn len(&mut self) -> Result<u64, StorageError> {
        wit_storage::len().map_err(storage_error_from_wit)
    }

    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        wit_storage::get(index).map_err(storage_error_from_wit)
    }

    fn get_range(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        wit_storage::get_range(start, end).map_err(storage_error_from_wit)
    }

    fn find(&mut self, entry_hash: &str) -> Result<Option<u64>, StorageError> {
        wit_storage::find(entry_hash).map_err(storage_error_from_wit)
    }

    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        let records: Vec<wit_storage::EntryRecord> = entries
            .iter()
            .map(|e| wit_storage::EntryRecord {
                index: e.index,
                entry_hash: e.entry_hash.clone(),
                prev_hash: e.prev_hash.clone(),
                bytes: e.bytes.clone(),
            })
            .collect();
        wit_storage::append(&records).map_err(storage_error_from_wit)
    }
}

/// [`Signer`] over the component's `signer` import.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportSigner;

impl Signer for ImportSigner {
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        let signature = wit_signer::sign(message)
            .map_err(|wit_signer::SignerError::Unavailable(why)| SignerError(why))?;
        let len = signature.len();
        signature.try_into().map_err(|_| {
            SignerError(format!(
                "the host signer returned {len} bytes, not a 64-byte Ed25519 signature"
            ))
        })
    }

    fn public_key(&self) -> [u8; 32] {
        // A malformed key becomes all zeroes, a weak key: `Governor::open`
        // refuses it (`Engine::check_signer`).
        wit_signer::public_key().try_into().unwrap_or([0; 32])
    }

    // `key_id` is the trait's: derived from `public_key`, so it cannot
    // disagree with the key (the host's `key-id` is not asked).
}

/// [`Clock`] over `wasi:clocks/wall-clock`: exactly one read per call.
#[derive(Debug, Default, Clone, Copy)]
pub struct WasiClock;

impl Clock for WasiClock {
    fn now_ms(&self) -> u64 {
        let now = wall_clock::now();
        now.seconds
            .saturating_mul(1000)
            .saturating_add(u64::from(now.nanoseconds / 1_000_000))
    }
}

/// [`Random`] over `wasi:random/random`: one `get-random-bytes(n)` call per
/// `fill`, for exactly `n` bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct WasiRandom;

impl Random for WasiRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        let bytes = wasi_random::get_random_bytes(buf.len() as u64);
        if bytes.len() != buf.len() {
            return Err(RandomError(format!(
                "the host returned {} random bytes, not {}",
                bytes.len(),
                buf.len()
            )));
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }
}

// ----- the exported governor -----

/// The `governor` resource: a `lexecon_core::Governor` over the imports.
pub struct GovernorResource {
    inner: RefCell<Governor<ImportStorage>>,
}

impl wit::Guest for Component {
    type Governor = GovernorResource;
}

impl wit::GuestGovernor for GovernorResource {
    fn open(config: wit::NodeConfig) -> Result<wit::Governor, wit::EngineError> {
        let config = NodeConfig {
            node_id: config.node_id,
            default_token_ttl: config.default_token_ttl,
            max_token_ttl: config.max_token_ttl,
        };
        // The checks every host makes, so no host can open a node the
        // others refuse.
        config.check().map_err(|message| {
            wit::EngineError::Request(wit::RequestError {
                field: "node-config".into(),
                message,
            })
        })?;
        let engine = Engine::new(
            config,
            Box::new(ImportSigner),
            Box::new(WasiClock),
            Box::new(lexecon_core::BufferedRandom::<_>::new(WasiRandom)),
        );
        let governor = Governor::open(engine, ImportStorage).map_err(engine_error_to_wit)?;
        Ok(wit::Governor::new(GovernorResource {
            inner: RefCell::new(governor),
        }))
    }

    fn load_policy(&self, text: String) -> Result<wit::PolicyLoaded, wit::EngineError> {
        let loaded = self
            .inner
            .borrow_mut()
            .load_policy(&text)
            .map_err(engine_error_to_wit)?;
        Ok(policy_loaded_to_wit(loaded))
    }

    fn decide(&self, request: wit::DecisionRequest) -> Result<wit::Decision, wit::EngineError> {
        let request =
            request_from_wit(request).map_err(|e| engine_error_to_wit(EngineError::Request(e)))?;
        let decision = self
            .inner
            .borrow_mut()
            .decide(&request)
            .map_err(engine_error_to_wit)?;
        Ok(decision_to_wit(decision))
    }

    fn decide_batch(
        &self,
        requests: Vec<wit::DecisionRequest>,
    ) -> Result<Vec<Result<wit::Decision, wit::RequestError>>, wit::EngineError> {
        // The core's limit applies to the batch as sent.
        if requests.len() > MAX_BATCH {
            return Err(engine_error_to_wit(EngineError::BatchTooLarge(
                requests.len(),
            )));
        }
        // Requests whose WIT form does not convert (a `context` that is not a
        // JSON object) get their error in place, exactly as the core answers
        // requests that fail validation: no ledger entry, no clock or random
        // read.
        let mut slots: Vec<Result<(), RequestError>> = Vec::with_capacity(requests.len());
        let mut valid = Vec::with_capacity(requests.len());
        for request in requests {
            match request_from_wit(request) {
                Ok(r) => {
                    valid.push(r);
                    slots.push(Ok(()));
                }
                Err(e) => slots.push(Err(e)),
            }
        }
        let decided = self
            .inner
            .borrow_mut()
            .decide_batch(&valid)
            .map_err(engine_error_to_wit)?;
        let mut decided = decided.into_iter();
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            out.push(match slot {
                Err(e) => Err(request_error_to_wit(e)),
                Ok(()) => match decided.next() {
                    Some(Ok(d)) => Ok(decision_to_wit(d)),
                    Some(Err(e)) => Err(request_error_to_wit(e)),
                    None => {
                        return Err(wit::EngineError::Ledger(
                            "the engine returned fewer results than requests".into(),
                        ));
                    }
                },
            });
        }
        Ok(out)
    }

    fn verify_token(
        &self,
        token: String,
        expected_tool: Option<String>,
        expected_actor: Option<String>,
    ) -> Result<wit::TokenClaims, wit::TokenError> {
        let expect = Expect {
            tool: expected_tool.as_deref(),
            actor: expected_actor.as_deref(),
        };
        self.inner
            .borrow()
            .verify_token(&token, expect)
            .map(claims_to_wit)
            .map_err(token_error_to_wit)
    }

    fn verify_ledger(&self) -> Result<wit::VerifyReport, wit::EngineError> {
        let report = self
            .inner
            .borrow_mut()
            .verify_ledger()
            .map_err(engine_error_to_wit)?;
        Ok(report_to_wit(report))
    }

    fn entry(&self, index: u64) -> Result<Option<wit::LedgerEntry>, wit::EngineError> {
        read_entry(&mut self.inner.borrow_mut(), index).map_err(engine_error_to_wit)
    }

    fn entry_by_hash(
        &self,
        entry_hash: String,
    ) -> Result<Option<wit::LedgerEntry>, wit::EngineError> {
        let mut governor = self.inner.borrow_mut();
        match governor
            .storage()
            .find(&entry_hash)
            .map_err(|e| engine_error_to_wit(e.into()))?
        {
            Some(index) => read_entry(&mut governor, index).map_err(engine_error_to_wit),
            None => Ok(None),
        }
    }

    fn catch_up(&self) -> Result<(), wit::EngineError> {
        self.inner
            .borrow_mut()
            .catch_up()
            .map_err(engine_error_to_wit)
    }

    fn policy(&self) -> Option<wit::PolicyInfo> {
        self.inner
            .borrow()
            .engine()
            .policy()
            .map(|p| policy_info_to_wit(p.info()))
    }

    fn head(&self) -> wit::LedgerHead {
        let governor = self.inner.borrow();
        let engine = governor.engine();
        wit::LedgerHead {
            len: engine.len(),
            head_hash: engine.head_hash().to_string(),
        }
    }

    fn public_key(&self) -> Vec<u8> {
        self.inner.borrow().engine().public_key().to_vec()
    }

    fn key_id(&self) -> String {
        self.inner.borrow().engine().key_id().to_string()
    }
}

/// The entry at `index` with its stored bytes (the core's `Governor::entry`
/// parses them but does not hand them back).
fn read_entry(
    governor: &mut Governor<ImportStorage>,
    index: u64,
) -> Result<Option<wit::LedgerEntry>, EngineError> {
    let Some(bytes) = governor.storage().get(index)? else {
        return Ok(None);
    };
    let entry =
        Entry::parse(&bytes).map_err(|e| EngineError::Ledger(format!("entry {index}: {e}")))?;
    Ok(Some(entry_to_wit(entry, bytes)))
}

// ----- conversions -----

fn storage_error_from_wit(e: wit_storage::StorageError) -> StorageError {
    match e {
        wit_storage::StorageError::Conflict(len) => StorageError::Conflict { len },
        wit_storage::StorageError::Unavailable(why) => StorageError::Unavailable(why),
        wit_storage::StorageError::Corrupt(c) => StorageError::Corrupt {
            index: c.index,
            detail: c.detail,
        },
    }
}

fn storage_error_to_wit(e: StorageError) -> wit_storage::StorageError {
    match e {
        StorageError::Conflict { len } => wit_storage::StorageError::Conflict(len),
        StorageError::Unavailable(why) => wit_storage::StorageError::Unavailable(why),
        StorageError::Corrupt { index, detail } => {
            wit_storage::StorageError::Corrupt(wit_storage::Corruption { index, detail })
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn engine_error_to_wit(e: EngineError) -> wit::EngineError {
    match e {
        EngineError::Request(e) => wit::EngineError::Request(request_error_to_wit(e)),
        EngineError::Policy(e) => wit::EngineError::Policy(policy_error_to_wit(e)),
        EngineError::Storage(e) => wit::EngineError::Storage(storage_error_to_wit(e)),
        EngineError::Signer(SignerError(why)) => {
            wit::EngineError::Signer(wit_signer::SignerError::Unavailable(why))
        }
        EngineError::Random(RandomError(why)) => wit::EngineError::Random(why),
        EngineError::Ledger(why) => wit::EngineError::Ledger(why),
        EngineError::BatchTooLarge(n) => wit::EngineError::BatchTooLarge(to_u32(n)),
        // Only a host reports its sandboxed engine unavailable; should the
        // core ever say it, it keeps the same contract (nothing done, retry).
        EngineError::Unavailable(why) => {
            wit::EngineError::Storage(wit_storage::StorageError::Unavailable(why))
        }
    }
}

fn request_error_to_wit(e: RequestError) -> wit::RequestError {
    wit::RequestError {
        field: e.field,
        message: e.message,
    }
}

fn policy_error_to_wit(e: PolicyError) -> wit::PolicyError {
    wit::PolicyError {
        path: e.path,
        message: e.message,
        line: e.line.map(to_u32),
        column: e.column.map(to_u32),
    }
}

fn request_from_wit(r: wit::DecisionRequest) -> Result<DecisionRequest, RequestError> {
    let context = match r.context.as_deref() {
        None => serde_json::Map::new(),
        // Keys unique at every depth, as in a request read from JSON.
        Some(text) => lexecon_core::request::context_from_json(text)?,
    };
    Ok(DecisionRequest {
        request_id: r.request_id,
        actor: r.actor,
        proposed_action: r.proposed_action,
        tool: r.tool,
        user_intent: r.user_intent,
        risk_level: r.risk_level,
        data_classes: r.data_classes,
        context,
        policy_mode: r.policy_mode.map(|m| match m {
            wit::PolicyMode::Strict => Mode::Strict,
            wit::PolicyMode::Permissive => Mode::Permissive,
        }),
        token_ttl: r.token_ttl,
    })
}

fn claims_to_wit(c: TokenClaims) -> wit::TokenClaims {
    wit::TokenClaims {
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

fn decision_to_wit(d: Decision) -> wit::Decision {
    wit::Decision {
        request_id: d.request_id,
        decision_id: d.decision_id,
        allowed: d.allowed,
        decision: match d.decision {
            Verdict::Permit => wit::Verdict::Permit,
            Verdict::Deny => wit::Verdict::Deny,
            Verdict::Escalate => wit::Verdict::Escalate,
        },
        reason: d.reason,
        reasoning: d.reasoning,
        policy_version_hash: d.policy_version_hash,
        decision_hash: d.decision_hash,
        capability_token: d.capability_token.map(|t| wit::CapabilityToken {
            claims: claims_to_wit(t.claims),
            token: t.token,
        }),
        ledger_entry_hash: d.ledger_entry_hash,
        ledger_index: d.ledger_index,
        signature: d.signature,
        timestamp: d.timestamp,
    }
}

fn policy_info_to_wit(p: PolicyInfo) -> wit::PolicyInfo {
    wit::PolicyInfo {
        name: p.name,
        version: p.version,
        mode: match p.mode {
            Mode::Strict => wit::PolicyMode::Strict,
            Mode::Permissive => wit::PolicyMode::Permissive,
        },
        policy_hash: p.policy_hash,
        terms: to_u32(p.terms),
        relations: to_u32(p.relations),
        constraints: to_u32(p.constraints),
    }
}

fn policy_loaded_to_wit(l: PolicyLoaded) -> wit::PolicyLoaded {
    wit::PolicyLoaded {
        policy: policy_info_to_wit(l.policy),
        ledger_index: l.ledger_index,
        ledger_entry_hash: l.ledger_entry_hash,
        recorded: l.recorded,
    }
}

fn mismatch(expected: String, actual: String) -> wit::Mismatch {
    wit::Mismatch { expected, actual }
}

fn token_error_to_wit(e: TokenError) -> wit::TokenError {
    match e {
        TokenError::Malformed(why) => wit::TokenError::Malformed(why),
        TokenError::UnknownKey { key_id } => wit::TokenError::UnknownKey(key_id),
        TokenError::BadSignature => wit::TokenError::BadSignature,
        TokenError::Expired { expires_at } => wit::TokenError::Expired(expires_at),
        TokenError::WrongTool { expected, actual } => {
            wit::TokenError::WrongTool(mismatch(expected, actual))
        }
        TokenError::WrongActor { expected, actual } => {
            wit::TokenError::WrongActor(mismatch(expected, actual))
        }
    }
}

fn failure_to_wit(f: VerifyFailure) -> wit::VerifyFailure {
    wit::VerifyFailure {
        index: f.index,
        kind: match f.kind {
            FailureKind::Malformed => wit::FailureKind::Malformed,
            FailureKind::HashMismatch => wit::FailureKind::HashMismatch,
            FailureKind::IndexMismatch => wit::FailureKind::IndexMismatch,
            FailureKind::BrokenLink => wit::FailureKind::BrokenLink,
            FailureKind::BadGenesis => wit::FailureKind::BadGenesis,
            FailureKind::Missing => wit::FailureKind::Missing,
        },
        message: f.message,
    }
}

fn report_to_wit(r: VerifyReport) -> wit::VerifyReport {
    wit::VerifyReport {
        valid: r.valid,
        entries: r.entries,
        head_hash: r.head_hash,
        first_invalid: r.first_invalid,
        failure: r.failure.map(failure_to_wit),
    }
}

fn entry_to_wit(e: Entry, bytes: Vec<u8>) -> wit::LedgerEntry {
    let payload =
        String::from_utf8_lossy(&lexecon_core::canonical::to_vec(&e.payload)).into_owned();
    wit::LedgerEntry {
        index: e.index,
        prev_hash: e.prev_hash,
        timestamp: e.timestamp,
        kind: match e.kind {
            EntryKind::PolicyLoad => wit::EntryKind::PolicyLoad,
            EntryKind::Decision => wit::EntryKind::Decision,
        },
        payload,
        entry_hash: e.entry_hash,
        bytes,
    }
}
