//! `examples/wasmtime-embed` builds and runs: another wasmtime application
//! embeds the component with a storage and signer of its own.
//!
//! Needs the built component (`scripts/build-component.sh`, or
//! `LEXECON_COMPONENT`). Runs `cargo run -p lexecon-wasmtime-embed`, which
//! uses the same target directory as this test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use lexecon::component::component_path;

#[test]
fn the_wasmtime_embed_example_builds_and_runs() {
    let wasm = component_path();
    assert!(
        wasm.is_file(),
        "the engine component is missing at `{}`: run scripts/build-component.sh",
        wasm.display()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args(["run", "--quiet", "-p", "lexecon-wasmtime-embed", "--"])
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
