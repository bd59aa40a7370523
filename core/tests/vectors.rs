//! Runs every `tests/vectors/*.json` through the native core: the
//! hand-written expectations must hold, and the outcome must equal the
//! stored `expected` byte for byte. `LEXECON_BLESS=1 cargo test -p
//! lexecon-core --test vectors` rewrites `expected` after a deliberate change.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use lexecon_core::conformance::{NativeSubject, Vector};

fn vector_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "expected the vector files in {}",
        dir.display()
    );
    files
}

#[test]
fn vectors_reproduce_on_the_native_core() {
    let bless = std::env::var_os("LEXECON_BLESS").is_some();
    let mut failures = Vec::new();
    for path in vector_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut vector =
            Vector::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut subject = NativeSubject::new(&vector).unwrap();
        let outcome = vector.run(&mut subject);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(e) = vector.check_expectations(&outcome) {
            failures.push(format!("{name}: expectations:\n{e}"));
        }
        // Every run must also leave a ledger that verifies.
        let report =
            lexecon_core::ledger::verify_chain(outcome.ledger.iter().map(|s| s.as_bytes()));
        if !report.valid {
            failures.push(format!(
                "{name}: ledger does not verify: {:?}",
                report.failure
            ));
        }
        if bless {
            vector.expected = Some(outcome);
            let mut out = serde_json::to_string_pretty(&vector).unwrap();
            out.push('\n');
            std::fs::write(&path, out).unwrap();
        } else {
            match &vector.expected {
                None => failures.push(format!(
                    "{name}: no `expected` block; run with LEXECON_BLESS=1"
                )),
                Some(expected) if *expected != outcome => {
                    let diff = expected
                        .ledger
                        .iter()
                        .zip(&outcome.ledger)
                        .position(|(a, b)| a != b)
                        .map_or("ledger length or steps differ".to_string(), |i| {
                            format!("first different ledger entry: {i}")
                        });
                    failures.push(format!("{name}: outcome differs from `expected` ({diff})"));
                }
                Some(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn runs_are_deterministic() {
    for path in vector_files() {
        let vector = Vector::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let a = vector.run(&mut NativeSubject::new(&vector).unwrap());
        let b = vector.run(&mut NativeSubject::new(&vector).unwrap());
        assert_eq!(a, b, "{}", path.display());
    }
}
