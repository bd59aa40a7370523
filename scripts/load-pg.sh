#!/usr/bin/env bash
# Reproduces the README's PostgreSQL figures: two release `lexecon server`
# replicas (`ledger.storage: postgresql`) sharing one database, each driven
# by its own wrk at 16 connections over loopback, at the same time, bounded
# in time. Every decision is answered only after its transaction committed
# (synchronous_commit on). Then `lexecon ledger verify` reads the whole chain
# back from PostgreSQL and its rate is reported.
#
#   scripts/load-pg.sh                       # 10 s of load
#   DURATION=30s scripts/load-pg.sh
#   VERIFY_ENTRIES=100000 scripts/load-pg.sh # keep loading until the ledger has this many entries
#
# The database is made for the run and dropped afterwards, on the server
# named by LEXECON_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test;
# its user must be allowed to create databases). The policy is
# scripts/load/policy.json (no rate limit), as in scripts/load.sh.
# Needs: wrk, psql.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
VERIFY_ENTRIES="${VERIFY_ENTRIES:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ADMIN_URL="${LEXECON_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"

for tool in wrk psql; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install -y wrk postgresql-client)" >&2; exit 1; }
done
psql "$ADMIN_URL" -Atqc 'select 1' >/dev/null \
  || { echo "PostgreSQL NOT REACHABLE at $ADMIN_URL (set LEXECON_TEST_PG_URL)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release -p lexecon --quiet)
BIN="$TARGET_DIR/release/lexecon"

DB="lexecon_load_$$_$(date +%s)"
# The admin URL with its database replaced (URL form only).
DB_URL="$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/"+sys.argv[2])))' "$ADMIN_URL" "$DB")"

# shellcheck source=scripts/load/server.sh
source "$ROOT/scripts/load/server.sh"
export LEXECON_HOME
LEXECON_HOME="$(mktemp -d)"
PIDS=()
cleanup() {
  stop_servers
  psql "$ADMIN_URL" -Atqc "drop database if exists \"$DB\" with (force)" >/dev/null || true
  rm -rf "$LEXECON_HOME"
}
trap cleanup EXIT
psql "$ADMIN_URL" -Atqc "create database \"$DB\"" >/dev/null

for id in replica-a replica-b; do
  cat >"$LEXECON_HOME/$id.yaml" <<EOF
node_id: $id
version: "0.1.0"
server:
  host: "127.0.0.1"
  port: 0
  rate_limit:
    enabled: false   # one client address sends everything
ledger:
  storage: postgresql
  connection_string: "$DB_URL"
  auto_verify: true
logging:
  level: "warn,lexecon::storage::postgres=info"   # the writer's append counts, logged at shutdown
EOF
  "$BIN" init --node-id "$id" --config "$LEXECON_HOME/$id.yaml" >/dev/null
done
# One policy load, recorded in the shared ledger: both replicas restore it.
"$BIN" policy load --node-id replica-a --file "$ROOT/scripts/load/policy.json" >/dev/null

URLS=()
for id in replica-a replica-b; do
  start_server "$id"
  URLS+=("$URL")
done
echo "replicas: ${URLS[*]} on postgresql database $DB; $(nproc) cores; PostgreSQL $(psql "$DB_URL" -Atqc 'show server_version'), synchronous_commit=$(psql "$DB_URL" -Atqc 'show synchronous_commit')"

wrk_both() { # duration, extra wrk args... ; prints one LOAD line per replica
  local d="$1"; shift
  local outs=()
  for i in 0 1; do
    wrk -t1 -c"$CONNECTIONS" -d"$d" "$@" -s "$ROOT/scripts/load/decide.lua" "${URLS[$i]}/decide" >"$LEXECON_HOME/wrk$i.out" &
    outs+=("$!")
  done
  wait "${outs[@]}"
  for i in 0 1; do grep '^LOAD' "$LEXECON_HOME/wrk$i.out" || { cat "$LEXECON_HOME/wrk$i.out" >&2; exit 1; }; done
}

stats() { # rows, append transactions (the rows of one transaction share its xmin)
  psql "$DB_URL" -Atqc "select count(*), count(distinct xmin::text) from lexecon_ledger" | tr '|' ' '
}

wrk_both 2s >/dev/null   # warm-up
read -r rows0 tx0 <<<"$(stats)"
lines="$(wrk_both "$DURATION" --latency)"
read -r rows1 tx1 <<<"$(stats)"
echo "$lines" | sed -n 1p | sed 's/^LOAD /replica-a: /'
echo "$lines" | sed -n 2p | sed 's/^LOAD /replica-b: /'
echo "$lines" | python3 -c '
import re, sys
runs = [dict(re.findall(r"(\w+)=([0-9.]+)", l)) for l in sys.stdin if l.strip()]
# wrk counts non-2xx answers in its requests: only 200s are committed decisions.
ok = sum((float(r["requests"]) - float(r["errors"])) / float(r["duration_s"]) for r in runs)
print("both replicas: %.0f committed decisions/s (200 answers), p99 %.1f ms / %.1f ms, %d errors"
      % (ok, float(runs[0]["p99_ms"]), float(runs[1]["p99_ms"]), sum(int(r["errors"]) for r in runs)))'
appended=$((rows1 - rows0)); txs=$((tx1 - tx0))
echo "postgres: $appended entries in $txs append transactions ($(python3 -c "print(round($appended / max($txs, 1), 1))") entries per commit)"

for id in replica-a replica-b; do
  n="$(grep -c 'decision batch failed' "$LEXECON_HOME/$id.err" || true)"
  if (( n > 0 )); then
    echo "$id: $n failed batches (answered 503), e.g.:"
    grep 'decision batch failed' "$LEXECON_HOME/$id.err" | sed -E 's/.*error=//' | cut -c1-200 | sort | uniq -c | sort -rn | head -3
  fi
done

if (( VERIFY_ENTRIES > 0 )); then
  for _ in $(seq 1 60); do
    read -r rows _ <<<"$(stats)"
    (( rows >= VERIFY_ENTRIES )) && break
    wrk_both 5s >/dev/null
  done
fi

start=$(date +%s.%N)
out="$("$BIN" ledger verify --node-id replica-b)"
end=$(date +%s.%N)
echo "$out"
python3 -c "
import re, sys
n = int(re.search(r'(\d+) entries', sys.argv[1]).group(1)); t = float(sys.argv[3]) - float(sys.argv[2])
print('bulk verify from postgresql: %d entries in %.2f s = %.0f entries/s' % (n, t, n / t))" "$out" "$start" "$end"

# Stop the replicas: each writer logs its totals (whole run: warm-up and
# fill included) as it closes.
for pid in "${PIDS[@]}"; do kill -TERM "$pid"; wait "$pid" || true; done
PIDS=()
for id in replica-a replica-b; do
  line="$(grep 'postgres ledger writer closed' "$LEXECON_HOME/$id.err" | tail -n1)"
  c="$(grep -o 'commits=[0-9]*' <<<"$line" | cut -d= -f2)"
  e="$(grep -o 'entries=[0-9]*' <<<"$line" | cut -d= -f2)"
  k="$(grep -o 'conflicts=[0-9]*' <<<"$line" | cut -d= -f2)"
  echo "$id writer: ${c:-?} commits, ${e:-?} entries, ${k:-?} conflicts (appends re-decided after the other replica moved the head)"
done
