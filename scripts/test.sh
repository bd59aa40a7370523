#!/usr/bin/env bash
# Runs every Lexecon test on this machine — the README's test command.
#
#   scripts/test.sh            everything (installs what is missing first)
#
# In order: install missing tools (scripts/setup.sh); build the WASI component
# and the wasm-bindgen module; check that lexecon-core builds for both wasm
# targets; run the Rust tests of the whole workspace (core, host with its
# real HTTP, file and PostgreSQL tests, the conformance runner); compile the
# benches so they never rot (type-check); run the npm package's tests; smoke-run the
# fuzz targets. Any failure stops the run with a non-zero exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> %s\n' "$*" >&2; }

"$root/scripts/setup.sh"

step "build the WASI component (wasm32-wasip2)"
"$root/scripts/build-component.sh"

step "build the npm package's wasm (wasm32-unknown-unknown)"
"$root/scripts/build-js.sh"

step "lexecon-core builds for every target"
cargo build -p lexecon-core --target wasm32-wasip2
cargo build -p lexecon-core --target wasm32-unknown-unknown

step "rust tests"
cargo test --workspace --exclude lexecon-component --exclude lexecon-js
cargo test -p lexecon-js

step "benches compile (type-checked; running them is scripts/bench.sh's job)"
cargo check --workspace --exclude lexecon-component --exclude lexecon-js --benches

step "npm package tests"
(cd js && npm test)

step "npm package tests on Node 18 (the oldest Node it supports)"
"$root/scripts/test-node18.sh"

step "fuzz smoke run"
"$root/scripts/fuzz-smoke.sh" "${LEXECON_FUZZ_SECONDS:-10}"

echo "all tests passed" >&2
