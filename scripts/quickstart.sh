#!/usr/bin/env bash
# Builds Lexecon and runs it on its embedded default: a node with the file
# ledger, the guide's AI-assistant policy, and a first decision.
#
#   scripts/quickstart.sh           build, init a node, load the policy, decide, verify the ledger
#   scripts/quickstart.sh --serve   the same, then start the HTTP server on 127.0.0.1:8000
#
# The node lives in $LEXECON_HOME (default: .lexecon-demo/ in this checkout,
# so the demo never touches ~/.lexecon).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export LEXECON_HOME="${LEXECON_HOME:-$root/.lexecon-demo}"
node="${LEXECON_NODE_ID:-quickstart}"
policy="$root/examples/policies/ai_assistant.json"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

"$root/scripts/build-component.sh" >&2
cargo build --release -p lexecon >&2
lexecon="$root/target/release/lexecon"

if [[ ! -d "$LEXECON_HOME/nodes/$node" ]]; then
  say "lexecon init --node-id $node"
  "$lexecon" init --node-id "$node"
fi
say "lexecon policy validate --file examples/policies/ai_assistant.json"
"$lexecon" --node-id "$node" policy validate --file "$policy"
say "lexecon policy load --file examples/policies/ai_assistant.json"
"$lexecon" --node-id "$node" policy load --file "$policy"
say "lexecon decide --actor model --tool web_search --action 'Execute web_search' --intent Research --risk 1"
"$lexecon" --node-id "$node" decide --actor model --tool web_search --action "Execute web_search" --intent Research --risk 1
say "lexecon decide --actor model --tool execute --action 'Execute system_command' --intent 'Run command' --risk 5"
"$lexecon" --node-id "$node" decide --actor model --tool execute --action "Execute system_command" --intent "Run command" --risk 5
say "lexecon ledger verify"
"$lexecon" --node-id "$node" ledger verify

if [[ "${1:-}" == "--serve" ]]; then
  say "lexecon server --node-id $node --port 8000   (Ctrl-C stops it)"
  exec "$lexecon" --node-id "$node" server --host 127.0.0.1 --port 8000
fi
printf '\nStart the server with: scripts/quickstart.sh --serve   (then: curl localhost:8000/health)\n' >&2
