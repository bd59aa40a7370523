//! The example builds and runs: another wasmtime application embeds the
//! component with a storage and signer of its own.
//!
//! Needs the built component (`scripts/build-component.sh`, which writes
//! `target/lexecon.wasm`, or `LEXECON_COMPONENT`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_wasmtime_embed_example_runs_the_component() {
    let wasm = std::env::var_os("LEXECON_COMPONENT")
        .filter(|p| !p.is_empty())
        .map_or_else(
            || {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../target/lexecon.wasm"
                ))
            },
            PathBuf::from,
        );
    assert!(
        wasm.is_file(),
        "the engine component is missing at `{}`: run scripts/build-component.sh",
        wasm.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lexecon-wasmtime-embed"))
        .arg(&wasm)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the example failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("web_search: Verdict::Permit"), "{stdout}");
    assert!(stdout.contains("shell: Verdict::Deny"), "{stdout}");
    assert!(stdout.contains("3 entries, valid: true"), "{stdout}");
}
