# Sourced by scripts/load.sh and scripts/load-pg.sh: starting and stopping
# the `lexecon server` processes they drive. Needs BIN (the binary) and
# LEXECON_HOME set, and an array PIDS.

# start_server NODE_ID: starts `$BIN server --node-id NODE_ID` in the
# background, its output in $LEXECON_HOME/NODE_ID.out and .err, appends its
# pid to PIDS and sets URL to the address it prints. If it prints none
# within 10 s, shows its stderr and exits the script.
start_server() {
  local id="$1"
  "$BIN" server --node-id "$id" >"$LEXECON_HOME/$id.out" 2>"$LEXECON_HOME/$id.err" &
  PIDS+=("$!")
  URL=""
  for _ in $(seq 1 100); do
    URL="$(grep -o 'http://[0-9.:]*' "$LEXECON_HOME/$id.out" || true)"
    [[ -n "$URL" ]] && return 0
    sleep 0.1
  done
  cat "$LEXECON_HOME/$id.err" >&2
  exit 1
}

# stop_servers: SIGTERM to every server still running (a graceful shutdown
# that flushes the ledger), then waits for each.
stop_servers() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  done
}
