//! Same answers everywhere: every `tests/vectors/*.json` runs through
//! (1) `lexecon-core` natively and (2) the engine component inside wasmtime,
//! with the same clock, signing key and random stream. Decisions, reasons,
//! decision hashes, errors and every ledger entry's bytes must be identical,
//! and equal to the outcome stored in the vector.
//!
//! Needs the built component: run `scripts/build-component.sh` first (or
//! set `LEXECON_COMPONENT`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use lexecon::component::{ComponentEngine, ComponentHost, GuestEnv, Limits};
use lexecon::engine::DecisionEngine;
use lexecon_core::conformance::{NativeSubject, Outcome, Subject, Vector};
use lexecon_core::engine::{EngineError, PolicyLoaded};
use lexecon_core::random::SeededRandom;
use lexecon_core::time::SteppingClock;
use lexecon_core::{Decision, DecisionRequest, Ed25519Signer, RequestError, Storage};

#[path = "support/shared_storage.rs"]
mod shared_storage;
use shared_storage::SharedStorage;

/// The component as a conformance subject; the test keeps a handle on the
/// storage to read back exactly what the component appended.
struct ComponentSubject {
    engine: ComponentEngine,
    storage: SharedStorage,
}

impl ComponentSubject {
    fn new(host: &ComponentHost, vector: &Vector) -> Self {
        let storage = SharedStorage::default();
        let env = GuestEnv::system()
            .with_clock(SteppingClock::new(
                vector.clock.start_ms,
                vector.clock.step_ms,
            ))
            .with_random(SeededRandom::new(vector.random_seed.as_bytes()));
        let engine = host
            .open(
                vector.node.clone(),
                Box::new(storage.clone()),
                Box::new(Ed25519Signer::from_seed(&vector.seed())),
                env,
            )
            .unwrap();
        Self { engine, storage }
    }
}

impl Subject for ComponentSubject {
    fn load_policy(&mut self, text: &str) -> Result<PolicyLoaded, EngineError> {
        self.engine.load_policy(text)
    }

    fn decide_batch(
        &mut self,
        requests: &[DecisionRequest],
    ) -> Result<Vec<Result<Decision, RequestError>>, EngineError> {
        self.engine.decide_batch(requests)
    }

    fn ledger(&mut self) -> Vec<Vec<u8>> {
        let len = self.storage.len().unwrap();
        self.storage.get_range(0, len).unwrap()
    }
}

fn vector_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    files
}

/// Where two outcomes first differ, for a readable failure.
fn first_difference(a: &Outcome, b: &Outcome) -> String {
    for (i, (x, y)) in a.steps.iter().zip(&b.steps).enumerate() {
        if x != y {
            return format!("step {i}:\n  native:    {x}\n  component: {y}");
        }
    }
    for (i, (x, y)) in a.ledger.iter().zip(&b.ledger).enumerate() {
        if x != y {
            return format!("ledger entry {i}:\n  native:    {x}\n  component: {y}");
        }
    }
    format!(
        "lengths: {} vs {} steps, {} vs {} entries; heads {} vs {}",
        a.steps.len(),
        b.steps.len(),
        a.ledger.len(),
        b.ledger.len(),
        a.head_hash,
        b.head_hash
    )
}

#[test]
fn every_vector_gives_the_same_answers_natively_and_in_the_component() {
    let host = ComponentHost::load(Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut checked = 0;
    for path in vector_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let vector = Vector::from_json(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let native = vector.run(&mut NativeSubject::new(&vector).unwrap());
        let mut subject = ComponentSubject::new(&host, &vector);
        let component = vector.run(&mut subject);

        assert!(!component.ledger.is_empty(), "{name}: nothing was recorded");
        assert_eq!(
            native,
            component,
            "{name}: native and component differ at {}",
            first_difference(&native, &component)
        );
        if let Some(expected) = &vector.expected {
            assert_eq!(
                expected,
                &component,
                "{name}: the component differs from the stored outcome at {}",
                first_difference(expected, &component)
            );
        }
        vector
            .check_expectations(&component)
            .unwrap_or_else(|p| panic!("{name}: {p}"));

        // The component reads back exactly what it wrote, and the chain verifies.
        let engine = &mut subject.engine;
        for (i, stored) in component.ledger.iter().enumerate() {
            let entry = engine.entry(i as u64).unwrap().unwrap();
            assert_eq!(entry.bytes, stored.as_bytes(), "{name}: entry {i}");
        }
        let report = engine.verify_ledger().unwrap();
        assert!(report.valid, "{name}: {report:?}");
        assert_eq!(report.head_hash, component.head_hash);
        assert_eq!(engine.restarts(), 0, "{name}");
        checked += 1;
    }
    eprintln!("conformance: {checked} vectors identical natively and in the component");
}
