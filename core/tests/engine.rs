//! The engine driven through real storage behaviours: fail-closed appends,
//! several writers on one chain, restart, tampering.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};

use lexecon_core::engine::{Engine, EngineError, Governor, NodeConfig};
use lexecon_core::ledger::FailureKind;
use lexecon_core::storage::{EntryRecord, MemoryStorage, Storage, StorageError};
use lexecon_core::time::SteppingClock;
use lexecon_core::{
    DecisionRequest, Ed25519Signer, Expect, SeededRandom, Signer, TokenError, Verdict,
};

const POLICY: &str = include_str!("../../examples/policies/ai_assistant.json");
const T0: u64 = 1_795_525_681_123;

fn engine(seed: &str) -> Engine {
    Engine::new(
        NodeConfig {
            node_id: "test-node".into(),
            ..NodeConfig::default()
        },
        Box::new(Ed25519Signer::from_seed(&[9; 32])),
        Box::new(SteppingClock::new(T0, 1000)),
        Box::new(SeededRandom::new(seed.as_bytes())),
    )
}

fn search() -> DecisionRequest {
    DecisionRequest::new("model", "Execute web_search", "web_search", "Research", 1)
}

/// A shared log, as several replicas see one database.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<MemoryStorage>>);

impl Storage for Shared {
    fn len(&mut self) -> Result<u64, StorageError> {
        self.0.lock().unwrap().len()
    }
    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.0.lock().unwrap().get(index)
    }
    fn find(&mut self, hash: &str) -> Result<Option<u64>, StorageError> {
        self.0.lock().unwrap().find(hash)
    }
    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        self.0.lock().unwrap().append(entries)
    }
}

/// Storage whose appends fail while `down` is set.
#[derive(Default)]
struct Flaky {
    inner: MemoryStorage,
    down: bool,
}

impl Storage for Flaky {
    fn len(&mut self) -> Result<u64, StorageError> {
        self.inner.len()
    }
    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(index)
    }
    fn find(&mut self, hash: &str) -> Result<Option<u64>, StorageError> {
        self.inner.find(hash)
    }
    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        if self.down {
            return Err(StorageError::Unavailable("disk on fire".into()));
        }
        self.inner.append(entries)
    }
}

#[test]
fn a_failed_append_fails_the_decision_and_leaves_the_head() {
    let mut gov = Governor::open(engine("flaky"), Flaky::default()).unwrap();
    gov.load_policy(POLICY).unwrap();
    let before = (gov.engine().len(), gov.engine().head_hash().to_string());
    gov.storage().down = true;
    let err = gov.decide(&search()).unwrap_err();
    assert!(
        matches!(err, EngineError::Storage(StorageError::Unavailable(_))),
        "{err}"
    );
    assert_eq!(err.code(), "storage");
    assert_eq!(
        (gov.engine().len(), gov.engine().head_hash().to_string()),
        before
    );
    gov.storage().down = false;
    let d = gov.decide(&search()).unwrap();
    assert_eq!(d.ledger_index, before.0);
    assert!(gov.verify_ledger().unwrap().valid);
}

#[test]
fn replicas_share_one_chain_without_forks() {
    let shared = Shared::default();
    let mut a = Governor::open(engine("a"), shared.clone()).unwrap();
    let mut b = Governor::open(engine("b"), shared.clone()).unwrap();
    a.load_policy(POLICY).unwrap();
    // b has not seen a's policy: its first append conflicts, it catches up
    // (and adopts the policy from the ledger) and re-decides.
    let d = b.decide(&search()).unwrap();
    assert_eq!(d.decision, Verdict::Permit, "{}", d.reason);
    assert_eq!(d.ledger_index, 1);
    let mut hashes = vec![d.ledger_entry_hash];
    for i in 0..20 {
        let gov = if i % 3 == 0 { &mut a } else { &mut b };
        let mut req = search();
        req.tool = "execute".into();
        hashes.push(gov.decide(&req).unwrap().ledger_entry_hash);
    }
    let report = a.verify_ledger().unwrap();
    assert!(report.valid);
    assert_eq!(report.entries, 22);
    let mut s = shared.clone();
    for h in &hashes {
        assert!(
            s.find(h).unwrap().is_some(),
            "acknowledged entry {h} is in the ledger"
        );
    }
}

#[test]
fn rate_limits_count_across_replicas() {
    let policy = r#"{"name": "rl", "mode": "permissive", "constraints": [{"name": "rl", "condition": "true",
        "action": "rate_limit", "parameters": {"max_calls": 3, "window_seconds": 3600}}]}"#;
    let shared = Shared::default();
    let mut a = Governor::open(engine("a"), shared.clone()).unwrap();
    let mut b = Governor::open(engine("b"), shared.clone()).unwrap();
    a.load_policy(policy).unwrap();
    let verdicts: Vec<Verdict> = (0..5)
        .map(|i| {
            if i % 2 == 0 { &mut a } else { &mut b }
                .decide(&search())
                .unwrap()
                .decision
        })
        .collect();
    assert_eq!(
        verdicts.iter().filter(|v| **v == Verdict::Permit).count(),
        3,
        "{verdicts:?}"
    );
}

#[test]
fn restart_restores_policy_head_and_rate_windows() {
    let policy = r#"{"name": "rl", "mode": "permissive", "constraints": [{"name": "rl", "condition": "true",
        "action": "rate_limit", "parameters": {"max_calls": 2, "window_seconds": 3600}}]}"#;
    let shared = Shared::default();
    {
        let mut gov = Governor::open(engine("one"), shared.clone()).unwrap();
        gov.load_policy(policy).unwrap();
        assert!(gov.decide(&search()).unwrap().allowed);
        assert!(gov.decide(&search()).unwrap().allowed);
    }
    let mut gov = Governor::open(engine("two"), shared.clone()).unwrap();
    assert_eq!(gov.engine().len(), 3);
    assert_eq!(gov.engine().policy().unwrap().name, "rl");
    let d = gov.decide(&search()).unwrap();
    assert!(!d.allowed, "the window survived the restart: {}", d.reason);
    // Loading the same policy again records nothing.
    let loaded = gov.load_policy(policy).unwrap();
    assert!(!loaded.recorded);
    assert_eq!(loaded.ledger_index, 0);
    assert!(gov.verify_ledger().unwrap().valid);
}

#[test]
fn tampering_is_found_at_the_entry() {
    let mut gov = Governor::open(engine("t"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    for _ in 0..5 {
        gov.decide(&search()).unwrap();
    }
    let bytes = gov.storage().bytes_mut(3).unwrap();
    let at = bytes.windows(5).position(|w| w == b"model").unwrap();
    bytes[at] = b'M';
    let report = gov.verify_ledger().unwrap();
    assert_eq!(report.first_invalid, Some(3));
    assert_eq!(report.failure.unwrap().kind, FailureKind::HashMismatch);

    let mut gov = Governor::open(engine("t"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    for _ in 0..5 {
        gov.decide(&search()).unwrap();
    }
    gov.storage().remove(2);
    assert_eq!(gov.verify_ledger().unwrap().first_invalid, Some(2));
}

/// A live node holds the chain to its own head: what it committed and is
/// gone, or was rewritten with every hash recomputed (a valid chain on its
/// own), is not "valid".
#[test]
fn a_live_node_finds_its_own_entries_cut_off_or_rewritten() {
    let recorded = |second: &DecisionRequest| {
        let mut gov = Governor::open(engine("h"), MemoryStorage::new()).unwrap();
        gov.load_policy(POLICY).unwrap();
        let first = search();
        for i in 0..5 {
            gov.decide(if i < 2 { &first } else { second }).unwrap();
        }
        gov
    };
    // Cut off the end.
    let mut gov = recorded(&search());
    gov.storage().remove(5);
    gov.storage().remove(4);
    let report = gov.verify_ledger().unwrap();
    assert!(!report.valid);
    assert_eq!((report.entries, report.first_invalid), (4, Some(4)));
    let failure = report.failure.unwrap();
    assert_eq!(failure.kind, FailureKind::Missing);
    assert!(failure.message.contains("committed 6 entries"), "{failure}");

    // Entries 3 to 5 replaced by another, equally valid, chain.
    let mut gov = recorded(&search());
    let mut other = recorded(&DecisionRequest::new("model", "read", "read_wiki", "r", 1));
    for i in 3..6 {
        let theirs = other.storage().bytes_mut(i).unwrap().clone();
        *gov.storage().bytes_mut(i).unwrap() = theirs;
    }
    assert!(other.verify_ledger().unwrap().valid);
    let report = gov.verify_ledger().unwrap();
    assert!(!report.valid);
    assert_eq!((report.entries, report.first_invalid), (5, Some(5)));
    let failure = report.failure.unwrap();
    assert_eq!(failure.kind, FailureKind::HashMismatch);
    assert!(
        failure.message.contains("rewritten at or before"),
        "{failure}"
    );
    assert_eq!(
        report.head_hash,
        other.entry(4).unwrap().unwrap().entry_hash
    );

    // Entries other writers appended after this node's head still verify.
    let shared = Shared::default();
    let mut a = Governor::open(engine("a"), shared.clone()).unwrap();
    a.load_policy(POLICY).unwrap();
    let mut b = Governor::open(engine("b"), shared.clone()).unwrap();
    b.decide(&search()).unwrap();
    assert!(a.verify_ledger().unwrap().valid);
    assert_eq!(a.verify_ledger().unwrap().entries, 2);
}

/// Opening reads the ledger's tail (back to the latest policy load): what it
/// takes from there (the policy, the head, rate windows) must be what was
/// recorded, so an entry it reads that was altered, dropped or spliced in
/// from another chain stops the open, naming the entry.
#[test]
fn opening_refuses_an_altered_tail() {
    let recorded = || {
        let mut gov = Governor::open(engine("o"), MemoryStorage::new()).unwrap();
        gov.load_policy(POLICY).unwrap();
        for _ in 0..5 {
            gov.decide(&search()).unwrap();
        }
        gov.storage().clone()
    };
    let open_error = |storage: MemoryStorage| match Governor::open(engine("o2"), storage) {
        Ok(_) => panic!("an altered ledger opened"),
        Err(EngineError::Ledger(why)) => why,
        Err(e) => panic!("unexpected error: {e}"),
    };
    assert!(Governor::open(engine("o2"), recorded()).is_ok());

    // The policy entry rewritten (a forbid turned into a permit).
    let mut storage = recorded();
    let bytes = storage.bytes_mut(0).unwrap();
    let at = bytes.windows(7).position(|w| w == b"forbids").unwrap();
    bytes[at..at + 7].copy_from_slice(b"permits");
    let why = open_error(storage);
    assert!(why.starts_with("entry 0: content does not match"), "{why}");

    // The head entry altered.
    let mut storage = recorded();
    let bytes = storage.bytes_mut(5).unwrap();
    let at = bytes.windows(5).position(|w| w == b"model").unwrap();
    bytes[at] = b'M';
    assert!(open_error(storage).starts_with("entry 5: "));

    // An entry removed: its successor sits at its place.
    let mut storage = recorded();
    storage.remove(3);
    assert!(open_error(storage).contains("entries were removed or reordered"));

    // Another chain's entry (well-formed, its own hash right) put in place of the head.
    let mut other = Governor::open(engine("other"), MemoryStorage::new()).unwrap();
    other.load_policy(POLICY).unwrap();
    for _ in 0..5 {
        other.decide(&search()).unwrap();
    }
    let mut storage = recorded();
    let foreign = other.storage().get(5).unwrap().unwrap();
    storage.bytes_mut(5).unwrap().clone_from(&foreign);
    let why = open_error(storage);
    assert!(
        why.starts_with("entry 5: prev_hash does not match the hash of entry 4"),
        "{why}"
    );
}

/// A shared ledger that lost entries this node committed (a database dropped
/// and recreated) is not "contention with other writers": the next decision
/// fails closed, saying so.
#[test]
fn a_ledger_shorter_than_the_committed_head_is_named() {
    let shared = Shared::default();
    let mut gov = Governor::open(engine("short"), shared.clone()).unwrap();
    gov.load_policy(POLICY).unwrap();
    gov.decide(&search()).unwrap();
    *shared.0.lock().unwrap() = MemoryStorage::new();
    match gov.decide(&search()) {
        Err(EngineError::Ledger(why)) => {
            assert!(
                why.contains("holds 0 entries but this node has committed 2"),
                "{why}"
            );
        }
        other => panic!("expected a ledger error, got {other:?}"),
    }
}

/// Every data class a call touches must be permitted: a class the request
/// adds (`public`) does not carry the call past what the tool's own class
/// (`internal` for read_wiki) needs, nor does a permit for public data let
/// a call that touches `pii` through.
#[test]
fn every_data_class_a_call_touches_must_be_permitted() {
    let mut gov = Governor::open(engine("classes"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    let with = |tool: &str, classes: &[&str]| {
        let mut r = DecisionRequest::new("model", "p", tool, "i", 1);
        r.data_classes = classes.iter().map(|c| (*c).to_string()).collect();
        r
    };
    assert!(gov.decide(&with("web_search", &[])).unwrap().allowed);
    assert!(
        gov.decide(&with("web_search", &["public"]))
            .unwrap()
            .allowed
    );
    let d = gov.decide(&with("web_search", &["data:pii"])).unwrap();
    assert!(!d.allowed);
    assert!(d.reason.contains("on `data:pii`"), "{}", d.reason);
    let d = gov.decide(&with("read_wiki", &["public"])).unwrap();
    assert!(!d.allowed, "{}", d.reason);
    // With its condition met, the permit for internal data covers the rest.
    let mut approved = with("read_wiki", &["public"]);
    approved
        .context
        .insert("user_approved".into(), serde_json::json!(true));
    assert!(gov.decide(&approved).unwrap().allowed);
}

#[test]
fn tokens_verify_offline_and_expire() {
    let mut gov = Governor::open(engine("tok"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    let d = gov.decide(&search()).unwrap();
    let token = d.capability_token.unwrap();
    let pk = gov.engine().public_key();
    let claims = lexecon_core::verify_token(
        &token.token,
        &pk,
        T0 / 1000,
        Expect {
            tool: Some("web_search"),
            actor: Some("model"),
        },
    )
    .unwrap();
    assert_eq!(claims.decision_hash, d.decision_hash);
    assert_eq!(claims.expires_at - claims.issued_at, 300);
    let later = claims.expires_at;
    assert!(matches!(
        lexecon_core::verify_token(&token.token, &pk, later, Expect::default()),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn a_batch_is_one_append_in_order() {
    let mut gov = Governor::open(engine("batch"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    let mut bad = search();
    bad.risk_level = 0;
    let out = gov.decide_batch(&[search(), bad, search()]).unwrap();
    assert!(out[1].is_err());
    let idx: Vec<u64> = out
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|d| d.ledger_index)
        .collect();
    assert_eq!(idx, vec![1, 2]);
    let too_many = vec![search(); lexecon_core::request::MAX_BATCH + 1];
    assert!(matches!(
        gov.decide_batch(&too_many),
        Err(EngineError::BatchTooLarge(_))
    ));
}

#[test]
fn entries_are_found_by_index_and_hash() {
    let mut gov = Governor::open(engine("find"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    let d = gov.decide(&search()).unwrap();
    let e = gov.entry_by_hash(&d.ledger_entry_hash).unwrap().unwrap();
    assert_eq!(e.index, d.ledger_index);
    assert_eq!(e.payload["decision_hash"], d.decision_hash);
    assert_eq!(gov.entry(d.ledger_index).unwrap().unwrap(), e);
    assert!(gov.entry(99).unwrap().is_none());
}

/// A host signer that is not what it says.
struct Broken {
    signs_with: Ed25519Signer,
    public_key: [u8; 32],
    garbage: bool,
}

impl Signer for Broken {
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], lexecon_core::signer::SignerError> {
        if self.garbage {
            return Ok([7; 64]);
        }
        self.signs_with.sign(message)
    }
    fn public_key(&self) -> [u8; 32] {
        self.public_key
    }
}

#[test]
fn a_signer_whose_signatures_do_not_verify_is_refused_when_opening() {
    let good = Ed25519Signer::from_seed(&[1; 32]).public_key();
    for (signer, says) in [
        (
            Broken {
                signs_with: Ed25519Signer::from_seed(&[1; 32]),
                public_key: good,
                garbage: true,
            },
            "does not verify with its public key",
        ),
        (
            Broken {
                signs_with: Ed25519Signer::from_seed(&[2; 32]),
                public_key: good,
                garbage: false,
            },
            "does not verify with its public key",
        ),
        (
            Broken {
                signs_with: Ed25519Signer::from_seed(&[1; 32]),
                public_key: [0; 32],
                garbage: false,
            },
            "not a valid Ed25519 key",
        ),
    ] {
        let engine = Engine::new(
            NodeConfig::default(),
            Box::new(signer),
            Box::new(SteppingClock::new(T0, 1000)),
            Box::new(SeededRandom::new(b"s")),
        );
        let storage = Shared::default();
        match Governor::open(engine, storage.clone()) {
            Err(EngineError::Signer(e)) => assert!(e.0.contains(says), "{e}"),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("opened with a signer whose signatures do not verify"),
        }
        assert_eq!(storage.clone().len().unwrap(), 0);
    }
    // The real one opens.
    let engine = Engine::new(
        NodeConfig::default(),
        Box::new(Ed25519Signer::from_seed(&[1; 32])),
        Box::new(SteppingClock::new(T0, 1000)),
        Box::new(SeededRandom::new(b"s")),
    );
    assert!(Governor::open(engine, MemoryStorage::new()).is_ok());
}

#[test]
fn stored_decisions_prove_they_were_signed_by_the_node() {
    use lexecon_core::engine::verify_entry_signature;
    use lexecon_core::ledger::Entry;
    let mut gov = Governor::open(engine("sig"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    let permit = gov.decide(&search()).unwrap();
    let deny = gov
        .decide(&DecisionRequest::new("model", "run", "execute", "x", 1))
        .unwrap();
    assert!(permit.allowed && !deny.allowed);
    let key = gov.engine().public_key();
    let entries: Vec<Entry> = (0..3).map(|i| gov.entry(i).unwrap().unwrap()).collect();
    for e in &entries {
        verify_entry_signature(e, &key).unwrap();
    }
    // Another node's key: named.
    let other = Ed25519Signer::from_seed(&[3; 32]).public_key();
    let e = verify_entry_signature(&entries[1], &other).unwrap_err();
    assert!(e.contains("not this node's key"), "{e}");

    // A denial turned into a permit, every hash recomputed: the signature
    // is what gives it away.
    for (i, from, to) in [
        (2, "\"allowed\":false", "\"allowed\":true"),
        (1, "\"risk_level\":1", "\"risk_level\":2"),
    ] {
        let mut forged = entries[i].clone();
        let record: serde_json::Value = serde_json::from_str(
            &serde_json::to_string(&forged.payload["record"])
                .unwrap()
                .replace(from, to),
        )
        .unwrap();
        assert_ne!(record, forged.payload["record"], "{from}");
        let hash = lexecon_core::hash::sha256_hex(&lexecon_core::canonical::to_vec(&record));
        forged.payload["record"] = record.clone();
        let e = verify_entry_signature(&forged, &key).unwrap_err();
        assert!(
            e.contains("decision_hash is not the SHA-256 of its record"),
            "{e}"
        );
        forged.payload["decision_hash"] = hash.into();
        let e = verify_entry_signature(&forged, &key).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
    }
}

#[test]
fn every_decision_names_the_policy_the_latest_load_before_it_loaded() {
    use lexecon_core::engine::{NO_POLICY, PolicyFact, PolicyTrail};
    let mut gov = Governor::open(engine("trail"), MemoryStorage::new()).unwrap();
    gov.decide(&search()).unwrap(); // no policy yet: denied, under `none`
    gov.load_policy(POLICY).unwrap();
    gov.decide(&search()).unwrap();
    let other = POLICY.replacen("\"mode\": \"strict\"", "\"mode\": \"permissive\"", 1);
    assert_ne!(other, POLICY);
    gov.load_policy(&other).unwrap();
    gov.decide(&search()).unwrap();
    let facts: Vec<PolicyFact> = (0..5)
        .map(|i| PolicyFact::of(&gov.entry(i).unwrap().unwrap()).unwrap())
        .collect();
    assert_eq!(facts[0], PolicyFact::DecidedUnder(NO_POLICY.into()));
    let mut trail = PolicyTrail::new();
    for (i, f) in (0..).zip(&facts) {
        trail.push(i, f.clone()).unwrap();
    }

    // Entry 1 rewritten to load another policy: entry 2, decided under the
    // real one, says so.
    let PolicyFact::Loaded(real) = &facts[1] else {
        panic!("{:?}", facts[1])
    };
    let mut trail = PolicyTrail::new();
    trail.push(0, facts[0].clone()).unwrap();
    trail.push(1, PolicyFact::Loaded("f".repeat(64))).unwrap();
    let e = trail.push(2, facts[2].clone()).unwrap_err();
    assert!(
        e.contains(&format!("decided under policy {real}"))
            && e.contains("loaded by entry 1")
            && e.contains("the policy history was rewritten"),
        "{e}"
    );
    // A decision under a policy before any load.
    let e = PolicyTrail::new().push(0, facts[2].clone()).unwrap_err();
    assert!(e.contains("no policy is loaded before it"), "{e}");
}

/// Storage whose lookups answer with another entry than the one asked.
struct Misdirected(MemoryStorage);

impl Storage for Misdirected {
    fn len(&mut self) -> Result<u64, StorageError> {
        self.0.len()
    }
    fn get(&mut self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        // Entry 2 is answered with entry 0.
        self.0.get(if index == 2 { 0 } else { index })
    }
    fn find(&mut self, hash: &str) -> Result<Option<u64>, StorageError> {
        // Every hash "is" entry 1.
        Ok(self.0.find(hash)?.map(|_| 1))
    }
    fn append(&mut self, entries: &[EntryRecord]) -> Result<(), StorageError> {
        self.0.append(entries)
    }
}

#[test]
fn lookups_check_what_storage_returns() {
    let mut gov = Governor::open(engine("mis"), Misdirected(MemoryStorage::new())).unwrap();
    gov.load_policy(POLICY).unwrap();
    let d1 = gov.decide(&search()).unwrap();
    let d2 = gov.decide(&search()).unwrap();
    assert_eq!(
        gov.entry(1).unwrap().unwrap().entry_hash,
        d1.ledger_entry_hash
    );
    assert_eq!(
        gov.entry_by_hash(&d1.ledger_entry_hash)
            .unwrap()
            .unwrap()
            .index,
        1
    );
    match gov.entry(2) {
        Err(EngineError::Ledger(m)) => {
            assert!(m.contains("returned entry 0 when asked for entry 2"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    match gov.entry_by_hash(&d2.ledger_entry_hash) {
        Err(EngineError::Ledger(m)) => assert!(m.contains("the index was altered"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stored_entries_are_canonical_and_hash_as_documented() {
    let mut gov = Governor::open(engine("canon"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    let mut req = search();
    req.context = serde_json::json!({"z": 1e21, "a": 0.1, "é": "tab\tquote\"", "\u{1F600}": [1, -0.0, 5e-7], "\u{E000}": null})
        .as_object()
        .unwrap()
        .clone();
    req.user_intent = "line\nbreak \u{1} and </script>".into();
    let d = gov.decide(&req).unwrap();
    let bytes = gov.storage().get(d.ledger_index).unwrap().unwrap();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        lexecon_core::canonical::to_vec(&value),
        bytes,
        "stored bytes are RFC 8785 canonical"
    );
    let record = &value["payload"]["record"];
    assert_eq!(
        lexecon_core::hash::sha256_hex(&lexecon_core::canonical::to_vec(record)),
        d.decision_hash
    );
    assert_eq!(value["payload"]["decision_hash"], d.decision_hash);
    let mut body = value.as_object().unwrap().clone();
    body.remove("entry_hash");
    assert_eq!(
        lexecon_core::hash::sha256_hex(&lexecon_core::canonical::to_vec(
            &serde_json::Value::Object(body)
        )),
        d.ledger_entry_hash
    );
}

#[test]
fn decision_signatures_verify_offline() {
    use lexecon_core::engine::verify_decision_signature;
    let mut gov = Governor::open(engine("sig"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    let pk = gov.engine().public_key();
    let permit = gov.decide(&search()).unwrap();
    let mut exec = search();
    exec.tool = "execute".into();
    let deny = gov.decide(&exec).unwrap();
    assert!(permit.allowed && !deny.allowed);
    verify_decision_signature(&permit, &pk).unwrap();
    verify_decision_signature(&deny, &pk).unwrap();
    let mut forged = deny.clone();
    forged.decision_hash = permit.decision_hash.clone();
    assert_eq!(
        verify_decision_signature(&forged, &pk),
        Err(TokenError::BadSignature)
    );
    let mut forged = permit.clone();
    forged.decision_hash = deny.decision_hash.clone();
    assert!(verify_decision_signature(&forged, &pk).is_err());
    let other = Ed25519Signer::from_seed(&[1; 32]).public_key();
    assert!(verify_decision_signature(&deny, &other).is_err());
}

#[test]
fn tail_restore_reads_only_what_it_needs() {
    use lexecon_core::TailRestorer;
    let policy = r#"{"name": "rl", "mode": "permissive", "constraints": [{"name": "rl", "condition": "true",
        "action": "rate_limit", "parameters": {"max_calls": 2, "window_seconds": 5}}]}"#;
    let mut gov = Governor::open(engine("tail"), MemoryStorage::new()).unwrap();
    gov.load_policy(POLICY).unwrap();
    for _ in 0..10 {
        gov.decide(&search()).unwrap();
    }
    gov.load_policy(policy).unwrap(); // entry 11, at T0 + 11 s
    for _ in 0..20 {
        gov.decide(&search()).unwrap(); // entries 12..=31, T0 + 12 s ..= T0 + 31 s
    }
    let entries = {
        let s = gov.storage();
        let len = s.len().unwrap();
        s.get_range(0, len).unwrap()
    };
    let fresh = |seed: &str| {
        Engine::new(
            NodeConfig {
                node_id: "test-node".into(),
                ..NodeConfig::default()
            },
            Box::new(Ed25519Signer::from_seed(&[9; 32])),
            Box::new(SteppingClock::new(T0 + 32_000, 1000)),
            Box::new(SeededRandom::new(seed.as_bytes())),
        )
    };
    let mut restored = fresh("a");
    let mut r = TailRestorer::new(&restored, entries.len() as u64);
    let mut read = Vec::new();
    while let Some(i) = r.wants() {
        r.push(&entries[i as usize]).unwrap();
        read.push(i);
    }
    r.finish(&mut restored).unwrap();
    // Back to the policy load (11) and one older entry to see the window end.
    assert_eq!(read.last(), Some(&10), "read {read:?}");
    assert_eq!(restored.len(), 32);
    assert_eq!(restored.head_hash(), gov.engine().head_hash());
    assert_eq!(restored.policy().unwrap().name, "rl");

    // The restored rate windows decide exactly as a full replay does.
    let mut replayed = fresh("a");
    let mut replay = TailRestorer::new(&replayed, 0);
    assert_eq!(replay.wants(), None);
    replay.push(b"ignored").unwrap();
    replay.finish(&mut replayed).unwrap();
    for bytes in &entries {
        replayed.observe(bytes).unwrap();
    }
    let mut a = Governor::open(restored, gov.storage().clone()).unwrap();
    let mut b = Governor::open(replayed, gov.storage().clone()).unwrap();
    for _ in 0..4 {
        assert_eq!(
            a.decide(&search()).unwrap().decision,
            b.decide(&search()).unwrap().decision
        );
    }
}
