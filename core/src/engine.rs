//! The engine: a state machine that turns requests into signed decisions
//! and ledger entries, and a synchronous driver that persists them.
//!
//! [`Engine`] does no I/O. It *prepares* work against the chain head it
//! knows ([`Engine::prepare_decisions`], [`Engine::prepare_policy`]); the
//! caller persists [`Pending::records`] and then *commits* (moving the head)
//! or *aborts* (as if nothing happened). That split lets JavaScript await an
//! async storage adapter and lets servers group many decisions into one
//! durable write. [`Governor`] is the driver for synchronous
//! [`Storage`]: it appends, catches up with entries
//! written by other replicas on conflict, and retries.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::capability::{self, CapabilityToken, Expect, TokenClaims, TokenError};
use crate::decision::{Decision, RateHit, RateWindows, Verdict, evaluate};
use crate::hash;
use crate::ledger::{
    self, ChainVerifier, Entry, EntryKind, FailureKind, GENESIS_HASH, VerifyFailure, VerifyReport,
};
use crate::policy::{Policy, PolicyError, PolicyInfo};
use crate::random::{Random, RandomError};
use crate::request::{DecisionRequest, MAX_BATCH, RequestError};
use crate::signer::{Signer, SignerError};
use crate::storage::{EntryRecord, Storage, StorageError};
use crate::time::{Clock, format_rfc3339_ms};

/// Domain separation for the signature of a denial's decision hash.
pub const DECISION_SIGNING_CONTEXT: &[u8] = b"lexecon-decision-v1\n";

/// What a denial's signature covers: `DECISION_SIGNING_CONTEXT ‖
/// decision_hash` (its lowercase hex text; DESIGN.md §6).
fn decision_signing_message(decision_hash: &str) -> Vec<u8> {
    let mut msg = Vec::with_capacity(DECISION_SIGNING_CONTEXT.len() + decision_hash.len());
    msg.extend_from_slice(DECISION_SIGNING_CONTEXT);
    msg.extend_from_slice(decision_hash.as_bytes());
    msg
}
/// `policy_version_hash` when no policy is loaded.
pub const NO_POLICY: &str = "none";

/// The longest token lifetime a node may be configured with, seconds (one
/// day): capability tokens are short-lived, and a lifetime past this is a
/// mistake in units more often than a choice.
pub const MAX_TOKEN_TTL_LIMIT: u64 = 86_400;

/// A node's settings that the engine needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's id, recorded in decisions and tokens.
    pub node_id: String,
    /// Token lifetime when a request asks for none, seconds (300).
    pub default_token_ttl: u64,
    /// Longest token lifetime, seconds (3600).
    pub max_token_ttl: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: "lexecon-node".into(),
            default_token_ttl: 300,
            max_token_ttl: 3600,
        }
    }
}

impl NodeConfig {
    /// Whether every host would accept these settings: a node id as
    /// [`check_node_id`] wants it, a default token lifetime of at least one
    /// second, and a longest lifetime no shorter than the default and at
    /// most [`MAX_TOKEN_TTL_LIMIT`].
    ///
    /// # Errors
    /// What is wrong, in words a user can act on.
    pub fn check(&self) -> Result<(), String> {
        check_node_id(&self.node_id)?;
        if self.default_token_ttl == 0 {
            return Err("the default token lifetime must be at least 1 second".into());
        }
        if self.max_token_ttl < self.default_token_ttl {
            return Err(format!(
                "the longest token lifetime ({} s) must not be shorter than the default ({} s)",
                self.max_token_ttl, self.default_token_ttl
            ));
        }
        if self.max_token_ttl > MAX_TOKEN_TTL_LIMIT {
            return Err(format!(
                "the longest token lifetime ({} s) must be at most {MAX_TOKEN_TTL_LIMIT} s (one day): capability tokens are short-lived",
                self.max_token_ttl
            ));
        }
        Ok(())
    }
}

/// A node id is 1 to 64 ASCII letters, digits, `.`, `_` or `-`, not
/// starting with `.` or `-`: it names the node's directory and appears in
/// every token and decision.
///
/// # Errors
/// Why `id` is not one.
pub fn check_node_id(id: &str) -> Result<(), String> {
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if id.is_empty() || id.len() > 64 || !ok_chars || id.starts_with('.') || id.starts_with('-') {
        return Err(format!(
            "node id `{}` is not valid: use 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.` or `-`",
            id.escape_debug()
        ));
    }
    Ok(())
}

/// Everything that can stop the engine from answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The request is invalid (a 4xx, not a denial).
    Request(RequestError),
    /// The policy does not load.
    Policy(PolicyError),
    /// The ledger could not be written or read: nothing was acknowledged.
    Storage(StorageError),
    /// The signer failed: nothing was acknowledged.
    Signer(SignerError),
    /// No randomness: nothing was acknowledged.
    Random(RandomError),
    /// The stored chain is inconsistent with what this node knows.
    Ledger(String),
    /// More than [`MAX_BATCH`] requests in one batch.
    BatchTooLarge(usize),
    /// The engine itself could not run the call (a sandboxed engine trapped
    /// or hit a resource limit and was restarted): nothing was decided or
    /// acknowledged, the caller may retry, and its answer is a denial.
    Unavailable(String),
}

impl EngineError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Request(_) => "invalid_request",
            Self::Policy(_) => "invalid_policy",
            Self::Storage(StorageError::Conflict { .. }) => "ledger_contention",
            Self::Storage(_) => "storage",
            Self::Signer(_) => "signer",
            Self::Random(_) => "random",
            Self::Ledger(_) => "ledger_corrupt",
            Self::BatchTooLarge(_) => "batch_too_large",
            Self::Unavailable(_) => "engine_unavailable",
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request(e) => write!(f, "invalid request: {e}"),
            Self::Policy(e) => write!(f, "invalid policy: {e}"),
            Self::Storage(e) => write!(f, "{e}"),
            Self::Signer(e) => write!(f, "{e}"),
            Self::Random(e) => write!(f, "{e}"),
            Self::Ledger(why) => write!(f, "ledger inconsistent: {why}"),
            Self::BatchTooLarge(n) => write!(
                f,
                "batch of {n} requests is larger than the limit of {MAX_BATCH}"
            ),
            Self::Unavailable(why) => write!(f, "engine unavailable: {why}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<RequestError> for EngineError {
    fn from(e: RequestError) -> Self {
        Self::Request(e)
    }
}
impl From<PolicyError> for EngineError {
    fn from(e: PolicyError) -> Self {
        Self::Policy(e)
    }
}
impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}
impl From<SignerError> for EngineError {
    fn from(e: SignerError) -> Self {
        Self::Signer(e)
    }
}
impl From<RandomError> for EngineError {
    fn from(e: RandomError) -> Self {
        Self::Random(e)
    }
}

/// What loading a policy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyLoaded {
    /// The policy (its members appear at the top level in JSON).
    #[serde(flatten)]
    pub policy: PolicyInfo,
    /// The ledger entry that records the load (the existing one if this
    /// policy was already active).
    pub ledger_index: u64,
    /// Hash of that entry.
    pub ledger_entry_hash: String,
    /// `false` when the policy was already the active one and nothing was written.
    pub recorded: bool,
}

/// Work prepared against the current chain head, not yet durable.
#[derive(Debug)]
pub struct Pending<T> {
    /// The entries to persist, consecutive from the head.
    pub records: Vec<EntryRecord>,
    output: T,
    head_after: (u64, String),
    counted: Vec<(RateHit, u64)>,
    policy: Option<Arc<Policy>>,
}

impl<T> Pending<T> {
    /// What will be returned once committed.
    pub fn output(&self) -> &T {
        &self.output
    }
}

/// The engine state machine (no I/O).
pub struct Engine {
    config: NodeConfig,
    signer: Box<dyn Signer + Send>,
    clock: Box<dyn Clock + Send>,
    random: Box<dyn Random + Send>,
    key_id: String,
    public_key: [u8; 32],
    policy: Option<Arc<Policy>>,
    policy_entry: Option<(u64, String)>,
    len: u64,
    head_hash: String,
    rates: RateWindows,
    last_now_ms: u64,
    /// Buffers reused by every decision (the record's and the token
    /// claims' canonical JSON), so the hot path does not allocate them.
    scratch: Scratch,
}

/// The capacity a scratch buffer keeps between decisions (a typical
/// record is ~1 KB; one with a large context may grow it further once).
const SCRATCH_KEEP: usize = 16 * 1024;

#[derive(Default)]
struct Scratch {
    record: Vec<u8>,
    claims: Vec<u8>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("node_id", &self.config.node_id)
            .field("key_id", &self.key_id)
            .field("len", &self.len)
            .field("head_hash", &self.head_hash)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A fresh engine at the genesis of an empty ledger.
    pub fn new(
        config: NodeConfig,
        signer: Box<dyn Signer + Send>,
        clock: Box<dyn Clock + Send>,
        random: Box<dyn Random + Send>,
    ) -> Self {
        let public_key = signer.public_key();
        Self {
            key_id: signer.key_id(),
            public_key,
            config,
            signer,
            clock,
            random,
            policy: None,
            policy_entry: None,
            len: 0,
            head_hash: GENESIS_HASH.to_string(),
            rates: RateWindows::default(),
            last_now_ms: 0,
            scratch: Scratch::default(),
        }
    }

    /// The node's settings.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Number of entries this engine knows to be in the ledger.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the ledger is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hash of the last entry (the genesis hash for an empty ledger).
    pub fn head_hash(&self) -> &str {
        &self.head_hash
    }

    /// The active policy.
    pub fn policy(&self) -> Option<&Arc<Policy>> {
        self.policy.as_ref()
    }

    /// The node's Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// The node's key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs a probe message and verifies the signature with the signer's
    /// public key, so that a signer that returns garbage, signs with another
    /// key than the one it names, or names no valid key is refused before
    /// any decision carries its signature (tokens nobody could verify).
    ///
    /// # Errors
    /// [`EngineError::Signer`] saying which.
    pub fn check_signer(&self) -> Result<(), EngineError> {
        const PROBE: &[u8] = b"lexecon-signer-probe\n";
        let signature = self.signer.sign(PROBE)?;
        crate::signer::check_public_key(&self.public_key)
            .and_then(|()| crate::signer::verify(&self.public_key, PROBE, &signature))
            .map_err(|e| {
            EngineError::Signer(SignerError(match e {
                crate::signer::VerifyError::BadPublicKey => format!(
                    "the signer's public key {} is not a valid Ed25519 key",
                    crate::hash::hex(&self.public_key)
                ),
                crate::signer::VerifyError::BadSignature => format!(
                    "a signature from the signer does not verify with its public key {}: it signs with another key, or returns something else than Ed25519 signatures",
                    crate::hash::hex(&self.public_key)
                ),
            }))
        })
    }

    /// The current time from the engine's clock (ms).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Prepares the ledger entry that makes `policy` active. When `policy`
    /// is already active nothing is prepared.
    ///
    /// # Errors
    /// [`EngineError::Ledger`] if the policy cannot be encoded.
    pub fn prepare_policy(&mut self, policy: Policy) -> Result<Pending<PolicyLoaded>, EngineError> {
        let mut loaded = loaded_summary(&policy);
        if let (Some(active), Some((index, hash))) = (&self.policy, &self.policy_entry)
            && active.hash == policy.hash
        {
            loaded.ledger_index = *index;
            loaded.ledger_entry_hash = hash.clone();
            return Ok(Pending {
                records: Vec::new(),
                output: loaded,
                head_after: (self.len, self.head_hash.clone()),
                counted: Vec::new(),
                policy: None,
            });
        }
        let doc: Value = serde_json::from_slice(&policy.canonical)
            .map_err(|e| EngineError::Ledger(e.to_string()))?;
        let payload = json!({
            "node_id": self.config.node_id,
            "policy_hash": policy.hash,
            "name": policy.name,
            "version": policy.version,
            "mode": policy.mode.as_str(),
            "counts": policy.counts(),
            "policy": doc,
        });
        let now = self.clock.now_ms();
        let record = ledger::build_entry_value(
            self.len,
            &self.head_hash,
            &format_rfc3339_ms(now),
            EntryKind::PolicyLoad,
            &payload,
        );
        loaded.ledger_index = record.index;
        loaded.ledger_entry_hash = record.entry_hash.clone();
        loaded.recorded = true;
        Ok(Pending {
            head_after: (self.len + 1, record.entry_hash.clone()),
            records: vec![record],
            output: loaded,
            counted: Vec::new(),
            policy: Some(Arc::new(policy)),
        })
    }

    /// Decides `requests` in order against the current head. Invalid
    /// requests get an `Err` in their slot and no ledger entry.
    ///
    /// # Errors
    /// [`EngineError`] when a decision could not be made at all (signer,
    /// randomness): nothing is prepared.
    pub fn prepare_decisions(
        &mut self,
        requests: &[DecisionRequest],
    ) -> Result<Pending<Vec<Result<Decision, RequestError>>>, EngineError> {
        if requests.len() > MAX_BATCH {
            return Err(EngineError::BatchTooLarge(requests.len()));
        }
        let mut pending = Pending {
            records: Vec::with_capacity(requests.len()),
            output: Vec::with_capacity(requests.len()),
            head_after: (self.len, self.head_hash.clone()),
            counted: Vec::new(),
            policy: None,
        };
        for req in requests {
            if let Err(e) = req.validate() {
                pending.output.push(Err(e));
                continue;
            }
            match self.decide_one(req, &mut pending) {
                Ok(d) => pending.output.push(Ok(d)),
                Err(e) => {
                    self.abort(pending);
                    return Err(e);
                }
            }
        }
        Ok(pending)
    }

    fn decide_one(
        &mut self,
        req: &DecisionRequest,
        pending: &mut Pending<Vec<Result<Decision, RequestError>>>,
    ) -> Result<Decision, EngineError> {
        let now = self.clock.now_ms();
        self.last_now_ms = self.last_now_ms.max(now);
        let timestamp = format_rfc3339_ms(now);
        let eval = evaluate(self.policy.as_deref(), req, now, &self.rates);
        let policy_hash = self
            .policy
            .as_ref()
            .map_or_else(|| NO_POLICY.to_string(), |p| p.hash.clone());
        let allowed = eval.verdict == Verdict::Permit;
        // All of this decision's random bytes in one call (one syscall),
        // consumed in a fixed order: request id, decision id, token id.
        let mut ids = [0u8; 40];
        let needed =
            if req.request_id.is_none() { 8 } else { 0 } + 16 + if allowed { 16 } else { 0 };
        self.random
            .fill(ids.get_mut(..needed).unwrap_or_default())?;
        let mut ids = ids.get(..needed).unwrap_or_default();
        let mut take = |n: usize| {
            let (head, rest) = ids.split_at(n.min(ids.len()));
            ids = rest;
            head
        };
        let request_id = match &req.request_id {
            Some(id) => id.clone(),
            None => hash::prefixed_hex("req_", take(8)),
        };
        let decision_id = hash::prefixed_hex("dec_", take(16));
        let token_times = if allowed {
            let ttl = req
                .token_ttl
                .unwrap_or(self.config.default_token_ttl)
                .clamp(1, self.config.max_token_ttl.max(1));
            let issued_at = now / 1000;
            let expires_at = issued_at.saturating_add(ttl).min(capability::MAX_TIME);
            Some((hash::prefixed_hex("tok_", take(16)), issued_at, expires_at))
        } else {
            None
        };

        let counted: Vec<RateHit> = if allowed { eval.rate_hits } else { Vec::new() };
        let record = DecisionRecord {
            actor: &req.actor,
            allowed,
            context: &req.context,
            data_classes: &req.data_classes,
            decision: eval.verdict.as_str(),
            decision_id: &decision_id,
            key_id: &self.key_id,
            node_id: &self.config.node_id,
            policy_mode: req.policy_mode.map(|m| m.as_str()),
            policy_version_hash: &policy_hash,
            proposed_action: &req.proposed_action,
            rate_limits: &counted,
            reason: &eval.reason,
            reasoning: &eval.reasoning,
            request_id: &request_id,
            resolved: &eval.resolved,
            risk_level: req.risk_level,
            timestamp: &timestamp,
            token: token_times
                .as_ref()
                .map(|(token_id, issued_at, expires_at)| TokenRef {
                    expires_at: *expires_at,
                    issued_at: *issued_at,
                    token_id,
                }),
            tool: &req.tool,
            user_intent: &req.user_intent,
        };
        let Scratch {
            record: mut record_bytes,
            claims: mut claims_bytes,
        } = std::mem::take(&mut self.scratch);
        for buf in [&mut record_bytes, &mut claims_bytes] {
            buf.clear();
            // A huge context's record does not pin its memory for ever.
            buf.shrink_to(SCRATCH_KEEP);
        }
        record.write(&mut record_bytes);
        let decision_hash = hash::sha256_hex(&record_bytes);

        // One signature per decision: a permit's token claims carry the
        // decision hash; a denial signs the decision hash itself.
        let (signature, capability_token) = match token_times {
            Some((token_id, issued_at, expires_at)) => {
                let claims = TokenClaims {
                    action: eval.resolved.action.into_owned(),
                    actor: req.actor.clone(),
                    decision_hash: decision_hash.clone(),
                    expires_at,
                    issued_at,
                    key_id: self.key_id.clone(),
                    node_id: self.config.node_id.clone(),
                    policy_version_hash: policy_hash.clone(),
                    token_id,
                    tool: req.tool.clone(),
                };
                claims.write_canonical(&mut claims_bytes);
                let sig = self
                    .signer
                    .sign(&capability::signing_message(&claims_bytes))?;
                let token = capability::encode(&claims_bytes, &sig);
                (sig, Some(CapabilityToken { claims, token }))
            }
            None => {
                let msg = decision_signing_message(&decision_hash);
                (self.signer.sign(&msg)?, None)
            }
        };
        let signature = base64_simd::URL_SAFE_NO_PAD.encode_to_string(signature);

        // payload = {"decision_hash", "record", "signature"}, canonical by
        // construction (sorted keys; hex and base64url need no escaping).
        let payload: [&[u8]; 7] = [
            b"{\"decision_hash\":\"",
            decision_hash.as_bytes(),
            b"\",\"record\":",
            &record_bytes,
            b",\"signature\":\"",
            signature.as_bytes(),
            b"\"}",
        ];
        let (len, prev) = std::mem::take(&mut pending.head_after);
        let entry =
            ledger::build_entry_from_parts(len, prev, &timestamp, EntryKind::Decision, &payload);
        self.scratch = Scratch {
            record: record_bytes,
            claims: claims_bytes,
        };
        for hit in counted {
            self.rates.record(&hit, now);
            pending.counted.push((hit, now));
        }
        pending.head_after = (len + 1, entry.entry_hash.clone());
        let decision = Decision {
            request_id,
            decision_id,
            allowed,
            decision: eval.verdict,
            reason: eval.reason,
            reasoning: eval.reasoning,
            policy_version_hash: policy_hash,
            decision_hash,
            capability_token,
            ledger_entry_hash: entry.entry_hash.clone(),
            ledger_index: entry.index,
            signature,
            timestamp,
        };
        pending.records.push(entry);
        Ok(decision)
    }

    /// The prepared entries are durable: move the head and return the output.
    pub fn commit<T>(&mut self, pending: Pending<T>) -> T {
        if let Some(policy) = pending.policy {
            // A policy is only ever pending with its one entry, the last one
            // before the head (`prepare_policy`); the records themselves may
            // already have been handed to storage.
            let (len, hash) = &pending.head_after;
            self.policy_entry = Some((len.saturating_sub(1), hash.clone()));
            self.policy = Some(policy);
        }
        (self.len, self.head_hash) = pending.head_after;
        if let Some(p) = &self.policy {
            self.rates.prune(self.last_now_ms, max_window(p));
        }
        pending.output
    }

    /// The prepared entries were not persisted: forget them.
    pub fn abort<T>(&mut self, pending: Pending<T>) {
        for (hit, at) in pending.counted.iter().rev() {
            self.rates.unrecord(hit, *at);
        }
    }

    /// Applies an entry that is already in the ledger (written by another
    /// replica, or found when catching up): checks that it links to the
    /// head, then updates the head, the active policy and rate windows.
    ///
    /// # Errors
    /// [`EngineError::Ledger`] when the entry does not continue the chain.
    pub fn observe(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let entry = Entry::parse(bytes)
            .map_err(|e| EngineError::Ledger(format!("entry {}: {e}", self.len)))?;
        if entry.index != self.len || entry.prev_hash != self.head_hash {
            return Err(EngineError::Ledger(format!(
                "entry {} does not continue the chain at {} (head {}): the ledger was forked or altered",
                entry.index, self.len, self.head_hash
            )));
        }
        let mut v = ChainVerifier::resume(self.len, &self.head_hash);
        v.push(bytes)
            .map_err(|f| EngineError::Ledger(f.to_string()))?;
        self.apply(&entry)?;
        self.len += 1;
        self.head_hash = entry.entry_hash;
        Ok(())
    }

    fn apply(&mut self, entry: &Entry) -> Result<(), EngineError> {
        match entry.kind {
            EntryKind::PolicyLoad => {
                let doc = entry.payload.get("policy").ok_or_else(|| {
                    EngineError::Ledger(format!(
                        "entry {}: policy_load without policy",
                        entry.index
                    ))
                })?;
                let policy = Policy::from_value(doc).map_err(|e| {
                    EngineError::Ledger(format!(
                        "entry {}: stored policy does not load: {e}",
                        entry.index
                    ))
                })?;
                self.policy = Some(Arc::new(policy));
                self.policy_entry = Some((entry.index, entry.entry_hash.clone()));
            }
            EntryKind::Decision => {
                let at = parse_timestamp_ms(&entry.timestamp).unwrap_or(0);
                if let Some(hits) = entry.payload.pointer("/record/rate_limits") {
                    let hits: Vec<RateHit> =
                        serde_json::from_value(hits.clone()).unwrap_or_default();
                    for hit in &hits {
                        self.rates.record(hit, at);
                    }
                }
            }
        }
        Ok(())
    }

    /// Verifies a token offline with this node's public key at the engine's
    /// current time.
    ///
    /// # Errors
    /// See [`capability::verify_token`].
    pub fn verify_token(&self, token: &str, expect: Expect<'_>) -> Result<TokenClaims, TokenError> {
        capability::verify_token(token, &self.public_key, self.clock.now_ms() / 1000, expect)
    }
}

/// Checks a decision's `signature` offline with the node's public key
/// (DESIGN.md §6): a denial signs its decision hash; a permit's signature is
/// its capability token's, whose claims carry the decision hash.
///
/// # Errors
/// [`TokenError::BadSignature`] when it does not verify,
/// [`TokenError::Malformed`] when the decision is inconsistent.
pub fn verify_decision_signature(
    decision: &Decision,
    public_key: &[u8; 32],
) -> Result<(), TokenError> {
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(&decision.signature)
        .map_err(|e| TokenError::Malformed(format!("signature: {e}")))?
        .try_into()
        .map_err(|_| TokenError::Malformed("signature is not 64 bytes".into()))?;
    match &decision.capability_token {
        Some(token) => {
            // Expiry does not matter for the decision itself: check at time 0.
            let claims = capability::verify_token(&token.token, public_key, 0, Expect::default())?;
            let token_sig = token.token.rsplit('.').next().unwrap_or_default();
            if claims.decision_hash != decision.decision_hash || token_sig != decision.signature {
                return Err(TokenError::Malformed(
                    "the token does not belong to this decision".into(),
                ));
            }
            Ok(())
        }
        None => {
            let msg = decision_signing_message(&decision.decision_hash);
            crate::signer::verify(public_key, &msg, &sig).map_err(|_| TokenError::BadSignature)
        }
    }
}

/// Checks what a stored decision entry proves about itself, with the
/// node's public key (DESIGN.md §5.3): its `decision_hash` is the SHA-256
/// of its record, and its `signature` verifies — a permit's over its token
/// claims, rebuilt from the record, a denial's over its decision hash.
/// Entries of other kinds carry no signature and pass.
///
/// The chain's hashes show whether entries were changed since; this shows
/// whether the node's key made them, which an attacker who can rewrite
/// storage and recompute every hash cannot fake.
///
/// # Errors
/// What is wrong, in words.
pub fn verify_entry_signature(entry: &Entry, public_key: &[u8; 32]) -> Result<(), String> {
    if entry.kind != EntryKind::Decision {
        return Ok(());
    }
    let text = |v: &Value, key: &str| -> Result<String, String> {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the decision has no `{key}` text"))
    };
    let number = |v: &Value, key: &str| -> Result<u64, String> {
        v.get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("the decision's token has no `{key}` time"))
    };
    let payload = &entry.payload;
    let record = payload
        .get("record")
        .ok_or("the decision has no `record`")?;
    let decision_hash = hash::sha256_hex(&crate::canonical::to_vec(record));
    if text(payload, "decision_hash")? != decision_hash {
        return Err(format!(
            "its decision_hash is not the SHA-256 of its record ({decision_hash}): the record was altered"
        ));
    }
    let key_id = text(record, "key_id")?;
    if key_id != crate::signer::key_id(public_key) {
        return Err(format!(
            "it was signed by key {key_id}, not this node's key {}",
            crate::signer::key_id(public_key)
        ));
    }
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(text(payload, "signature")?)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or("its signature is not 64 bytes of base64url")?;
    let message = match record.get("token") {
        Some(token) if !token.is_null() => {
            let resolved = record
                .get("resolved")
                .ok_or("the decision has no `resolved`")?;
            let claims = TokenClaims {
                action: text(resolved, "action")?,
                actor: text(record, "actor")?,
                decision_hash,
                expires_at: number(token, "expires_at")?,
                issued_at: number(token, "issued_at")?,
                key_id,
                node_id: text(record, "node_id")?,
                policy_version_hash: text(record, "policy_version_hash")?,
                token_id: text(token, "token_id")?,
                tool: text(record, "tool")?,
            };
            let mut canonical = Vec::with_capacity(512);
            claims.write_canonical(&mut canonical);
            capability::signing_message(&canonical).to_vec()
        }
        _ => decision_signing_message(&decision_hash),
    };
    crate::signer::verify(public_key, &message, &signature).map_err(|_| {
        "its signature does not verify with this node's key: it was forged or altered".to_string()
    })
}

/// What one entry says about the policy in force, for [`PolicyTrail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyFact {
    /// A `policy_load` of the policy with this hash.
    Loaded(String),
    /// A decision made under the policy with this hash ([`NO_POLICY`] when
    /// none was loaded), as its signed record says.
    DecidedUnder(String),
}

impl PolicyFact {
    /// The fact `entry` states.
    ///
    /// # Errors
    /// A `policy_load` without `policy_hash`, or a decision without
    /// `record.policy_version_hash`.
    pub fn of(entry: &Entry) -> Result<Self, String> {
        let text = |pointer: &str, what: &str| {
            entry
                .payload
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("the {what} has no `{}` text", &pointer[1..]))
        };
        Ok(match entry.kind {
            EntryKind::PolicyLoad => Self::Loaded(text("/policy_hash", "policy load")?),
            EntryKind::Decision => {
                Self::DecidedUnder(text("/record/policy_version_hash", "decision")?)
            }
        })
    }
}

/// Follows the policy in force along a chain from entry 0: every decision
/// must name, in its signed record, the policy the latest `policy_load`
/// before it loaded (every writer decides under the policy at the head it
/// links to). With the signatures checked, a `policy_load` rewritten in
/// the history, hashes recomputed, is found at the first decision after it
/// (DESIGN.md §5.3); a `policy_load` appended after the last decision
/// cannot be told from a real one.
#[derive(Debug, Clone, Default)]
pub struct PolicyTrail {
    /// The policy in force: its hash and the index of its `policy_load`.
    active: Option<(String, u64)>,
}

impl PolicyTrail {
    /// A trail at entry 0, with no policy loaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the fact of entry `index`, the next one.
    ///
    /// # Errors
    /// What is wrong, in words, when a decision names another policy than
    /// the one in force.
    pub fn push(&mut self, index: u64, fact: PolicyFact) -> Result<(), String> {
        match fact {
            PolicyFact::Loaded(hash) => {
                self.active = Some((hash, index));
                Ok(())
            }
            PolicyFact::DecidedUnder(hash) => match &self.active {
                Some((active, _)) if *active == hash => Ok(()),
                None if hash == NO_POLICY => Ok(()),
                Some((active, at)) => Err(format!(
                    "it was decided under policy {hash}, but the policy in force there is {active} (loaded by entry {at}): the policy history was rewritten"
                )),
                None => Err(format!(
                    "it was decided under policy {hash}, but no policy is loaded before it: the policy history was rewritten"
                )),
            },
        }
    }
}

fn loaded_summary(policy: &Policy) -> PolicyLoaded {
    PolicyLoaded {
        policy: policy.info(),
        ledger_index: 0,
        ledger_entry_hash: String::new(),
        recorded: false,
    }
}

fn max_window(policy: &Policy) -> u64 {
    policy
        .constraints()
        .iter()
        .filter_map(|c| c.rate_limit)
        .map(|r| r.window_ms)
        .max()
        .unwrap_or(0)
}

/// Parses `YYYY-MM-DDTHH:MM:SS.mmmZ` back to Unix milliseconds.
pub fn parse_timestamp_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24 || b.get(23) != Some(&b'Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms).ok()
}

/// What a decision entry's `payload.record` holds; `decision_hash` is the
/// SHA-256 of its canonical JSON ([`DecisionRecord::write`]). Fields are
/// declared in canonical (sorted) order; in tests `serde_json` serialises
/// the same struct, as the oracle for the hand-written form.
#[cfg_attr(test, derive(Serialize))]
struct DecisionRecord<'a> {
    actor: &'a str,
    allowed: bool,
    /// Written canonically (keys sorted at every level, RFC 8785 numbers).
    #[cfg_attr(test, serde(serialize_with = "canonical_json"))]
    context: &'a serde_json::Map<String, Value>,
    data_classes: &'a [String],
    decision: &'a str,
    decision_id: &'a str,
    key_id: &'a str,
    node_id: &'a str,
    policy_mode: Option<&'a str>,
    policy_version_hash: &'a str,
    proposed_action: &'a str,
    rate_limits: &'a [RateHit],
    reason: &'a str,
    reasoning: &'a [String],
    request_id: &'a str,
    resolved: &'a crate::decision::Resolved<'a>,
    risk_level: u8,
    timestamp: &'a str,
    token: Option<TokenRef<'a>>,
    tool: &'a str,
    user_intent: &'a str,
}

#[cfg_attr(test, derive(Serialize))]
struct TokenRef<'a> {
    expires_at: u64,
    issued_at: u64,
    token_id: &'a str,
}

impl DecisionRecord<'_> {
    /// Appends the record's RFC 8785 canonical JSON: keys in sorted order,
    /// strings through [`canonical::write_string`], integers in decimal.
    /// Written by hand because it is the hot path of every decision
    /// (`serde_json` took about three times as long).
    fn write(&self, out: &mut Vec<u8>) {
        use crate::canonical::{write_string as string, write_string_array, write_u64};
        out.extend_from_slice(b"{\"actor\":");
        string(out, self.actor);
        out.extend_from_slice(if self.allowed {
            b",\"allowed\":true,\"context\":"
        } else {
            b",\"allowed\":false,\"context\":"
        });
        crate::canonical::write_object(out, self.context);
        out.extend_from_slice(b",\"data_classes\":");
        write_string_array(out, self.data_classes);
        out.extend_from_slice(b",\"decision\":");
        string(out, self.decision);
        out.extend_from_slice(b",\"decision_id\":");
        string(out, self.decision_id);
        out.extend_from_slice(b",\"key_id\":");
        string(out, self.key_id);
        out.extend_from_slice(b",\"node_id\":");
        string(out, self.node_id);
        out.extend_from_slice(b",\"policy_mode\":");
        match self.policy_mode {
            Some(mode) => string(out, mode),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"policy_version_hash\":");
        string(out, self.policy_version_hash);
        out.extend_from_slice(b",\"proposed_action\":");
        string(out, self.proposed_action);
        out.extend_from_slice(b",\"rate_limits\":[");
        for (i, hit) in self.rate_limits.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"{" } else { b",{" });
            out.extend_from_slice(b"\"constraint\":");
            string(out, &hit.constraint);
            out.extend_from_slice(b",\"key\":");
            string(out, &hit.key);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"reason\":");
        string(out, self.reason);
        out.extend_from_slice(b",\"reasoning\":");
        write_string_array(out, self.reasoning);
        out.extend_from_slice(b",\"request_id\":");
        string(out, self.request_id);
        out.extend_from_slice(b",\"resolved\":{\"action\":");
        string(out, &self.resolved.action);
        out.extend_from_slice(b",\"actor\":");
        string(out, self.resolved.actor);
        out.extend_from_slice(b",\"data_classes\":");
        write_string_array(out, &self.resolved.data_classes);
        out.extend_from_slice(b",\"tool\":");
        string(out, self.resolved.tool);
        out.extend_from_slice(b"},\"risk_level\":");
        write_u64(out, u64::from(self.risk_level));
        out.extend_from_slice(b",\"timestamp\":");
        string(out, self.timestamp);
        out.extend_from_slice(b",\"token\":");
        match &self.token {
            Some(t) => {
                out.extend_from_slice(b"{\"expires_at\":");
                write_u64(out, t.expires_at);
                out.extend_from_slice(b",\"issued_at\":");
                write_u64(out, t.issued_at);
                out.extend_from_slice(b",\"token_id\":");
                string(out, t.token_id);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"tool\":");
        string(out, self.tool);
        out.extend_from_slice(b",\"user_intent\":");
        string(out, self.user_intent);
        out.push(b'}');
    }
}

/// The context as the record writes it: canonical JSON, passed through raw.
#[cfg(test)]
fn canonical_json<S: serde::Serializer>(
    map: &&serde_json::Map<String, Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    let bytes = crate::canonical::to_vec_object(map);
    let text = std::str::from_utf8(&bytes).map_err(S::Error::custom)?;
    serde_json::value::RawValue::from_string(text.to_owned())
        .map_err(S::Error::custom)?
        .serialize(s)
}

/// The synchronous driver: an [`Engine`] plus its [`Storage`].
pub struct Governor<S> {
    engine: Engine,
    storage: S,
}

impl<S> fmt::Debug for Governor<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Governor")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// How many times an append is retried after another writer got there first.
const MAX_CONFLICT_RETRIES: usize = 64;
/// Entries read per storage call when scanning.
const SCAN_CHUNK: u64 = 1024;

impl<S: Storage> Governor<S> {
    /// Opens the ledger in `storage`: restores the chain head, the active
    /// policy (from its latest `policy_load` entry) and the rate-limit
    /// windows. An engine that already holds a chain head only catches up
    /// with the entries after it.
    ///
    /// # Errors
    /// [`EngineError::Signer`] when the signer's signature does not verify
    /// with its public key (see [`Engine::check_signer`]);
    /// [`EngineError::Storage`] when storage fails, [`EngineError::Ledger`]
    /// when the stored policy or head cannot be read.
    pub fn open(mut engine: Engine, mut storage: S) -> Result<Self, EngineError> {
        engine.check_signer()?;
        if !engine.is_empty() {
            // Already restored (e.g. by a `TailRestorer`): only catch up.
            let mut gov = Self { engine, storage };
            gov.catch_up()?;
            return Ok(gov);
        }
        let len = storage.len()?;
        if len > 0 {
            restore(&mut engine, &mut storage, len)?;
        }
        Ok(Self { engine, storage })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The storage.
    pub fn storage(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Loads (and records) a policy from JSON text.
    ///
    /// # Errors
    /// [`EngineError::Policy`] with path, line and column; storage errors.
    pub fn load_policy(&mut self, text: &str) -> Result<PolicyLoaded, EngineError> {
        let policy = Policy::parse(text)?;
        self.load_parsed_policy(policy)
    }

    /// Loads (and records) an already parsed policy.
    ///
    /// # Errors
    /// Storage errors.
    pub fn load_parsed_policy(&mut self, policy: Policy) -> Result<PolicyLoaded, EngineError> {
        self.run(|engine| engine.prepare_policy(policy.clone()))
    }

    /// Decides one request; returns only after its ledger entry is durable.
    ///
    /// # Errors
    /// [`EngineError::Request`] for an invalid request; storage, signer and
    /// randomness failures (the caller must treat these as a denial).
    pub fn decide(&mut self, request: &DecisionRequest) -> Result<Decision, EngineError> {
        let mut out = self.decide_batch(std::slice::from_ref(request))?;
        match out.pop() {
            Some(Ok(d)) => Ok(d),
            Some(Err(e)) => Err(EngineError::Request(e)),
            None => Err(EngineError::Ledger("no decision produced".into())),
        }
    }

    /// Decides many requests, appended in order with one durable write.
    ///
    /// # Errors
    /// As [`Governor::decide`], for the batch as a whole; invalid requests
    /// get an `Err` in their own slot.
    pub fn decide_batch(
        &mut self,
        requests: &[DecisionRequest],
    ) -> Result<Vec<Result<Decision, RequestError>>, EngineError> {
        self.run(|engine| engine.prepare_decisions(requests))
    }

    fn run<T>(
        &mut self,
        mut prepare: impl FnMut(&mut Engine) -> Result<Pending<T>, EngineError>,
    ) -> Result<T, EngineError> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let mut pending = prepare(&mut self.engine)?;
            if pending.records.is_empty() {
                return Ok(self.engine.commit(pending));
            }
            match self
                .storage
                .append_owned(std::mem::take(&mut pending.records))
            {
                Ok(()) => return Ok(self.engine.commit(pending)),
                Err(StorageError::Conflict { .. }) => {
                    self.engine.abort(pending);
                    self.catch_up()?;
                }
                Err(e) => {
                    self.engine.abort(pending);
                    return Err(EngineError::Storage(e));
                }
            }
        }
        Err(EngineError::Storage(StorageError::Unavailable(format!(
            "gave up after {MAX_CONFLICT_RETRIES} append conflicts with other writers"
        ))))
    }

    /// Reads and applies entries that other writers appended.
    ///
    /// # Errors
    /// Storage errors, or [`EngineError::Ledger`] if they do not link.
    pub fn catch_up(&mut self) -> Result<(), EngineError> {
        let len = self.storage.len()?;
        if len < self.engine.len() {
            // Never a conflict with another writer: what this node committed is gone.
            return Err(EngineError::Ledger(format!(
                "the ledger holds {len} entries but this node has committed {} (head {}): entries were removed or the ledger was replaced; run `lexecon ledger verify`",
                self.engine.len(),
                self.engine.head_hash()
            )));
        }
        while self.engine.len() < len {
            let start = self.engine.len();
            let chunk = self.storage.get_range(start, len.min(start + SCAN_CHUNK))?;
            if chunk.is_empty() {
                return Err(EngineError::Ledger(format!(
                    "entry {start} is missing from storage"
                )));
            }
            for bytes in chunk {
                self.engine.observe(&bytes)?;
            }
        }
        Ok(())
    }

    /// Verifies the whole stored chain and reports the first bad entry.
    ///
    /// # Errors
    /// [`EngineError::Storage`] when storage cannot be read at all.
    pub fn verify_ledger(&mut self) -> Result<VerifyReport, EngineError> {
        // Held to this node's own head too: entries cut off the end, or a
        // chain rewritten with its hashes recomputed, are not "valid".
        let verifier = ChainVerifier::new().committed(self.engine.len(), self.engine.head_hash());
        verify_storage_from(&mut self.storage, verifier, 1, |_| {})
    }

    /// The entry at `index`.
    ///
    /// # Errors
    /// Storage errors; [`EngineError::Ledger`] if the bytes do not parse.
    pub fn entry(&mut self, index: u64) -> Result<Option<Entry>, EngineError> {
        let Some(bytes) = self.storage.get(index)? else {
            return Ok(None);
        };
        let entry =
            Entry::parse(&bytes).map_err(|e| EngineError::Ledger(format!("entry {index}: {e}")))?;
        // Storage is not trusted to answer for the index it was asked.
        if entry.index != index {
            return Err(EngineError::Ledger(format!(
                "storage returned entry {} when asked for entry {index}",
                entry.index
            )));
        }
        Ok(Some(entry))
    }

    /// The entry whose hash is `entry_hash`.
    ///
    /// # Errors
    /// As [`Governor::entry`]; [`EngineError::Ledger`] when storage's hash
    /// index points at another entry.
    pub fn entry_by_hash(&mut self, entry_hash: &str) -> Result<Option<Entry>, EngineError> {
        let Some(index) = self.storage.find(entry_hash)? else {
            return Ok(None);
        };
        let entry = self.entry(index)?;
        if let Some(e) = &entry
            && !e.entry_hash.eq_ignore_ascii_case(entry_hash)
        {
            return Err(EngineError::Ledger(format!(
                "storage's hash index gives entry {index} for hash {entry_hash}, but that entry's hash is {}: the index was altered",
                e.entry_hash
            )));
        }
        Ok(entry)
    }

    /// Verifies a capability token with this node's key.
    ///
    /// # Errors
    /// See [`capability::verify_token`].
    pub fn verify_token(&self, token: &str, expect: Expect<'_>) -> Result<TokenClaims, TokenError> {
        self.engine.verify_token(token, expect)
    }
}

/// Walks every entry in `storage`, calling `progress(verified_so_far)` per
/// chunk, and reports the first bad entry.
///
/// # Errors
/// [`EngineError::Storage`] when storage is unavailable.
pub fn verify_storage<S: Storage + ?Sized>(
    storage: &mut S,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, EngineError> {
    verify_storage_parallel(storage, 1, progress)
}

/// [`verify_storage`], checking the entries read on up to `threads`
/// threads (see [`ChainVerifier::push_all`]); the report is the same.
///
/// # Errors
/// [`EngineError::Storage`] when storage is unavailable.
pub fn verify_storage_parallel<S: Storage + ?Sized>(
    storage: &mut S,
    threads: usize,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, EngineError> {
    verify_storage_from(storage, ChainVerifier::new(), threads, progress)
}

/// [`verify_storage_parallel`] with `v` as the verifier (e.g. one that also
/// holds the chain to a node's committed head: [`ChainVerifier::committed`]).
///
/// # Errors
/// [`EngineError::Storage`] when storage is unavailable.
pub fn verify_storage_from<S: Storage + ?Sized>(
    storage: &mut S,
    mut v: ChainVerifier,
    threads: usize,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, EngineError> {
    let len = storage.len()?;
    let chunk_len = SCAN_CHUNK.saturating_mul(threads.max(1) as u64);
    while v.next_index() < len {
        let start = v.next_index();
        let chunk = match storage.get_range(start, len.min(start.saturating_add(chunk_len))) {
            Ok(c) => c,
            Err(StorageError::Corrupt { index, detail }) => {
                // Verify entry by entry up to the damaged one.
                for i in start..index {
                    let Some(bytes) = storage.get(i)? else { break };
                    if let Err(f) = v.push(&bytes) {
                        return Ok(v.report(Some(f)));
                    }
                }
                let failure = VerifyFailure {
                    index,
                    kind: FailureKind::Malformed,
                    message: format!("storage reports damage: {detail}"),
                };
                return Ok(v.report(Some(failure)));
            }
            Err(e) => return Err(e.into()),
        };
        if chunk.is_empty() {
            let failure = VerifyFailure {
                index: start,
                kind: FailureKind::Missing,
                message: "entry is missing from storage".into(),
            };
            return Ok(v.report(Some(failure)));
        }
        if let Err(f) = v.push_all(&chunk, threads) {
            return Ok(v.report(Some(f)));
        }
        progress(v.next_index());
    }
    Ok(v.report(None))
}

fn restore<S: Storage>(engine: &mut Engine, storage: &mut S, len: u64) -> Result<(), EngineError> {
    let mut restorer = TailRestorer::new(engine, len);
    while let Some(last) = restorer.wants() {
        let start = (last + 1).saturating_sub(SCAN_CHUNK);
        let chunk = storage.get_range(start, last + 1)?;
        if chunk.len() as u64 != last + 1 - start {
            return Err(EngineError::Ledger(format!(
                "entries {start}..={last} could not all be read"
            )));
        }
        for bytes in chunk.iter().rev() {
            restorer.push(bytes)?;
            if restorer.wants().is_none() {
                break;
            }
        }
    }
    restorer.finish(engine)
}

/// Restores an [`Engine`] from the end of an existing ledger, newest entry
/// first, for hosts without a synchronous [`Storage`] (JavaScript's async
/// adapters). It reads only as far back as it must: to the latest
/// `policy_load` entry and across the longest rate-limit window.
///
/// ```text
/// let mut r = TailRestorer::new(&engine, len);
/// while let Some(index) = r.wants() { r.push(&read(index))?; }
/// r.finish(&mut engine)?;
/// ```
#[derive(Debug)]
pub struct TailRestorer {
    remaining: u64,
    now: u64,
    head: Option<(u64, String)>,
    policy: Option<Entry>,
    horizon: Option<u64>,
    hits: Vec<(u64, Vec<RateHit>)>,
    /// The `prev_hash` of the entry pushed last: the hash the next one
    /// pushed (the entry before it) must have.
    link: Option<String>,
    done: bool,
}

impl TailRestorer {
    /// A restorer for a ledger of `len` entries (reads the engine's clock once
    /// when `len > 0`).
    pub fn new(engine: &Engine, len: u64) -> Self {
        let now = if len > 0 { engine.clock.now_ms() } else { 0 };
        Self {
            remaining: len,
            now,
            head: None,
            policy: None,
            horizon: None,
            hits: Vec::new(),
            link: None,
            done: len == 0,
        }
    }

    /// The index of the entry to [`push`](Self::push) next, or `None` when
    /// enough has been read.
    pub fn wants(&self) -> Option<u64> {
        if self.done || self.remaining == 0 {
            None
        } else {
            Some(self.remaining - 1)
        }
    }

    /// Takes the stored bytes of entry [`wants`](Self::wants).
    ///
    /// # Errors
    /// [`EngineError::Ledger`] when the bytes are not that entry.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let Some(index) = self.wants() else {
            return Ok(());
        };
        // What the engine takes from here (the head, the active policy, rate
        // windows) must be what was recorded: each entry read is checked as
        // `verify` would, and linked to the one read before it.
        let altered =
            |f: VerifyFailure| EngineError::Ledger(format!("{f}; run `lexecon ledger verify`"));
        let checked = ledger::check_entry(bytes, index).map_err(altered)?;
        if let Some(link) = &self.link
            && link != checked.entry_hash()
        {
            return Err(altered(ledger::link_failure(index + 1)));
        }
        if index == 0 && checked.prev_hash != GENESIS_HASH.as_bytes() {
            return Err(altered(ledger::link_failure(0)));
        }
        self.link = Some(String::from_utf8_lossy(checked.prev_hash).into_owned());
        let entry =
            Entry::parse(bytes).map_err(|e| EngineError::Ledger(format!("entry {index}: {e}")))?;
        self.remaining -= 1;
        if self.head.is_none() {
            self.head = Some((index, entry.entry_hash.clone()));
        }
        let at = parse_timestamp_ms(&entry.timestamp).unwrap_or(0);
        if let Some(h) = self.horizon
            && at.saturating_add(h) < self.now
        {
            self.done = true;
            return Ok(());
        }
        match entry.kind {
            EntryKind::PolicyLoad if self.policy.is_none() => {
                let doc = entry
                    .payload
                    .get("policy")
                    .and_then(|doc| Policy::from_value(doc).ok());
                self.horizon = Some(doc.map_or(0, |p| max_window(&p)));
                self.policy = Some(entry);
            }
            EntryKind::Decision => {
                if let Some(hits) = entry.payload.pointer("/record/rate_limits")
                    && let Ok(hits) = serde_json::from_value::<Vec<RateHit>>(hits.clone())
                    && !hits.is_empty()
                {
                    self.hits.push((at, hits));
                }
            }
            EntryKind::PolicyLoad => {}
        }
        Ok(())
    }

    /// Applies what was read: head, active policy, rate-limit windows.
    ///
    /// # Errors
    /// [`EngineError::Ledger`] when the stored policy no longer loads.
    pub fn finish(self, engine: &mut Engine) -> Result<(), EngineError> {
        if let Some(p) = &self.policy {
            engine.apply(p)?;
        }
        for (at, hits) in self.hits.iter().rev() {
            for hit in hits {
                engine.rates.record(hit, *at);
            }
        }
        if let Some((index, hash)) = self.head {
            engine.len = index + 1;
            engine.head_hash = hash;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::escapable_text as text;
    use crate::decision::Resolved;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hand_written_record_is_what_serde_json_writes(
            strs in proptest::collection::vec(text(), 12),
            lists in proptest::collection::vec(proptest::collection::vec(text(), 0..3), 3),
            allowed: bool,
            risk_level in 1u8..=5,
            mode in proptest::option::of(text()),
            token in proptest::option::of((0u64..=capability::MAX_TIME, 0u64..=capability::MAX_TIME)),
            hits in proptest::collection::vec((text(), text()), 0..3),
            context in proptest::collection::btree_map(text(), text(), 0..3),
        ) {
            let s = |i: usize| strs.get(i).map_or("", String::as_str);
            let context: serde_json::Map<String, Value> =
                context.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let resolved = Resolved {
                action: s(0).into(),
                actor: s(1),
                data_classes: lists[0].iter().map(String::as_str).collect(),
                tool: s(2),
            };
            let hits: Vec<RateHit> = hits
                .into_iter()
                .map(|(constraint, key)| RateHit { constraint, key })
                .collect();
            let record = DecisionRecord {
                actor: s(3),
                allowed,
                context: &context,
                data_classes: &lists[1],
                decision: s(4),
                decision_id: s(5),
                key_id: s(6),
                node_id: s(7),
                policy_mode: mode.as_deref(),
                policy_version_hash: s(8),
                proposed_action: s(9),
                rate_limits: &hits,
                reason: s(10),
                reasoning: &lists[2],
                request_id: s(11),
                resolved: &resolved,
                risk_level,
                timestamp: s(0),
                token: token.map(|(issued_at, expires_at)| TokenRef {
                    expires_at,
                    issued_at,
                    token_id: s(1),
                }),
                tool: s(2),
                user_intent: s(3),
            };
            let mut ours = Vec::new();
            record.write(&mut ours);
            let theirs = serde_json::to_vec(&record).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
        }
    }
}
