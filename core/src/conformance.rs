//! The cross-host conformance vectors (`tests/vectors/*.json`).
//!
//! A vector fixes everything that could differ between hosts — node
//! config, signing seed, random seed, a stepping clock — then lists steps
//! (`load_policy`, `decide`, `decide_batch`). Running it yields an
//! [`Outcome`]: every decision or error and every ledger entry's exact
//! bytes. The native core's outcome is stored in the vector as `expected`;
//! every host (the wasmtime component, the npm package) must reproduce it
//! byte for byte. Hand-written `expect` blocks on steps state the
//! semantics a person checked (verdict, reason words, reasoning ids).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decision::Decision;
use crate::engine::{Engine, EngineError, Governor, NodeConfig, PolicyLoaded};
use crate::hash;
use crate::random::SeededRandom;
use crate::request::{DecisionRequest, RequestError};
use crate::signer::Ed25519Signer;
use crate::storage::{MemoryStorage, Storage};
use crate::time::SteppingClock;

/// One vector file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vector {
    /// What it shows.
    pub description: String,
    /// Node settings.
    pub node: NodeConfig,
    /// 64 hex digits: the Ed25519 seed.
    pub signing_seed: String,
    /// Seed of the deterministic random stream ([`SeededRandom`], UTF-8 bytes).
    pub random_seed: String,
    /// The clock: `start_ms`, advancing `step_ms` on every read.
    pub clock: ClockSpec,
    /// What to do, in order.
    pub steps: Vec<Step>,
    /// The native core's outcome (generated; `LEXECON_BLESS=1` rewrites it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Outcome>,
}

/// A stepping clock.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    /// First reading, Unix ms.
    pub start_ms: u64,
    /// Added after each reading.
    pub step_ms: u64,
}

/// One step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Load this policy (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_policy: Option<Value>,
    /// Decide this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decide: Option<Value>,
    /// Decide these requests as one batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decide_batch: Option<Vec<Value>>,
    /// What a person checked (for `decide`, or one per batch item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Value>,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Per step: a policy summary, a list of decisions/errors, or an error.
    pub steps: Vec<Value>,
    /// Every ledger entry's stored bytes, as UTF-8 strings.
    pub ledger: Vec<String>,
    /// Hash of the last entry.
    pub head_hash: String,
}

/// A host under test.
pub trait Subject {
    /// Loads a policy from JSON text.
    ///
    /// # Errors
    /// As the engine.
    fn load_policy(&mut self, text: &str) -> Result<PolicyLoaded, EngineError>;
    /// Decides a batch.
    ///
    /// # Errors
    /// As the engine.
    fn decide_batch(
        &mut self,
        requests: &[DecisionRequest],
    ) -> Result<Vec<Result<Decision, RequestError>>, EngineError>;
    /// All stored ledger entries, in order.
    fn ledger(&mut self) -> Vec<Vec<u8>>;
}

impl Vector {
    /// Parses a vector file.
    ///
    /// # Errors
    /// When the JSON is not a vector.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The signer seed as bytes.
    pub fn seed(&self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        if let Some(bytes) = hash::parse_hash_hex(&self.signing_seed) {
            seed = bytes;
        }
        seed
    }

    /// The engine this vector fixes (natively).
    pub fn engine(&self) -> Engine {
        Engine::new(
            self.node.clone(),
            Box::new(Ed25519Signer::from_seed(&self.seed())),
            Box::new(SteppingClock::new(self.clock.start_ms, self.clock.step_ms)),
            Box::new(SeededRandom::new(self.random_seed.as_bytes())),
        )
    }

    /// Runs the steps against `subject`.
    pub fn run(&self, subject: &mut dyn Subject) -> Outcome {
        let mut steps = Vec::new();
        for step in &self.steps {
            if let Some(policy) = &step.load_policy {
                let text = serde_json::to_string_pretty(policy).unwrap_or_default();
                steps.push(match subject.load_policy(&text) {
                    Ok(loaded) => serde_json::json!({"policy": loaded}),
                    Err(e) => engine_error(&e),
                });
            }
            let batch: Option<Vec<Value>> = match (&step.decide, &step.decide_batch) {
                (Some(one), _) => Some(vec![one.clone()]),
                (None, Some(many)) => Some(many.clone()),
                (None, None) => None,
            };
            if let Some(batch) = batch {
                let mut requests = Vec::new();
                let mut parse_errors = Vec::new();
                for v in batch {
                    match serde_json::from_value::<DecisionRequest>(v) {
                        Ok(r) => requests.push(r),
                        Err(e) => parse_errors.push(e.to_string()),
                    }
                }
                if !parse_errors.is_empty() {
                    steps.push(serde_json::json!({"vector_error": parse_errors}));
                    continue;
                }
                steps.push(match subject.decide_batch(&requests) {
                    Ok(results) => Value::Array(
                        results
                            .into_iter()
                            .map(|r| match r {
                                Ok(d) => serde_json::to_value(d).unwrap_or(Value::Null),
                                Err(e) => serde_json::json!({"error": {"code": "invalid_request", "field": e.field, "message": e.message}}),
                            })
                            .collect(),
                    ),
                    Err(e) => engine_error(&e),
                });
            }
        }
        let ledger: Vec<String> = subject
            .ledger()
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect();
        let head_hash = ledger
            .last()
            .and_then(|e| serde_json::from_str::<Value>(e).ok())
            .and_then(|v| {
                v.get("entry_hash")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| crate::ledger::GENESIS_HASH.to_string());
        Outcome {
            steps,
            ledger,
            head_hash,
        }
    }

    /// Checks the hand-written `expect` blocks against an outcome.
    ///
    /// # Errors
    /// A description of every mismatch.
    pub fn check_expectations(&self, outcome: &Outcome) -> Result<(), String> {
        let mut problems = Vec::new();
        for (i, (step, got)) in self.steps.iter().zip(&outcome.steps).enumerate() {
            let Some(expect) = &step.expect else { continue };
            let expects: Vec<&Value> = match expect {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            let gots: Vec<&Value> = match got {
                Value::Array(items) => items.iter().collect(),
                one => vec![one],
            };
            for (j, (e, g)) in expects.iter().zip(gots).enumerate() {
                check_one(e, g)
                    .unwrap_or_else(|p| problems.push(format!("step {i} item {j}: {p}")));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

fn check_one(expect: &Value, got: &Value) -> Result<(), String> {
    let Some(map) = expect.as_object() else {
        return Ok(());
    };
    for (key, want) in map {
        match key.as_str() {
            "reason_contains" => {
                let reason = got
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_lowercase();
                let want = want.as_str().unwrap_or_default().to_lowercase();
                if !reason.contains(&want) {
                    return Err(format!("reason `{reason}` does not contain `{want}`"));
                }
            }
            "error_field" => {
                let field = got.pointer("/error/field").and_then(Value::as_str);
                if field != want.as_str() {
                    return Err(format!("expected an error on `{want}`, got {got}"));
                }
            }
            "has_token" => {
                let has = got.get("capability_token").is_some_and(|t| !t.is_null());
                if Some(has) != want.as_bool() {
                    return Err(format!("has_token should be {want}"));
                }
            }
            field => {
                if got.get(field) != Some(want) {
                    return Err(format!(
                        "`{field}`: expected {want}, got {}",
                        got.get(field).unwrap_or(&Value::Null)
                    ));
                }
            }
        }
    }
    Ok(())
}

fn engine_error(e: &EngineError) -> Value {
    serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}})
}

/// The native core over [`MemoryStorage`]: the reference subject.
#[derive(Debug)]
pub struct NativeSubject {
    governor: Governor<MemoryStorage>,
}

impl NativeSubject {
    /// A fresh node for `vector`.
    ///
    /// # Errors
    /// Never for an empty storage; kept for symmetry with other hosts.
    pub fn new(vector: &Vector) -> Result<Self, EngineError> {
        Ok(Self {
            governor: Governor::open(vector.engine(), MemoryStorage::new())?,
        })
    }
}

impl Subject for NativeSubject {
    fn load_policy(&mut self, text: &str) -> Result<PolicyLoaded, EngineError> {
        self.governor.load_policy(text)
    }

    fn decide_batch(
        &mut self,
        requests: &[DecisionRequest],
    ) -> Result<Vec<Result<Decision, RequestError>>, EngineError> {
        self.governor.decide_batch(requests)
    }

    fn ledger(&mut self) -> Vec<Vec<u8>> {
        let storage = self.governor.storage();
        let len = storage.len().unwrap_or(0);
        storage.get_range(0, len).unwrap_or_default()
    }
}
