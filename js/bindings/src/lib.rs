//! The wasm-bindgen glue between `lexecon-core` and the npm package
//! `lexecon`. It holds no policy logic: it turns JSON text into core types,
//! calls the engine's two-phase API and turns the results back into JSON.
//!
//! The JavaScript side (`js/src/lexecon.js`) drives it:
//! 1. `prepareDecisions(json)` / `preparePolicy(text)` decide against the
//!    chain head and return the decisions plus the ledger records to persist
//!    (`recordBytes(i)` copies each record's bytes out of wasm memory;
//!    `recordPtr(i)`/`recordLen(i)` say where they are, for an adapter that
//!    copies them itself before it returns);
//! 2. JavaScript awaits the storage adapter for every record, in order;
//! 3. `commit()` moves the head, or `abort()` forgets the work (fail closed).
//!
//! `observe(bytes)` applies an entry that is already stored (opening a
//! ledger, catching up after a failed append).
//!
//! Everything crosses the boundary as JSON text, measured against
//! `serde-wasm-bindgen` in `js/README.md` ("Boundary"). The logic lives in
//! [`Glue`], which is plain Rust and unit-tested natively; the
//! `#[wasm_bindgen]` types only convert errors into JavaScript `Error`s.

use std::fmt;

use lexecon_core::capability::{self, Expect};
use lexecon_core::engine::{PolicyFact, PolicyTrail};
use lexecon_core::ledger::{ChainVerifier, FailureKind, VerifyFailure};
use lexecon_core::time::SteppingClock;
use lexecon_core::{
    BufferedRandom, Clock, Decision, DecisionRequest, Ed25519Signer, Engine, EngineError,
    NodeConfig, OsRandom, Pending, Policy, PolicyLoaded, Random, RequestError, SeededRandom,
    TailRestorer,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use wasm_bindgen::prelude::*;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// An error as JavaScript sees it: a stable `code`, a message, and where
/// known the policy location or the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueError {
    /// `invalid_request`, `invalid_policy`, `ledger_corrupt`, `busy`, …
    pub code: &'static str,
    /// Lowercase, user values in backticks (the core's wording).
    pub message: String,
    /// Where, for policy and request errors.
    pub detail: Option<Box<ErrorDetail>>,
}

/// Where an error is, when it is about user input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetail {
    /// JSON path in the policy (`relations[1].type`).
    pub path: Option<String>,
    /// 1-based line in the policy text.
    pub line: Option<usize>,
    /// 1-based column in the policy text.
    pub column: Option<usize>,
    /// The request field at fault (`risk_level`, `request`).
    pub field: Option<String>,
}

impl GlueError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
        }
    }

    fn with_detail(mut self, detail: ErrorDetail) -> Self {
        self.detail = Some(Box::new(detail));
        self
    }
}

impl fmt::Display for GlueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for GlueError {}

impl From<EngineError> for GlueError {
    fn from(e: EngineError) -> Self {
        let out = Self::new(e.code(), e.to_string());
        match &e {
            EngineError::Policy(p) => out.with_detail(ErrorDetail {
                path: Some(p.path.clone()),
                line: p.line,
                column: p.column,
                field: None,
            }),
            EngineError::Request(r) => out.with_detail(ErrorDetail {
                field: Some(r.field.clone()),
                ..ErrorDetail::default()
            }),
            _ => out,
        }
    }
}

impl From<GlueError> for JsValue {
    fn from(e: GlueError) -> Self {
        let err = js_sys::Error::new(&e.message);
        let set = |key: &str, value: JsValue| {
            // Setting a property on a fresh Error object cannot fail.
            let _ = js_sys::Reflect::set(&err, &JsValue::from_str(key), &value);
        };
        set("code", JsValue::from_str(e.code));
        if let Some(d) = &e.detail {
            if let Some(path) = &d.path {
                set("path", JsValue::from_str(path));
            }
            if let Some(line) = d.line {
                set("line", JsValue::from_f64(line as f64));
            }
            if let Some(column) = d.column {
                set("column", JsValue::from_f64(column as f64));
            }
            if let Some(field) = &d.field {
                set("field", JsValue::from_str(field));
            }
        }
        err.into()
    }
}

fn encode<T: Serialize>(value: &T) -> Result<String, GlueError> {
    serde_json::to_string(value)
        .map_err(|e| GlueError::new("internal", format!("cannot encode the result: {e}")))
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// Deterministic mode for the shared vectors: a stepping clock and a seeded
/// random stream (never for production: ids become predictable).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deterministic {
    /// The clock: `start_ms`, advancing `step_ms` on every read.
    pub clock: ClockSpec,
    /// Seed of [`SeededRandom`] (its UTF-8 bytes).
    pub random_seed: String,
}

/// A stepping clock.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// First reading, Unix ms.
    pub start_ms: u64,
    /// Added after each reading.
    pub step_ms: u64,
}

/// Random bytes read from the runtime at a time (`crypto.getRandomValues`
/// allows up to 65,536): a decision uses 24–40, and each call from wasm
/// costs microseconds in Node, so one call serves about a hundred decisions.
const RANDOM_BUFFER: usize = 4096;

/// The runtime's clock: `Date.now()`.
#[derive(Debug, Clone, Copy)]
struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        let now = js_sys::Date::now();
        if now.is_finite() && now > 0.0 {
            now as u64
        } else {
            0
        }
    }
}

// ---------------------------------------------------------------------------
// The glue, in plain Rust
// ---------------------------------------------------------------------------

/// Work prepared and not yet committed.
#[derive(Debug)]
enum Prepared {
    Decisions(Pending<Vec<Result<Decision, RequestError>>>),
    Policy(Pending<PolicyLoaded>),
}

impl Prepared {
    fn records(&self) -> &[lexecon_core::EntryRecord] {
        match self {
            Self::Decisions(p) => &p.records,
            Self::Policy(p) => &p.records,
        }
    }
}

/// A decision or a per-request error, as one slot of a batch.
#[derive(Serialize)]
#[serde(untagged)]
enum Slot<'a> {
    Decision(&'a Decision),
    Error { error: SlotError<'a> },
}

#[derive(Serialize)]
struct SlotError<'a> {
    code: &'static str,
    field: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct RecordMeta<'a> {
    index: u64,
    entry_hash: &'a str,
    prev_hash: &'a str,
}

/// `{"decisions": [...], "records": [...]}` as [`Glue::prepare_decisions`]
/// returns it. Decisions, the hot path, are written by
/// [`Decision::write_json`]; the rest through `serde_json`.
fn decisions_answer(
    slots: &[Slot<'_>],
    records: &[lexecon_core::EntryRecord],
) -> Result<String, GlueError> {
    let failed =
        |e: serde_json::Error| GlueError::new("internal", format!("cannot encode the result: {e}"));
    let mut out = Vec::with_capacity(2048 * slots.len().max(1));
    out.extend_from_slice(b"{\"decisions\":[");
    for (i, slot) in slots.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match slot {
            Slot::Decision(d) => d.write_json(&mut out),
            Slot::Error { .. } => serde_json::to_writer(&mut out, slot).map_err(failed)?,
        }
    }
    out.extend_from_slice(b"],\"records\":");
    serde_json::to_writer(&mut out, &record_meta(records)).map_err(failed)?;
    out.push(b'}');
    // Every part is UTF-8: JSON text of `str`s.
    String::from_utf8(out)
        .map_err(|e| GlueError::new("internal", format!("cannot encode the result: {e}")))
}

fn record_meta(records: &[lexecon_core::EntryRecord]) -> Vec<RecordMeta<'_>> {
    records
        .iter()
        .map(|r| RecordMeta {
            index: r.index,
            entry_hash: &r.entry_hash,
            prev_hash: &r.prev_hash,
        })
        .collect()
}

/// The outcome of [`Glue::verify_token`] (the HTTP API's shape).
#[derive(Debug, Serialize)]
pub struct TokenCheck {
    /// Whether the token is good for this call.
    pub valid: bool,
    /// The claims, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<lexecon_core::TokenClaims>,
    /// Why not (`expired`, `bad_signature`, `wrong_tool`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The same, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn token_check(result: Result<lexecon_core::TokenClaims, lexecon_core::TokenError>) -> TokenCheck {
    match result {
        Ok(claims) => TokenCheck {
            valid: true,
            claims: Some(claims),
            error: None,
            detail: None,
        },
        Err(e) => TokenCheck {
            valid: false,
            claims: None,
            error: Some(e.code()),
            detail: Some(e.to_string()),
        },
    }
}

fn wants_to_js(wants: Option<u64>) -> f64 {
    wants.map_or(-1.0, |i| i as f64)
}

/// The engine plus the one operation it may have prepared.
pub struct Glue {
    engine: Engine,
    prepared: Option<Prepared>,
    restoring: Option<TailRestorer>,
}

impl fmt::Debug for Glue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Glue")
            .field("engine", &self.engine)
            .field("prepared", &self.prepared.is_some())
            .finish()
    }
}

impl Glue {
    /// An engine for `config_json` (`{node_id, default_token_ttl, max_token_ttl}`),
    /// signing with `seed` (32 bytes) or a fresh key, on the runtime's clock
    /// and randomness unless `deterministic_json` fixes them.
    ///
    /// # Errors
    /// `invalid_config` for a bad config, seed or deterministic spec;
    /// `random` when no key can be generated.
    pub fn new(
        config_json: &str,
        seed: Option<&[u8]>,
        deterministic_json: Option<&str>,
    ) -> Result<Self, GlueError> {
        let config: NodeConfig = serde_json::from_str(config_json)
            .map_err(|e| GlueError::new("invalid_config", format!("node config: {e}")))?;
        // The checks every host makes, so a node id or lifetime the server
        // refuses is not accepted here either.
        config
            .check()
            .map_err(|e| GlueError::new("invalid_config", e))?;
        let signer = match seed {
            Some(bytes) => {
                let seed: [u8; 32] = bytes.try_into().map_err(|_| {
                    GlueError::new(
                        "invalid_config",
                        format!("signing key must be 32 bytes, got {}", bytes.len()),
                    )
                })?;
                Ed25519Signer::from_seed(&seed)
            }
            None => {
                Ed25519Signer::generate().map_err(|e| GlueError::new("random", e.to_string()))?
            }
        };
        let (clock, random): (Box<dyn Clock + Send>, Box<dyn Random + Send>) =
            match deterministic_json {
                Some(text) => {
                    let d: Deterministic = serde_json::from_str(text).map_err(|e| {
                        GlueError::new("invalid_config", format!("deterministic: {e}"))
                    })?;
                    (
                        Box::new(SteppingClock::new(d.clock.start_ms, d.clock.step_ms)),
                        Box::new(SeededRandom::new(d.random_seed.as_bytes())),
                    )
                }
                None => (
                    Box::new(JsClock),
                    Box::new(BufferedRandom::<_, RANDOM_BUFFER>::new(OsRandom)),
                ),
            };
        Ok(Self {
            engine: Engine::new(config, Box::new(signer), clock, random),
            prepared: None,
            restoring: None,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn ensure_idle(&self) -> Result<(), GlueError> {
        if self.prepared.is_some() {
            return Err(GlueError::new(
                "busy",
                "an operation is prepared and not yet committed or aborted",
            ));
        }
        Ok(())
    }

    /// Decides the JSON array of requests `requests_json` against the head.
    /// Returns `{"decisions": [...], "records": [{index, entry_hash, prev_hash}]}`;
    /// a request that does not parse or validate gets
    /// `{"error": {"code": "invalid_request", "field", "message"}}` in its slot.
    ///
    /// # Errors
    /// `busy`, `invalid_request` when the text is not a JSON array,
    /// `batch_too_large`, and engine failures (signer, randomness).
    pub fn prepare_decisions(&mut self, requests_json: &str) -> Result<String, GlueError> {
        self.ensure_idle()?;
        // Fast path: every request parses. Otherwise parse one by one so
        // each bad request gets its own error and the others are decided.
        let (requests, errors): Parsed =
            match serde_json::from_str::<Vec<DecisionRequest>>(requests_json) {
                Ok(requests) => (requests, Vec::new()),
                Err(_) => parse_one_by_one(requests_json)?,
            };
        let pending = self.engine.prepare_decisions(&requests)?;
        let mut slots: Vec<Slot<'_>> = Vec::with_capacity(requests.len() + errors.len());
        let mut decided = pending.output().iter();
        let mut errors_iter = errors.iter().peekable();
        let total = requests.len() + errors.len();
        for position in 0..total {
            if let Some((_, e)) = errors_iter.next_if(|(at, _)| *at == position) {
                slots.push(Slot::Error {
                    error: SlotError {
                        code: "invalid_request",
                        field: &e.field,
                        message: &e.message,
                    },
                });
                continue;
            }
            match decided.next() {
                Some(Ok(d)) => slots.push(Slot::Decision(d)),
                Some(Err(e)) => slots.push(Slot::Error {
                    error: SlotError {
                        code: "invalid_request",
                        field: &e.field,
                        message: &e.message,
                    },
                }),
                None => {}
            }
        }
        let out = decisions_answer(&slots, &pending.records);
        match out {
            Ok(text) => {
                self.prepared = Some(Prepared::Decisions(pending));
                Ok(text)
            }
            Err(e) => {
                self.engine.abort(pending);
                Err(e)
            }
        }
    }

    /// Parses and prepares loading the policy in `text`. Returns
    /// `{"policy": {name, version, mode, policy_hash, …, recorded}, "records": [...]}`
    /// (no records when the policy is already active).
    ///
    /// # Errors
    /// `busy`; `invalid_policy` with path, line and column.
    pub fn prepare_policy(&mut self, text: &str) -> Result<String, GlueError> {
        self.ensure_idle()?;
        let policy = Policy::parse(text).map_err(|e| GlueError::from(EngineError::Policy(e)))?;
        let pending = self.engine.prepare_policy(policy)?;
        #[derive(Serialize)]
        struct Out<'a> {
            policy: &'a PolicyLoaded,
            records: Vec<RecordMeta<'a>>,
        }
        match encode(&Out {
            policy: pending.output(),
            records: record_meta(&pending.records),
        }) {
            Ok(text) => {
                self.prepared = Some(Prepared::Policy(pending));
                Ok(text)
            }
            Err(e) => {
                self.engine.abort(pending);
                Err(e)
            }
        }
    }

    /// The stored bytes of prepared record `i`.
    pub fn record_bytes(&self, i: usize) -> Option<&[u8]> {
        self.prepared
            .as_ref()
            .and_then(|p| p.records().get(i))
            .map(|r| r.bytes.as_slice())
    }

    /// Every prepared record was stored: move the head.
    ///
    /// # Errors
    /// `idle` when nothing is prepared.
    pub fn commit(&mut self) -> Result<(), GlueError> {
        match self.prepared.take() {
            Some(Prepared::Decisions(p)) => {
                self.engine.commit(p);
            }
            Some(Prepared::Policy(p)) => {
                self.engine.commit(p);
            }
            None => return Err(GlueError::new("idle", "nothing is prepared to commit")),
        }
        Ok(())
    }

    /// Forgets the prepared work (nothing was stored, or not all of it).
    /// Does nothing when nothing is prepared.
    pub fn abort(&mut self) {
        match self.prepared.take() {
            Some(Prepared::Decisions(p)) => self.engine.abort(p),
            Some(Prepared::Policy(p)) => self.engine.abort(p),
            None => {}
        }
    }

    /// Starts restoring this (fresh) engine from the end of a ledger of `len`
    /// entries; returns the index of the first entry to hand to
    /// [`Glue::restore_push`], or `None` when nothing needs reading.
    ///
    /// # Errors
    /// `busy` when an operation is prepared or the engine already has a head.
    pub fn restore_begin(&mut self, len: u64) -> Result<Option<u64>, GlueError> {
        self.ensure_idle()?;
        if !self.engine.is_empty() {
            return Err(GlueError::new(
                "busy",
                "restore needs a fresh engine; use observe to catch up",
            ));
        }
        let restorer = TailRestorer::new(&self.engine, len);
        let wants = restorer.wants();
        self.restoring = Some(restorer);
        Ok(wants)
    }

    /// Takes the stored bytes of the entry the restore asked for; returns the
    /// next index it wants, or `None` when it has read enough.
    ///
    /// # Errors
    /// `busy` without a restore in progress; `ledger_corrupt` for bytes that
    /// are not that entry.
    pub fn restore_push(&mut self, bytes: &[u8]) -> Result<Option<u64>, GlueError> {
        let restorer = self
            .restoring
            .as_mut()
            .ok_or_else(|| GlueError::new("busy", "no restore in progress"))?;
        restorer.push(bytes)?;
        Ok(restorer.wants())
    }

    /// Applies what the restore read: chain head, active policy, rate windows.
    ///
    /// # Errors
    /// `busy` without a restore in progress; `ledger_corrupt` when the stored
    /// policy no longer loads.
    pub fn restore_finish(&mut self) -> Result<(), GlueError> {
        let restorer = self
            .restoring
            .take()
            .ok_or_else(|| GlueError::new("busy", "no restore in progress"))?;
        restorer.finish(&mut self.engine).map_err(GlueError::from)
    }

    /// Applies an entry that is already stored.
    ///
    /// # Errors
    /// `busy`; `ledger_corrupt` when it does not continue the chain.
    pub fn observe(&mut self, bytes: &[u8]) -> Result<(), GlueError> {
        self.ensure_idle()?;
        self.engine.observe(bytes).map_err(GlueError::from)
    }

    /// Verifies a token with this node's key at the engine's time, as JSON
    /// `{"valid", "claims"?, "error"?, "detail"?}`.
    ///
    /// # Errors
    /// `internal` only if the answer cannot be encoded.
    pub fn verify_token(
        &self,
        token: &str,
        tool: Option<&str>,
        actor: Option<&str>,
    ) -> Result<String, GlueError> {
        encode(&token_check(
            self.engine.verify_token(token, Expect { tool, actor }),
        ))
    }

    /// Lowercase hex of the node's Ed25519 public key.
    pub fn public_key_hex(&self) -> String {
        lexecon_core::hash::hex(&self.engine.public_key())
    }
}

/// Requests that parsed, and the position and error of those that did not.
type Parsed = (Vec<DecisionRequest>, Vec<(usize, RequestError)>);

fn parse_one_by_one(requests_json: &str) -> Result<Parsed, GlueError> {
    // Raw, not `Value`: a `Value` would already have dropped a duplicated
    // key that `DecisionRequest::from_json` refuses.
    let items: Vec<Box<RawValue>> = serde_json::from_str(requests_json).map_err(|e| {
        GlueError::new(
            "invalid_request",
            format!("requests must be a JSON array of objects: {e}"),
        )
        .with_detail(ErrorDetail {
            field: Some("requests".into()),
            ..ErrorDetail::default()
        })
    })?;
    let mut requests = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (position, item) in items.into_iter().enumerate() {
        match DecisionRequest::from_json(item.get()) {
            Ok(r) => requests.push(r),
            Err(e) => errors.push((position, e)),
        }
    }
    Ok((requests, errors))
}

/// Verifies a compact token offline against `public_key` at `now_ms`.
///
/// # Errors
/// `invalid_key` when the key is not 32 bytes.
pub fn verify_token_offline(
    token: &str,
    public_key: &[u8],
    now_ms: u64,
    tool: Option<&str>,
    actor: Option<&str>,
) -> Result<String, GlueError> {
    let key: [u8; 32] = public_key.try_into().map_err(|_| {
        GlueError::new(
            "invalid_key",
            format!("public key must be 32 bytes, got {}", public_key.len()),
        )
    })?;
    encode(&token_check(capability::verify_token(
        token,
        &key,
        now_ms / 1000,
        Expect { tool, actor },
    )))
}

// ---------------------------------------------------------------------------
// The JavaScript surface
// ---------------------------------------------------------------------------

/// The engine for JavaScript: the two-phase API over JSON text.
#[wasm_bindgen]
pub struct WasmEngine {
    glue: Glue,
}

#[wasm_bindgen]
impl WasmEngine {
    /// See [`Glue::new`].
    #[wasm_bindgen(constructor)]
    pub fn new(
        config_json: &str,
        seed: Option<Vec<u8>>,
        deterministic_json: Option<String>,
    ) -> Result<WasmEngine, JsValue> {
        Ok(Self {
            glue: Glue::new(config_json, seed.as_deref(), deterministic_json.as_deref())?,
        })
    }

    /// See [`Glue::prepare_decisions`].
    #[wasm_bindgen(js_name = prepareDecisions)]
    pub fn prepare_decisions(&mut self, requests_json: &str) -> Result<String, JsValue> {
        Ok(self.glue.prepare_decisions(requests_json)?)
    }

    /// See [`Glue::prepare_policy`].
    #[wasm_bindgen(js_name = preparePolicy)]
    pub fn prepare_policy(&mut self, text: &str) -> Result<String, JsValue> {
        Ok(self.glue.prepare_policy(text)?)
    }

    /// A copy of prepared record `i`'s bytes (a new `Uint8Array`, copied
    /// straight from wasm memory: no copy is made inside wasm first).
    #[wasm_bindgen(js_name = recordBytes)]
    pub fn record_bytes(&self, i: usize) -> Option<js_sys::Uint8Array> {
        self.glue.record_bytes(i).map(js_sys::Uint8Array::from)
    }

    /// Where prepared record `i`'s bytes start in wasm memory
    /// (`wasmMemory()`); `recordLen(i)` bytes long. For a storage adapter
    /// that copies the bytes before it returns (the built-in memory
    /// storage), so no copy is made just to hand them over. Valid only until
    /// the next call into this module that may allocate (it may grow the
    /// memory) or that commits or aborts (it drops the record). 0 past the
    /// last record.
    #[wasm_bindgen(js_name = recordPtr)]
    pub fn record_ptr(&self, i: usize) -> u32 {
        // wasm32 addresses fit in u32.
        self.glue
            .record_bytes(i)
            .map_or(0, |bytes| bytes.as_ptr() as usize as u32)
    }

    /// The length of prepared record `i` (see `recordPtr`); 0 past the last.
    #[wasm_bindgen(js_name = recordLen)]
    pub fn record_len(&self, i: usize) -> u32 {
        self.glue
            .record_bytes(i)
            .map_or(0, |bytes| u32::try_from(bytes.len()).unwrap_or(0))
    }

    /// See [`Glue::commit`].
    pub fn commit(&mut self) -> Result<(), JsValue> {
        Ok(self.glue.commit()?)
    }

    /// See [`Glue::abort`].
    pub fn abort(&mut self) {
        self.glue.abort();
    }

    /// See [`Glue::observe`].
    pub fn observe(&mut self, bytes: &[u8]) -> Result<(), JsValue> {
        Ok(self.glue.observe(bytes)?)
    }

    /// See [`Glue::restore_begin`]; `-1` when nothing needs reading.
    #[wasm_bindgen(js_name = restoreBegin)]
    pub fn restore_begin(&mut self, len: f64) -> Result<f64, JsValue> {
        Ok(wants_to_js(self.glue.restore_begin(len as u64)?))
    }

    /// See [`Glue::restore_push`]; `-1` when the restore has read enough.
    #[wasm_bindgen(js_name = restorePush)]
    pub fn restore_push(&mut self, bytes: &[u8]) -> Result<f64, JsValue> {
        Ok(wants_to_js(self.glue.restore_push(bytes)?))
    }

    /// See [`Glue::restore_finish`].
    #[wasm_bindgen(js_name = restoreFinish)]
    pub fn restore_finish(&mut self) -> Result<(), JsValue> {
        Ok(self.glue.restore_finish()?)
    }

    /// See [`Glue::verify_token`].
    #[wasm_bindgen(js_name = verifyToken)]
    pub fn verify_token(
        &self,
        token: &str,
        tool: Option<String>,
        actor: Option<String>,
    ) -> Result<String, JsValue> {
        Ok(self
            .glue
            .verify_token(token, tool.as_deref(), actor.as_deref())?)
    }

    /// Lowercase hex of the Ed25519 public key.
    #[wasm_bindgen(getter, js_name = publicKey)]
    pub fn public_key(&self) -> String {
        self.glue.public_key_hex()
    }

    /// The key id, `ed25519:` and 16 hex digits.
    #[wasm_bindgen(getter, js_name = keyId)]
    pub fn key_id(&self) -> String {
        self.glue.engine().key_id().to_string()
    }

    /// The node id.
    #[wasm_bindgen(getter, js_name = nodeId)]
    pub fn node_id(&self) -> String {
        self.glue.engine().config().node_id.clone()
    }

    /// Entries in the chain this engine knows.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> f64 {
        self.glue.engine().len() as f64
    }

    /// Hash of the last entry (the genesis hash when empty).
    #[wasm_bindgen(getter, js_name = headHash)]
    pub fn head_hash(&self) -> String {
        self.glue.engine().head_hash().to_string()
    }

    /// Hash of the active policy, if any.
    #[wasm_bindgen(getter, js_name = policyHash)]
    pub fn policy_hash(&self) -> Option<String> {
        self.glue.engine().policy().map(|p| p.hash.clone())
    }
}

/// This module's `WebAssembly.Memory` (see `WasmEngine.recordPtr`).
#[wasm_bindgen(js_name = wasmMemory)]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// Verifies a compact capability token offline with a node's public key.
#[wasm_bindgen(js_name = verifyTokenWithKey)]
pub fn verify_token_with_key(
    token: &str,
    public_key: &[u8],
    now_ms: f64,
    tool: Option<String>,
    actor: Option<String>,
) -> Result<String, JsValue> {
    // Not a number of milliseconds: an error, never a time at which nothing
    // has expired yet.
    if !(now_ms.is_finite() && now_ms >= 0.0) {
        return Err(GlueError::new(
            "invalid_config",
            format!("the time to verify at must be a finite, non-negative number of milliseconds, got {now_ms}"),
        )
        .into());
    }
    Ok(verify_token_offline(
        token,
        public_key,
        now_ms as u64,
        tool.as_deref(),
        actor.as_deref(),
    )?)
}

/// Verifies a ledger one entry at a time (no JSON parsing), and with
/// [`WasmChainVerifier::signatures`] each decision's signature too.
#[wasm_bindgen]
pub struct WasmChainVerifier {
    inner: ChainVerifier,
    failure: Option<VerifyFailure>,
    /// The key decisions must be signed with, when signatures are checked.
    signer_key: Option<[u8; 32]>,
    /// The policy in force along the chain, for decisions to name.
    trail: PolicyTrail,
    /// The first entry whose chain hashes check out but whose signature,
    /// or the policy it names, does not: `(index, kind, why, head before it)`.
    signature_failure: Option<(u64, &'static str, String, String)>,
}

impl Default for WasmChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl WasmChainVerifier {
    /// A verifier expecting entry 0.
    #[wasm_bindgen(constructor)]
    pub fn new() -> WasmChainVerifier {
        Self {
            inner: ChainVerifier::new(),
            failure: None,
            signer_key: None,
            trail: PolicyTrail::new(),
            signature_failure: None,
        }
    }

    /// Also checks that every decision entry is signed by `public_key`
    /// (`lexecon_core::engine::verify_entry_signature`) and names the policy
    /// in force (`PolicyTrail`), as `lexecon ledger verify --signatures`.
    /// Call before the first `push`.
    pub fn signatures(&mut self, public_key: &[u8]) -> Result<(), JsValue> {
        let key: [u8; 32] = public_key.try_into().map_err(|_| {
            GlueError::new(
                "invalid_config",
                format!("public key must be 32 bytes, got {}", public_key.len()),
            )
        })?;
        self.signer_key = Some(key);
        Ok(())
    }

    /// Also holds the chain to what this node committed: `len` entries, the
    /// last with hash `head` (`ChainVerifier::committed`). Call before the
    /// first `push`.
    pub fn committed(&mut self, len: f64, head: &str) {
        // A length from `WasmEngine.length`: a whole number below 2^53.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let len = len as u64;
        self.inner = std::mem::take(&mut self.inner).committed(len, head);
    }

    /// Checks the next entry; `false` (and no further progress) once one fails.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if self.failure.is_some() || self.signature_failure.is_some() {
            return false;
        }
        let index = self.inner.next_index();
        let head_before = self.signer_key.map(|_| self.inner.head_hash().to_owned());
        if let Err(f) = self.inner.push(bytes) {
            self.failure = Some(f);
            return false;
        }
        let (Some(key), Some(head_before)) = (self.signer_key, head_before) else {
            return true;
        };
        let checked = match lexecon_core::Entry::parse(bytes) {
            Ok(entry) => lexecon_core::engine::verify_entry_signature(&entry, &key)
                .map_err(|why| ("bad_signature", why))
                .and_then(|()| {
                    PolicyFact::of(&entry)
                        .and_then(|fact| self.trail.push(index, fact))
                        .map_err(|why| ("policy_mismatch", why))
                }),
            Err(e) => Err(("bad_signature", format!("not an entry: {e}"))),
        };
        match checked {
            Ok(()) => true,
            Err((kind, why)) => {
                self.signature_failure = Some((index, kind, why, head_before));
                false
            }
        }
    }

    /// Records that storage had no entry (or could not read it) at the next index.
    pub fn missing(&mut self, message: &str) {
        if self.failure.is_none() && self.signature_failure.is_none() {
            self.failure = Some(VerifyFailure {
                index: self.inner.next_index(),
                kind: FailureKind::Missing,
                message: message.to_string(),
            });
        }
    }

    /// The report as JSON: `{valid, entries, head_hash, first_invalid?, failure?}`;
    /// a failure only the signatures show has the kind `bad_signature` or
    /// `policy_mismatch`.
    pub fn report(&self) -> Result<String, JsValue> {
        let Some((index, kind, why, head_before)) = &self.signature_failure else {
            return Ok(encode(&self.inner.report(self.failure.clone()))?);
        };
        Ok(encode(&serde_json::json!({
            "valid": false,
            "entries": index,
            "head_hash": head_before,
            "first_invalid": index,
            "failure": {
                "index": index,
                "kind": kind,
                "message": format!("{why} (its chain hashes check out: only the signatures show it)"),
            },
        }))?)
    }
}

/// Benchmark helper: `iterations` Ed25519 signatures of a 64-byte message
/// inside wasm through ed25519-dalek's standard `SigningKey::sign` (the
/// anchor that `decide` is compared with, as in the native criterion bench),
/// with a key made once. Returns a byte of the last signature so the work is
/// not optimised away.
#[wasm_bindgen(js_name = benchSign)]
pub fn bench_sign(iterations: u32) -> u8 {
    use ed25519_dalek::Signer as _;
    static KEY: std::sync::OnceLock<ed25519_dalek::SigningKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| ed25519_dalek::SigningKey::from_bytes(&[7; 32]));
    let message = [0x5a_u8; 64];
    let mut acc = 0u8;
    for _ in 0..iterations {
        let sig = key.sign(std::hint::black_box(&message)).to_bytes();
        acc ^= sig.first().copied().unwrap_or(0);
    }
    acc
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_batch_with_a_bad_request_still_refuses_duplicated_context_keys() {
        let mut g = glue();
        g.prepare_policy(POLICY).unwrap();
        g.commit().unwrap();
        let dup = r#"{"actor": "model", "proposed_action": "p", "tool": "t", "user_intent": "u", "risk_level": 1, "context": {"ok": false, "ok": true}}"#;
        let missing = r#"{"actor": "model"}"#;
        let out: Value = serde_json::from_str(
            &g.prepare_decisions(&format!("[{REQ}, {dup}, {missing}]"))
                .unwrap(),
        )
        .unwrap();
        g.commit().unwrap();
        let slots = out["decisions"].as_array().unwrap();
        assert_eq!(slots[0]["allowed"], true);
        assert_eq!(slots[1]["error"]["field"], "context", "{}", slots[1]);
        assert!(
            slots[1]["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("duplicate key `ok`"),
            "{}",
            slots[1]
        );
        assert_eq!(
            slots[2]["error"]["field"], "proposed_action",
            "{}",
            slots[2]
        );
    }

    const CONFIG: &str = r#"{"node_id": "n1", "default_token_ttl": 300, "max_token_ttl": 3600}"#;
    const DET: &str =
        r#"{"clock": {"start_ms": 1795525681123, "step_ms": 1000}, "random_seed": "t"}"#;
    const POLICY: &str = r#"{"name": "p", "mode": "permissive", "relations": []}"#;
    const REQ: &str = r#"{"actor": "model", "proposed_action": "p", "tool": "t", "user_intent": "u", "risk_level": 1}"#;

    fn glue() -> Glue {
        Glue::new(CONFIG, Some(&[7; 32]), Some(DET)).unwrap()
    }

    #[test]
    fn prepare_commit_moves_the_head_and_abort_does_not() {
        let mut g = glue();
        let out: Value = serde_json::from_str(&g.prepare_policy(POLICY).unwrap()).unwrap();
        assert_eq!(out["policy"]["recorded"], true);
        assert_eq!(out["records"].as_array().unwrap().len(), 1);
        let bytes = g.record_bytes(0).unwrap().to_vec();
        g.commit().unwrap();
        assert_eq!(g.engine().len(), 1);

        let out: Value =
            serde_json::from_str(&g.prepare_decisions(&format!("[{REQ}]")).unwrap()).unwrap();
        assert_eq!(out["decisions"][0]["allowed"], true);
        assert_eq!(out["records"][0]["index"], 1);
        assert_eq!(g.prepare_decisions("[]").unwrap_err().code, "busy");
        g.abort();
        assert_eq!(g.engine().len(), 1);

        // A second engine observes the stored entry and reaches the same head.
        let mut other = glue();
        other.observe(&bytes).unwrap();
        assert_eq!(other.engine().head_hash(), g.engine().head_hash());
        assert_eq!(other.observe(&bytes).unwrap_err().code, "ledger_corrupt");
    }

    /// A request without `proposed_action`.
    const MISSING: &str = r#"{"actor": "model", "tool": "t", "user_intent": "u", "risk_level": 1}"#;

    fn glue_with_policy() -> Glue {
        let mut g = glue();
        g.prepare_policy(POLICY).unwrap();
        g.commit().unwrap();
        g
    }

    #[test]
    fn bad_requests_get_their_own_slot() {
        let mut g = glue_with_policy();
        let out: Value = serde_json::from_str(
            &g.prepare_decisions(&format!("[{REQ}, {MISSING}, {REQ}]"))
                .unwrap(),
        )
        .unwrap();
        let d = out["decisions"].as_array().unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0]["ledger_index"], 1);
        assert_eq!(d[1]["error"]["code"], "invalid_request");
        assert!(
            d[1]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("proposed_action")
        );
        assert_eq!(d[2]["ledger_index"], 2);
        assert_eq!(out["records"].as_array().unwrap().len(), 2);
        g.commit().unwrap();
        assert_eq!(
            g.prepare_decisions("{").unwrap_err().code,
            "invalid_request"
        );
    }

    #[test]
    fn the_decisions_answer_is_what_serde_json_writes() {
        let mut g = glue_with_policy();
        let text = g
            .prepare_decisions(&format!("[{REQ}, {MISSING}, {REQ}]"))
            .unwrap();
        let Some(Prepared::Decisions(p)) = &g.prepared else {
            panic!("nothing prepared");
        };
        let decided: Vec<&Decision> = p.output().iter().map(|d| d.as_ref().unwrap()).collect();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        #[derive(Serialize)]
        struct Out<'a> {
            decisions: Vec<Slot<'a>>,
            records: Vec<RecordMeta<'a>>,
        }
        let error = &parsed["decisions"][1]["error"];
        let expected = serde_json::to_string(&Out {
            decisions: vec![
                Slot::Decision(decided[0]),
                Slot::Error {
                    error: SlotError {
                        code: "invalid_request",
                        field: error["field"].as_str().unwrap(),
                        message: error["message"].as_str().unwrap(),
                    },
                },
                Slot::Decision(decided[1]),
            ],
            records: record_meta(&p.records),
        })
        .unwrap();
        assert_eq!(text, expected);
    }

    #[test]
    fn policy_errors_say_where() {
        let mut g = glue();
        let e = g
            .prepare_policy("{\n  \"name\": \"p\",\n  \"mode\": \"loose\"\n}")
            .unwrap_err();
        assert_eq!(e.code, "invalid_policy");
        let d = e.detail.unwrap();
        assert_eq!(d.path.as_deref(), Some("mode"));
        assert!(d.line.is_some() && d.column.is_some(), "{d:?}");
    }

    #[test]
    fn tokens_verify_with_the_node_and_offline() {
        let mut g = glue();
        g.prepare_policy(POLICY).unwrap();
        g.commit().unwrap();
        let out: Value =
            serde_json::from_str(&g.prepare_decisions(&format!("[{REQ}]")).unwrap()).unwrap();
        g.commit().unwrap();
        let token = out["decisions"][0]["capability_token"]["token"]
            .as_str()
            .unwrap();
        let check: Value =
            serde_json::from_str(&g.verify_token(token, Some("t"), None).unwrap()).unwrap();
        assert_eq!(check["valid"], true);
        let check: Value =
            serde_json::from_str(&g.verify_token(token, Some("x"), None).unwrap()).unwrap();
        assert_eq!(check["error"], "wrong_tool");
        let key = g.engine().public_key();
        let ok: Value = serde_json::from_str(
            &verify_token_offline(token, &key, 1_795_525_690_000, None, None).unwrap(),
        )
        .unwrap();
        assert_eq!(ok["valid"], true);
        let late: Value = serde_json::from_str(
            &verify_token_offline(token, &key, 1_895_525_690_000, None, None).unwrap(),
        )
        .unwrap();
        assert_eq!(late["error"], "expired");
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            Glue::new("{}", Some(&[7; 32]), None).unwrap_err().code,
            "invalid_config"
        );
        assert_eq!(
            Glue::new(CONFIG, Some(&[7; 3]), None).unwrap_err().code,
            "invalid_config"
        );
        assert_eq!(
            Glue::new(CONFIG, Some(&[7; 32]), Some("{}"))
                .unwrap_err()
                .code,
            "invalid_config"
        );
    }
}
