#!/usr/bin/env bash
# Builds Lexecon's engine as a WASI component and copies it to a stable path.
#
#   scripts/build-component.sh            -> target/lexecon.wasm
#
# The native host (`lexecon::component`), its tests and the conformance
# runner load the component from `target/lexecon.wasm` at the workspace root,
# or from the path in $LEXECON_COMPONENT. Cargo's own output lands in
# `$CARGO_TARGET_DIR` (default `target/`) under
# `wasm32-wasip2/wasm-release/lexecon_component.wasm`.
#
# Environment:
#   CARGO_TARGET_DIR   cargo's target directory (default: <root>/target)
#   LEXECON_COMPONENT  where to copy the component (default: <root>/target/lexecon.wasm)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

cargo build -p lexecon-component --target wasm32-wasip2 --profile wasm-release

target_dir="${CARGO_TARGET_DIR:-$root/target}"
built="$target_dir/wasm32-wasip2/wasm-release/lexecon_component.wasm"
out="${LEXECON_COMPONENT:-$root/target/lexecon.wasm}"
mkdir -p "$(dirname "$out")"
cp "$built" "$out.tmp"
mv "$out.tmp" "$out"

raw=$(wc -c <"$out")
gz=$(gzip -9 -c "$out" | wc -c)
echo "lexecon component: $out ($raw bytes, $gz bytes gzipped)"

# What the component asks of its host (the test
# `component_imports_only_storage_signer_and_a_little_wasi` enforces the list).
wasm_tools="${LEXECON_TOOLS:-$HOME/.lexecon-tools}/bin/wasm-tools"
command -v "$wasm_tools" >/dev/null 2>&1 || wasm_tools="$(command -v wasm-tools || true)"
if [[ -n "$wasm_tools" ]]; then
  echo "imports and exports:"
  "$wasm_tools" component wit "$out" | sed -n '/^world root {/,/^}/p' | grep -E '^\s*(import|export) ' || true
fi
