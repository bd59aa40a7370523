//! The engine component inside wasmtime: what it imports, what it answers,
//! and how it fails (traps, time, fuel and memory limits, storage and
//! signer errors).
//!
//! Needs the built component: run `scripts/build-component.sh` first (or
//! set `LEXECON_COMPONENT`). These tests fail, never skip, without it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lexecon::component::{ComponentEngine, ComponentHost, GuestEnv, Limits};
use lexecon::engine::{DecisionEngine, NativeEngine};
use lexecon_core::capability::Expect;
use lexecon_core::engine::{Engine, EngineError, NodeConfig};
use lexecon_core::ledger::{EntryKind, FailureKind};
use lexecon_core::random::SeededRandom;
use lexecon_core::signer::SignerError;
use lexecon_core::time::SteppingClock;
use lexecon_core::{
    DecisionRequest, Ed25519Signer, EntryRecord, MemoryStorage, Signer, Storage, StorageError,
    TokenError, Verdict,
};
use serde_json::Value;

#[path = "support/shared_storage.rs"]
mod shared_storage;
use shared_storage::SharedStorage;

const GUIDE: &str = include_str!("../../examples/policies/ai_assistant.json");
const START_MS: u64 = 1_795_525_681_123;

/// The default host, compiled once per test binary.
fn host() -> &'static ComponentHost {
    static HOST: OnceLock<ComponentHost> = OnceLock::new();
    HOST.get_or_init(|| ComponentHost::load(Limits::default()).unwrap_or_else(|e| panic!("{e}")))
}

/// The same compiled component under other limits.
fn host_with(limits: Limits) -> ComponentHost {
    host().with_limits(limits).unwrap()
}

/// The component compiled with fuel metering on (and the default
/// deadlines), once per test binary.
fn fuel_host() -> &'static ComponentHost {
    static HOST: OnceLock<ComponentHost> = OnceLock::new();
    HOST.get_or_init(|| {
        ComponentHost::load(Limits::default().with_fuel()).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The fuel-metered component under other limits.
fn fuel_host_with(limits: Limits) -> ComponentHost {
    fuel_host().with_limits(limits).unwrap()
}

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(&[7; 32])
}

fn env(seed: &str) -> GuestEnv {
    GuestEnv::system()
        .with_clock(SteppingClock::new(START_MS, 1000))
        .with_random(SeededRandom::new(seed.as_bytes()))
}

fn open(host: &ComponentHost, storage: &SharedStorage) -> ComponentEngine {
    host.open(
        NodeConfig::default(),
        Box::new(storage.clone()),
        Box::new(signer()),
        env("test"),
    )
    .unwrap()
}

#[test]
fn the_component_refuses_a_node_config_no_host_accepts() {
    let bad = [
        (
            NodeConfig {
                node_id: "-node".into(),
                ..NodeConfig::default()
            },
            "node id `-node` is not valid",
        ),
        (
            NodeConfig {
                default_token_ttl: 0,
                ..NodeConfig::default()
            },
            "at least 1 second",
        ),
        (
            NodeConfig {
                default_token_ttl: 600,
                max_token_ttl: 60,
                ..NodeConfig::default()
            },
            "must not be shorter than the default",
        ),
        (
            NodeConfig {
                max_token_ttl: 86_401,
                ..NodeConfig::default()
            },
            "must be at most 86400 s (one day)",
        ),
    ];
    for (config, says) in bad {
        let storage = SharedStorage::default();
        match host().open(
            config,
            Box::new(storage.clone()),
            Box::new(signer()),
            env("t"),
        ) {
            Err(EngineError::Request(e)) => {
                assert_eq!(e.field, "node-config");
                assert!(e.message.contains(says), "{e}");
            }
            Err(other) => panic!("expected a request error, got {other:?}"),
            Ok(_) => panic!("the component opened a node no host accepts"),
        }
        assert!(storage.entries().is_empty(), "nothing is written");
    }
}

fn search() -> DecisionRequest {
    DecisionRequest::new("model", "Execute web_search", "web_search", "Research", 1)
}

#[test]
fn component_imports_only_storage_signer_and_a_little_wasi() {
    let unversioned = |name: String| name.split('@').next().unwrap_or(&name).to_string();
    let imports: BTreeSet<String> = host().imports().into_iter().map(unversioned).collect();
    let exports: BTreeSet<String> = host().exports().into_iter().collect();

    // What the engine needs, plus what Rust's standard library links in for
    // wasm32-wasip2 (stdio, environment, exit, hash-map seeds), which the
    // host answers with nothing: no variables, no arguments, empty stdio.
    let allowed: BTreeSet<String> = [
        "lexecon:governance/storage",
        "lexecon:governance/signer",
        "wasi:clocks/wall-clock",
        "wasi:random/random",
        "wasi:random/insecure-seed",
        "wasi:cli/environment",
        "wasi:cli/exit",
        "wasi:cli/stdin",
        "wasi:cli/stdout",
        "wasi:cli/stderr",
        "wasi:cli/terminal-input",
        "wasi:cli/terminal-output",
        "wasi:cli/terminal-stdin",
        "wasi:cli/terminal-stdout",
        "wasi:cli/terminal-stderr",
        "wasi:io/error",
        "wasi:io/poll",
        "wasi:io/streams",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let extra: Vec<&String> = imports.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "the component imports more than it may: {extra:?}\nall imports: {imports:?}"
    );
    for needed in [
        "lexecon:governance/storage",
        "lexecon:governance/signer",
        "wasi:clocks/wall-clock",
        "wasi:random/random",
    ] {
        assert!(
            imports.contains(needed),
            "{needed} is not imported: {imports:?}"
        );
    }
    assert!(
        imports
            .iter()
            .all(|i| !i.starts_with("wasi:filesystem") && !i.starts_with("wasi:sockets"))
    );
    assert_eq!(
        exports,
        BTreeSet::from(["lexecon:governance/engine@0.1.0".to_string()])
    );
}

#[test]
fn decides_signs_records_and_verifies_like_the_guide() {
    let storage = SharedStorage::default();
    let mut engine = open(host(), &storage);
    assert_eq!(engine.ledger_len(), 0);
    assert!(engine.policy().is_none());
    assert_eq!(engine.public_key(), signer().public_key());
    assert_eq!(engine.key_id(), signer().key_id());

    let loaded = engine.load_policy(GUIDE).unwrap();
    assert!(loaded.recorded);
    assert_eq!(
        (loaded.ledger_index, loaded.policy.mode.as_str()),
        (0, "strict")
    );
    let info = engine.policy().unwrap();
    assert_eq!(
        (info.name.as_str(), info.policy_hash.as_str()),
        ("AI Assistant Policy", loaded.policy.policy_hash.as_str())
    );
    let again = engine.load_policy(GUIDE).unwrap();
    assert!(!again.recorded, "the same policy again writes nothing");

    let allowed = engine.decide(&search()).unwrap();
    assert_eq!(allowed.decision, Verdict::Permit, "{}", allowed.reason);
    assert!(allowed.allowed);
    let token = allowed.capability_token.clone().unwrap();
    let denied = engine
        .decide(&DecisionRequest::new(
            "model",
            "Execute system_command",
            "execute",
            "Run command",
            5,
        ))
        .unwrap();
    assert_eq!(denied.decision, Verdict::Deny);
    assert!(denied.reason.contains("forbidden"), "{}", denied.reason);
    assert!(denied.capability_token.is_none());

    // Tokens verify inside the component with the host's public key.
    let claims = engine
        .verify_token(
            &token.token,
            Expect {
                tool: Some("web_search"),
                actor: None,
            },
        )
        .unwrap();
    assert_eq!(claims, token.claims);
    assert!(matches!(
        engine.verify_token(
            &token.token,
            Expect {
                tool: Some("execute"),
                actor: None
            }
        ),
        Err(TokenError::WrongTool { .. })
    ));
    assert!(matches!(
        engine.verify_token("lxc2.nope", Expect::default()),
        Err(TokenError::Malformed(_))
    ));
    // And natively, with the same key.
    lexecon_core::verify_token(
        &token.token,
        &signer().public_key(),
        claims.issued_at,
        Expect::default(),
    )
    .unwrap();

    // The ledger: three entries, what storage holds, readable by index and hash.
    assert_eq!(engine.ledger_len(), 3);
    let stored = storage.entries();
    assert_eq!(stored.len(), 3);
    let e = engine.entry(1).unwrap().unwrap();
    assert_eq!(e.bytes, stored[1]);
    assert_eq!(e.entry.kind, EntryKind::Decision);
    assert_eq!(e.entry.entry_hash, allowed.ledger_entry_hash);
    assert_eq!(
        e.entry.payload["decision_hash"],
        Value::from(allowed.decision_hash.clone())
    );
    let by_hash = engine
        .entry_by_hash(&denied.ledger_entry_hash)
        .unwrap()
        .unwrap();
    assert_eq!(by_hash.entry.index, 2);
    assert_eq!(engine.head_hash(), denied.ledger_entry_hash);
    assert!(engine.entry(3).unwrap().is_none());
    assert!(engine.entry_by_hash(&"0".repeat(64)).unwrap().is_none());
    let report = engine.verify_ledger().unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries, 3);
    assert_eq!(engine.restarts(), 0);
}

#[test]
fn errors_cross_the_boundary_as_the_core_reports_them() {
    let storage = SharedStorage::default();
    let mut engine = open(host(), &storage);
    let Err(EngineError::Policy(e)) =
        engine.load_policy("{\n  \"name\": \"p\",\n  \"mode\": \"lenient\"\n}")
    else {
        panic!("a bad mode must not load");
    };
    assert_eq!(e.path, "mode");
    assert_eq!((e.line, e.column.is_some()), (Some(3), true), "{e}");

    engine.load_policy(GUIDE).unwrap();
    let mut bad = search();
    bad.risk_level = 9;
    let Err(EngineError::Request(e)) = engine.decide(&bad) else {
        panic!("risk 9 is invalid")
    };
    assert_eq!(e.field, "risk_level");

    // In a batch an invalid request gets its own error and no entry.
    let results = engine.decide_batch(&[search(), bad, search()]).unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(results[1].as_ref().unwrap_err().field, "risk_level");
    assert_eq!(results[2].as_ref().unwrap().ledger_index, 2);

    let too_many = vec![search(); lexecon_core::request::MAX_BATCH + 1];
    assert!(matches!(
        engine.decide_batch(&too_many),
        Err(EngineError::BatchTooLarge(_))
    ));
}

/// Storage that fails on demand: `fail` for appends, `down` for everything.
#[derive(Clone, Default)]
struct FlakyStorage {
    inner: SharedStorage,
    fail: Arc<Mutex<Option<StorageError>>>,
    down: Arc<Mutex<bool>>,
}

impl FlakyStorage {
    fn check(&self) -> Result<(), StorageError> {
        if *self.down.lock().unwrap() {
            Err(StorageError::Unavailable("database down".into()))
        } else {
            Ok(())
        }
    }
}

impl Storage for FlakyStorage {
    fn len(&mut self) -> Result<u64, StorageError> {
        self.check()?;
        self.inner.len()
    }
    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.check()?;
        self.inner.get(index)
    }
    fn find(&mut self, entry_hash: &str) -> Result<Option<u64>, StorageError> {
        self.check()?;
        self.inner.find(entry_hash)
    }
    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        self.check()?;
        match self.fail.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => self.inner.append(entries),
        }
    }
}

#[test]
fn storage_and_signer_failures_are_errors_not_decisions() {
    let storage = FlakyStorage::default();
    let mut engine = host()
        .open(
            NodeConfig::default(),
            Box::new(storage.clone()),
            Box::new(signer()),
            env("flaky"),
        )
        .unwrap();
    engine.load_policy(GUIDE).unwrap();
    *storage.fail.lock().unwrap() = Some(StorageError::Unavailable("disk on fire".into()));
    assert_eq!(
        engine.decide(&search()).unwrap_err(),
        EngineError::Storage(StorageError::Unavailable("disk on fire".into()))
    );
    *storage.fail.lock().unwrap() = Some(StorageError::Corrupt {
        index: 0,
        detail: "bad crc".into(),
    });
    assert_eq!(
        engine.decide(&search()).unwrap_err(),
        EngineError::Storage(StorageError::Corrupt {
            index: 0,
            detail: "bad crc".into()
        })
    );
    *storage.fail.lock().unwrap() = None;
    let d = engine.decide(&search()).unwrap();
    assert_eq!(d.ledger_index, 1, "nothing was written by the failed calls");
    assert_eq!(engine.restarts(), 0, "errors are answers, not traps");

    /// Signs the probe `open` checks the key with, then goes offline.
    struct BrokenSigner(std::sync::atomic::AtomicBool);
    impl Signer for BrokenSigner {
        fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
            if self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(SignerError("hsm offline".into()));
            }
            signer().sign(message)
        }
        fn public_key(&self) -> [u8; 32] {
            signer().public_key()
        }
    }
    // Offline from the start: the node does not open.
    let offline = host().open(
        NodeConfig::default(),
        Box::new(SharedStorage::default()),
        Box::new(BrokenSigner(true.into())),
        env("signer"),
    );
    assert_eq!(
        offline.err(),
        Some(EngineError::Signer(SignerError("hsm offline".into())))
    );
    let mut engine = host()
        .open(
            NodeConfig::default(),
            Box::new(SharedStorage::default()),
            Box::new(BrokenSigner(false.into())),
            env("signer"),
        )
        .unwrap();
    engine.load_policy(GUIDE).unwrap();
    assert_eq!(
        engine.decide(&search()).unwrap_err(),
        EngineError::Signer(SignerError("hsm offline".into()))
    );
    assert_eq!(engine.ledger_len(), 1);
}

#[test]
fn the_key_id_is_derived_from_the_public_key_not_taken_from_the_host() {
    // A host whose `key-id` disagrees with its public key (a misconfigured
    // key service): tokens still name the key that signed them, and verify.
    struct MislabelledSigner(Ed25519Signer);
    impl Signer for MislabelledSigner {
        fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
            self.0.sign(message)
        }
        fn public_key(&self) -> [u8; 32] {
            self.0.public_key()
        }
        fn key_id(&self) -> String {
            "ed25519:0000000000000000".into()
        }
    }
    let mut engine = host()
        .open(
            NodeConfig::default(),
            Box::new(SharedStorage::default()),
            Box::new(MislabelledSigner(signer())),
            env("key-id"),
        )
        .unwrap();
    engine.load_policy(GUIDE).unwrap();
    let token = engine.decide(&search()).unwrap().capability_token.unwrap();
    let derived = lexecon_core::signer::key_id(&signer().public_key());
    assert_eq!(token.claims.key_id, derived);
    assert_eq!(engine.key_id(), derived);
    lexecon_core::verify_token(
        &token.token,
        &signer().public_key(),
        token.claims.issued_at,
        Expect::default(),
    )
    .unwrap();
}

#[test]
fn two_engines_on_one_ledger_catch_up_and_keep_one_chain() {
    let storage = SharedStorage::default();
    let mut a = open(host(), &storage);
    let mut b = host()
        .open(
            NodeConfig::default(),
            Box::new(storage.clone()),
            Box::new(signer()),
            env("b"),
        )
        .unwrap();
    a.load_policy(GUIDE).unwrap();
    // `b` has not seen the policy: its append conflicts, it catches up
    // (adopting the policy from the ledger) and retries.
    let d = b.decide(&search()).unwrap();
    assert_eq!((d.ledger_index, d.decision), (1, Verdict::Permit));
    assert_eq!(b.policy().unwrap().name, "AI Assistant Policy");
    let d = a.decide(&search()).unwrap();
    assert_eq!(d.ledger_index, 2);
    b.catch_up().unwrap();
    assert_eq!(b.ledger_len(), 3);
    assert!(a.verify_ledger().unwrap().valid);

    // A new engine over the same storage restores head and policy.
    let mut c = open(host(), &storage);
    assert_eq!(
        (c.ledger_len(), c.head_hash()),
        (3, d.ledger_entry_hash.clone())
    );
    assert_eq!(
        c.policy().unwrap().policy_hash,
        a.policy().unwrap().policy_hash
    );
    assert_eq!(c.decide(&search()).unwrap().ledger_index, 3);
}

#[test]
fn tampering_is_reported_with_the_first_bad_index() {
    let storage = SharedStorage::default();
    let mut engine = open(host(), &storage);
    engine.load_policy(GUIDE).unwrap();
    for _ in 0..4 {
        engine.decide(&search()).unwrap();
    }
    {
        let mut s = storage.0.lock().unwrap();
        let bytes = s.bytes_mut(2).unwrap();
        let at = bytes.len() - 150;
        bytes[at] ^= 1;
    }
    let report = engine.verify_ledger().unwrap();
    assert!(!report.valid);
    assert_eq!(report.first_invalid, Some(2));
    assert_eq!(report.failure.unwrap().kind, FailureKind::HashMismatch);
}

/// A fresh, deterministic node of both kinds on their own storage.
fn pair(seed: &str) -> (NativeEngine<MemoryStorage>, ComponentEngine, SharedStorage) {
    let native = NativeEngine::open(
        Engine::new(
            NodeConfig::default(),
            Box::new(signer()),
            Box::new(SteppingClock::new(START_MS, 1000)),
            Box::new(SeededRandom::new(seed.as_bytes())),
        ),
        MemoryStorage::new(),
    )
    .unwrap();
    let storage = SharedStorage::default();
    let component = host()
        .open(
            NodeConfig::default(),
            Box::new(storage.clone()),
            Box::new(signer()),
            env(seed),
        )
        .unwrap();
    (native, component, storage)
}

#[test]
fn same_clock_and_seed_give_the_native_engines_bytes() {
    let (mut native, mut component, storage) = pair("same");
    native.load_policy(GUIDE).unwrap();
    component.load_policy(GUIDE).unwrap();
    let mut with_context = search();
    with_context
        .context
        .insert("user_approved".into(), Value::Bool(true));
    with_context.context.insert(
        "nested".into(),
        serde_json::json!({"n": [1, 2.5, -3e-7, "x\u{e9}"], "b": null}),
    );
    with_context.data_classes = vec!["internal".into()];
    with_context.token_ttl = Some(60);
    with_context.request_id = Some("req_mine".into());
    let batch = [
        search(),
        with_context,
        DecisionRequest::new("model", "Write", "database_write", "Update", 4),
    ];
    assert_eq!(
        native.decide_batch(&batch).unwrap(),
        component.decide_batch(&batch).unwrap()
    );
    let n = native.governor().storage().get_range(0, 10).unwrap();
    assert_eq!(n, storage.entries());
    assert_eq!(native.head_hash(), component.head_hash());
}

#[test]
fn running_out_of_fuel_fails_that_call_only() {
    let host = fuel_host_with(Limits {
        fuel_per_call: Some(40_000_000),
        fuel_per_request: 4_000_000,
        ..Limits::default()
    });
    let storage = SharedStorage::default();
    let mut engine = open(&host, &storage);
    engine.load_policy(GUIDE).unwrap();
    let first = engine.decide(&search()).unwrap();
    let used = engine.last_call_fuel().unwrap();
    assert!(used > 0 && used < 44_000_000, "{used}");

    // A request crafted to be expensive: many data classes with long names
    // and a large, deep context, in a batch, each costing more than its
    // per-request allowance.
    let mut heavy = search();
    heavy.data_classes = (0..64).map(|i| format!("{i:0>250}")).collect();
    heavy.proposed_action = "x".repeat(4000);
    let mut ctx = serde_json::Map::new();
    for i in 0..300 {
        ctx.insert(
            format!("k{i:0>100}"),
            serde_json::json!([[[["v".repeat(50)]]]]),
        );
    }
    heavy.context = ctx;
    heavy.validate().unwrap();
    let before = storage.entries();
    let err = engine.decide_batch(&vec![heavy; 60]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("fuel"), "{message}");
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert_eq!(err.code(), "engine_unavailable");
    assert_eq!(engine.restarts(), 1);
    assert_eq!(storage.entries(), before, "a failed call appends nothing");

    // The host stayed up and the restarted engine carries on the same chain.
    assert_eq!(engine.ledger_len(), 2);
    let next = engine.decide(&search()).unwrap();
    assert_eq!(next.ledger_index, 2);
    assert_eq!(
        engine.entry(2).unwrap().unwrap().entry.prev_hash,
        first.ledger_entry_hash
    );
    assert!(engine.verify_ledger().unwrap().valid);
    assert_eq!(engine.restarts(), 1);
}

#[test]
fn running_past_the_deadline_fails_that_call_only() {
    // A ledger with the policy and one decision, written with time to spare.
    let storage = SharedStorage::default();
    let mut engine = open(host(), &storage);
    engine.load_policy(GUIDE).unwrap();
    let first = engine.decide(&search()).unwrap();

    // No time at all: a deadline of zero ticks has passed before the
    // call's first instruction, so opening the ledger traps.
    let no_time = host_with(Limits {
        time_per_call: Some(Duration::ZERO),
        time_per_request: Duration::ZERO,
        time_per_policy_byte: Duration::ZERO,
        time_per_entry: Duration::ZERO,
        ..Limits::default()
    });
    let err = no_time
        .open(
            NodeConfig::default(),
            Box::new(storage.clone()),
            Box::new(signer()),
            env("late"),
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("time limit"), "{err}");
    assert_eq!(storage.entries().len(), 2, "a failed call appends nothing");

    // With time, the same compiled component carries on the same chain.
    let mut again = open(host(), &storage);
    let next = again.decide(&search()).unwrap();
    assert_eq!(next.ledger_index, 2);
    assert_eq!(
        again.entry(2).unwrap().unwrap().entry.prev_hash,
        first.ledger_entry_hash
    );
    assert!(again.verify_ledger().unwrap().valid);
}

#[test]
fn limits_need_a_host_compiled_for_them() {
    let unmetered = host().with_limits(Limits::default().with_fuel());
    assert!(unmetered.unwrap_err().to_string().contains("fuel"));
    let wasm = std::fs::read(lexecon::component::component_path()).unwrap();
    let no_deadlines = ComponentHost::new(
        &wasm,
        Limits {
            time_per_call: None,
            ..Limits::default()
        },
    )
    .unwrap();
    let err = no_deadlines.with_limits(Limits::default()).unwrap_err();
    assert!(err.to_string().contains("time limits"), "{err}");
}

#[test]
fn exhausting_memory_fails_that_call_only() {
    let host = host_with(Limits {
        memory_bytes: 8 << 20,
        ..Limits::default()
    });
    let storage = SharedStorage::default();
    let mut engine = open(&host, &storage);
    engine.load_policy(GUIDE).unwrap();
    engine.decide(&search()).unwrap();

    // 200 requests with a 40 KB context each: about 8 MB of arguments alone,
    // more than the component may hold.
    let mut big = search();
    big.context
        .insert("blob".into(), Value::String("z".repeat(40_000)));
    let err = engine.decide_batch(&vec![big; 200]).unwrap_err();
    assert!(err.to_string().contains("restarted"), "{err}");
    assert_eq!(engine.restarts(), 1);
    assert_eq!(engine.ledger_len(), 2);

    let d = engine.decide(&search()).unwrap();
    assert_eq!(d.ledger_index, 2);
    assert!(engine.verify_ledger().unwrap().valid);
}

#[test]
fn a_restart_that_fails_is_retried_on_the_next_call() {
    let storage = FlakyStorage::default();
    let host = fuel_host_with(Limits {
        fuel_per_call: Some(40_000_000),
        fuel_per_request: 1_000_000,
        ..Limits::default()
    });
    let mut engine = host
        .open(
            NodeConfig::default(),
            Box::new(storage.clone()),
            Box::new(signer()),
            env("dead"),
        )
        .unwrap();
    engine.load_policy(GUIDE).unwrap();
    let mut heavy = search();
    heavy
        .context
        .insert("blob".into(), Value::String("z".repeat(60_000)));

    // The call traps and, with storage down, so does reopening the ledger.
    *storage.down.lock().unwrap() = true;
    assert!(
        engine
            .decide_batch(&vec![heavy; 50])
            .unwrap_err()
            .to_string()
            .contains("fuel")
    );
    assert_eq!(engine.restarts(), 0);
    for _ in 0..2 {
        let err = engine.decide(&search()).unwrap_err();
        assert!(
            matches!(err, EngineError::Storage(StorageError::Unavailable(_))),
            "{err:?}"
        );
    }
    assert_eq!(engine.ledger_len(), 1, "the last known length");

    *storage.down.lock().unwrap() = false;
    let d = engine.decide(&search()).unwrap();
    assert_eq!((d.decision, d.ledger_index), (Verdict::Permit, 1));
    assert_eq!(engine.restarts(), 1);
    assert!(engine.verify_ledger().unwrap().valid);
}

/// A strict policy with `n` relations (and the terms they name).
fn big_policy(n: usize) -> String {
    let mut terms = vec![
        serde_json::json!({"id": "action:read", "type": "action", "name": "read"}),
        serde_json::json!({"id": "data:public", "type": "data_class", "name": "public"}),
        serde_json::json!({"id": "tool:web_search", "type": "tool", "name": "web_search",
            "action": "action:read", "data_classes": ["data:public"]}),
    ];
    let mut relations = Vec::new();
    for i in 0..n {
        terms.push(serde_json::json!({"id": format!("actor:a{i}"), "type": "actor", "name": format!("a{i}")}));
        let mut permit = serde_json::json!({"type": "permits", "subject": format!("actor:a{i}"),
            "action": "action:read", "object": "data:public", "conditions": ["user_approved"],
            "description": format!("actor {i} may read public data once approved")});
        if i + 1 == n {
            // The last actor may read any data, so the largest request (64
            // data classes of its own) is a permit: the most work a call does.
            permit.as_object_mut().unwrap().remove("object");
        }
        relations.push(permit);
    }
    serde_json::json!({"name": format!("big-{n}"), "mode": "strict", "terms": terms, "relations": relations})
        .to_string()
}

#[test]
fn default_limits_cover_the_largest_legitimate_calls() {
    // The default deadlines, and the default fuel when it is on: every call
    // below would fail if either ran out; fuel is also checked for 4x
    // headroom.
    let storage = SharedStorage::default();
    let mut engine = open(fuel_host(), &storage);
    let limits = fuel_host().limits();
    assert_eq!(
        (limits.time_per_call, limits.memory_bytes),
        (
            Limits::default().time_per_call,
            Limits::default().memory_bytes
        )
    );
    let (base, per_request) = (limits.fuel_per_call.unwrap(), limits.fuel_per_request);

    // A large policy: 45,000 relations, 10.6 MB as compact JSON. (The core
    // re-checks a stored policy's size after pretty-printing it, so a
    // compact policy much closer to 16 MiB loads but cannot be reopened.)
    let text = big_policy(45_000);
    assert!(text.len() > 10 << 20 && text.len() <= lexecon_core::policy::MAX_POLICY_BYTES);
    let t = std::time::Instant::now();
    engine.load_policy(&text).unwrap();
    let load_time = t.elapsed();
    let load = engine.last_call_fuel().unwrap();
    let load_budget = base + text.len() as u64 * limits.fuel_per_policy_byte;
    let memory = engine.memory_peak();

    // Requests as large as validation lets them be.
    let mut heavy =
        DecisionRequest::new("a44999", "Execute web_search", "web_search", "Research", 3);
    heavy.proposed_action = "p".repeat(lexecon_core::request::MAX_TEXT_LEN);
    heavy.user_intent = "u".repeat(lexecon_core::request::MAX_TEXT_LEN);
    heavy
        .context
        .insert("user_approved".into(), Value::Bool(true));
    heavy
        .context
        .insert("notes".into(), Value::String("n".repeat(60_000)));
    heavy.data_classes = (0..64).map(|i| format!("{i:0>256}")).collect();
    let one = engine.decide(&heavy).unwrap();
    assert!(one.allowed, "{}", one.reason);
    let decide = engine.last_call_fuel().unwrap();

    let batch = vec![heavy; 200];
    let t = std::time::Instant::now();
    engine.decide_batch(&batch).unwrap();
    let batch_time = t.elapsed();
    let batch_fuel = engine.last_call_fuel().unwrap();
    let batch_budget = base + batch.len() as u64 * per_request;
    let memory = memory.max(engine.memory_peak());

    let entries = engine.ledger_len();
    engine.verify_ledger().unwrap();
    let verify = engine.last_call_fuel().unwrap();
    let max_policy = limits.fuel_per_policy_byte * lexecon_core::policy::MAX_POLICY_BYTES as u64;
    let entry_budget = base + entries * limits.fuel_per_entry + max_policy;

    // Reopening reads the ledger back (the policy, the rate windows).
    let mut reopened = open(fuel_host(), &storage);
    let reopen = reopened.last_call_fuel().unwrap();
    assert_eq!(reopened.ledger_len(), entries);
    assert!(reopened.decide(&search()).is_ok());
    assert_eq!(reopened.restarts(), 0);
    let memory = memory.max(reopened.memory_peak());
    // Deadlines are wall-clock, so only reported (the calls above would
    // have failed had one run out).
    eprintln!(
        "time: load {load_time:?} of {:?}; batch of {} {batch_time:?} of {:?}",
        limits.time_per_call.unwrap() + limits.time_per_policy_byte * text.len() as u32,
        batch.len(),
        limits.time_per_call.unwrap() + limits.time_per_request * batch.len() as u32,
    );

    eprintln!(
        "fuel: load {}-byte policy {load} of {load_budget}; decide {decide} of {}; \
         batch of {} {batch_fuel} of {batch_budget}; verify {entries} entries {verify}, \
         reopen {reopen}, of {entry_budget}; peak memory {memory} of {}",
        text.len(),
        base + per_request,
        batch.len(),
        limits.memory_bytes,
    );
    // At least 4x headroom everywhere.
    assert!(load * 4 < load_budget, "policy load");
    assert!(decide * 4 < base + per_request, "decide");
    assert!(batch_fuel * 4 < batch_budget, "batch");
    assert!(verify * 4 < entry_budget, "verify");
    assert!(reopen * 4 < entry_budget, "reopen");
    assert!(memory * 2 < limits.memory_bytes, "memory");
}

#[test]
fn the_compilation_cache_is_filled_once_and_reused() {
    let wasm = std::fs::read(lexecon::component::component_path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = |dir: &std::path::Path| -> usize {
        fn walk(p: &std::path::Path, n: &mut usize) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, n);
                } else {
                    // Compiled code only: wasmtime's cache worker writes
                    // `.stats` files (usage counts) and `.cleanup` markers
                    // in the background, when it gets to them.
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !name.starts_with('.') && !name.ends_with(".stats") {
                        *n += 1;
                    }
                }
            }
        }
        let mut n = 0;
        walk(dir, &mut n);
        n
    };

    let first = ComponentHost::new_cached(&wasm, Limits::default(), dir.path()).unwrap();
    let cached = files(dir.path());
    assert!(cached >= 1, "compiling stored the code in the cache");
    drop(first);

    // A second host loads from the cache and works as the first did.
    let second = ComponentHost::new_cached(&wasm, Limits::default(), dir.path()).unwrap();
    assert_eq!(files(dir.path()), cached, "nothing new was compiled");
    let mut engine = second
        .open(
            NodeConfig::default(),
            Box::new(MemoryStorage::new()),
            Box::new(Ed25519Signer::from_seed(&[9; 32])),
            GuestEnv::system(),
        )
        .unwrap();
    engine.load_policy(GUIDE).unwrap();
    assert!(engine.decide(&search()).unwrap().allowed);

    // An unusable cache directory is skipped, not an error.
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    ComponentHost::new_cached(&wasm, Limits::default(), &not_a_dir).unwrap();
}
