#!/usr/bin/env bash
# Runs Lexecon's benchmarks — the commands behind the README's "Performance"
# figures. Benchmarks are never timed assertions in tests; run this on a quiet
# machine and compare with the README.
#
#   scripts/bench.sh           core criterion benches + component benches
#   scripts/bench.sh --load    also the HTTP load runs (scripts/load.sh; needs wrk, oha optional)
#
# The PostgreSQL replica figures are scripts/load-pg.sh; the npm package's are
# `npm run bench` in js/ (see js/README.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n==> %s\n' "$*" >&2; }

step "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

step "core: evaluate, Ed25519 sign, decide, token verify, ledger verify (criterion)"
cargo bench -p lexecon-core --bench engine

step "component: native vs component decide, fresh instance, size"
"$root/scripts/build-component.sh"
cargo bench -p lexecon --bench component

if [[ "${1:-}" == "--load" ]]; then
  step "server: durable decisions over HTTP"
  "$root/scripts/load.sh"
fi
