#!/usr/bin/env bash
# Builds the WebAssembly half of the npm package `lexecon` into js/dist/wasm/:
#   lexecon_js.js        wasm-bindgen's ES-module glue (--target web: no fs, no process)
#   lexecon_js_bg.wasm   the engine, shrunk with wasm-opt from the npm `binaryen` package
# and then js/lib/, the Node build of js/src/ (js/scripts/bundle-node.js, esbuild).
# The wasm is built with SIMD (.cargo/config.toml): every runtime the package
# supports (Node >= 18, Workers, Deno, Vercel Edge, current browsers) has it.
# Generated files are never committed (.gitignore); CI runs this before `npm test`.
#
# Needs: rustup target wasm32-unknown-unknown, wasm-bindgen-cli at exactly the
# version of the `wasm-bindgen` crate (installed here with `cargo install` into
# $LEXECON_TOOLS, default ~/.lexecon-tools, if missing), and js/node_modules
# (`npm ci` in js/, run here if missing).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
js="$root/js"
out="$js/dist/wasm"
tools="${LEXECON_TOOLS:-$HOME/.lexecon-tools}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
opt_level="${LEXECON_WASM_OPT:--O3}"

# The exact wasm-bindgen version the crate pins ("=0.2.130").
wbg_version="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$js/bindings/Cargo.toml")"
if [[ -z "$wbg_version" ]]; then
  echo "build-js: cannot read the pinned wasm-bindgen version from js/bindings/Cargo.toml" >&2
  exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

wasm_bindgen="$tools/bin/wasm-bindgen"
if [[ "$("$wasm_bindgen" --version 2>/dev/null || true)" != "wasm-bindgen $wbg_version" ]]; then
  echo "build-js: installing wasm-bindgen-cli $wbg_version into $tools" >&2
  # Not --locked: the CLI's lockfile pins a yanked crate.
  cargo install wasm-bindgen-cli --version "$wbg_version" --root "$tools" --force
fi

if [[ ! -x "$js/node_modules/.bin/wasm-opt" ]]; then
  (cd "$js" && npm ci --no-audit --no-fund)
fi

cargo build --manifest-path "$root/Cargo.toml" -p lexecon-js \
  --target wasm32-unknown-unknown --profile wasm-release
raw="$target_dir/wasm32-unknown-unknown/wasm-release/lexecon_js.wasm"

# Exports return through memory, not with multi-value returns: Node 20's V8
# compiles a JS-to-wasm wrapper for each multi-value signature when it
# compiles the module, ~2 ms of the package's load (js/scripts/drop-multivalue.js).
single="${raw%.wasm}.single-value.wasm"
node "$js/scripts/drop-multivalue.js" "$raw" "$single"

rm -rf "$out"
mkdir -p "$out"
"$wasm_bindgen" "$single" --out-dir "$out" --out-name lexecon_js --target web \
  --no-typescript --remove-name-section --remove-producers-section

# The features Rust 1.95 enables by default on wasm32-unknown-unknown.
"$js/node_modules/.bin/wasm-opt" "$opt_level" \
  --enable-bulk-memory --enable-reference-types --enable-multivalue --enable-sign-ext \
  --enable-nontrapping-float-to-int --enable-mutable-globals --enable-simd \
  --strip-debug --strip-producers \
  "$out/lexecon_js_bg.wasm" -o "$out/lexecon_js_bg.wasm"

# What Node loads: src/ joined into lib/ (see js/scripts/bundle-node.js).
(cd "$js" && node scripts/bundle-node.js)

size="$(wc -c < "$out/lexecon_js_bg.wasm")"
gz="$(gzip -9 -c "$out/lexecon_js_bg.wasm" | wc -c)"
echo "build-js: $out/lexecon_js_bg.wasm: $size bytes ($gz gzipped)"
