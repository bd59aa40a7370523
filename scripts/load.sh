#!/usr/bin/env bash
# Reproduces the README's load figures: a release `lexecon server` on the
# embedded file ledger (every decision fsynced before it is answered, group
# commit under concurrency) driven by wrk over loopback, bounded in time.
#
#   scripts/load.sh                 # 10 s per run
#   DURATION=30s scripts/load.sh
#
# Runs: 16 connections (throughput), 1 connection (the Python original's
# one-request-at-a-time shape), and, when `oha` is installed
# (`cargo install oha`), 16 connections at half the measured rate and at
# 10,000 req/s (half the goal's 20,000; GOAL_HALF_RATE overrides) for the p99
# goal. The policy is scripts/load/policy.json: the guide's AI assistant
# policy without its 10-per-minute web_search rate limit, so the runs measure
# decisions, not the limiter. Every request is a permit with a signed token.
# Needs: wrk (`apt-get install -y wrk`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-10s}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -p lexecon --quiet)
BIN="$TARGET_DIR/release/lexecon"

# shellcheck source=scripts/load/server.sh
source "$ROOT/scripts/load/server.sh"
export LEXECON_HOME
LEXECON_HOME="$(mktemp -d)"
PIDS=()
cleanup() {
  stop_servers
  rm -rf "$LEXECON_HOME"
}
trap cleanup EXIT

cat >"$LEXECON_HOME/config.yaml" <<'EOF'
node_id: load
version: "0.1.0"
server:
  host: "127.0.0.1"
  port: 0
  rate_limit:
    enabled: false   # one client address sends everything
ledger:
  storage: file
  auto_verify: true
logging:
  level: warn
EOF
"$BIN" init --node-id load --config "$LEXECON_HOME/config.yaml" >/dev/null
"$BIN" policy load --node-id load --file "$ROOT/scripts/load/policy.json" >/dev/null

start_server load
echo "server: $URL (file ledger in $LEXECON_HOME/nodes/load/ledger.db), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The disk's own durable-write latency next to the ledger, for context:
# every figure below waits for it.
python3 - "$LEXECON_HOME/fsync-probe" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC)
ts, off, t0 = [], 0, time.perf_counter()
while time.perf_counter() - t0 < 1.0:
    os.pwrite(fd, b"x" * 8192, off); off += 8192
    t = time.perf_counter(); os.fdatasync(fd); ts.append(time.perf_counter() - t)
ts.sort()
print("disk: fdatasync of an 8 KiB append p50 %.3f ms, p99 %.3f ms (%d samples)" % (ts[len(ts) // 2] * 1e3, ts[int(len(ts) * 0.99)] * 1e3, len(ts)))
os.close(fd); os.unlink(sys.argv[1])
PY

LAST=""
run() { # label, wrk args...
  local label="$1"; shift
  LAST="$(wrk "$@" -s "$ROOT/scripts/load/decide.lua" "$URL/decide" | grep '^LOAD')"
  echo "$label: ${LAST#LOAD }"
}

wrk -t2 -c16 -d2s -s "$ROOT/scripts/load/decide.lua" "$URL/decide" >/dev/null   # warm-up
run "16 connections" -t2 -c16 -d"$DURATION"
RPS16="$(sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$LAST")"
run "1 connection " -t1 -c1 -d"$DURATION"

oha_run() { # label, rate
  local body='{"actor": "model", "proposed_action": "Execute web_search", "tool": "web_search", "user_intent": "Research", "risk_level": 1, "policy_mode": "strict"}'
  oha --no-tui -z "$DURATION" -c 16 -q "$2" -m POST -H 'Content-Type: application/json' -d "$body" --output-format json "$URL/decide" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); s=r["summary"]; p=r["latencyPercentiles"]; print("16 connections at %s req/s (%s, oha): rps=%.0f p50_ms=%.3f p99_ms=%.3f statuses=%s" % (sys.argv[1], sys.argv[2], s["requestsPerSec"], p["p50"]*1000, p["p99"]*1000, r["statusCodeDistribution"]))' "$2" "$1"
}

if command -v oha >/dev/null; then
  oha_run "half the measured rate" $((RPS16 / 2))
  # The goal's own latency point: p99 at half of 20,000 decisions/s.
  oha_run "half the goal's rate" "${GOAL_HALF_RATE:-10000}"
else
  echo "rate-limited runs skipped: install oha (cargo install oha) for a rate-limited load generator"
fi

"$BIN" ledger verify --node-id load
echo "metrics:"
curl -s "$URL/metrics" | grep -E '^lexecon_(decision_requests_(total|allowed|denied|failed)|ledger_entries_total) '
