#!/bin/sh
# The container's entry point (examples/deploy/Dockerfile), for the guide's
#   docker run -d -p 8000:8000 -v ~/.lexecon:/data/.lexecon lexecon/lexecon:latest
# and its Kubernetes sidecar (LEXECON_NODE_ID set, the policy mounted at
# /etc/lexecon/policy.json):
#   1. creates the node on first start: $LEXECON_NODE_ID if set and absent,
#      or a node `lexecon` if $LEXECON_HOME has none (a mounted home with
#      exactly one node is served as it is);
#   2. loads $LEXECON_POLICY_FILE (default /etc/lexecon/policy.json) if it
#      exists (an error if it was set and does not); loading the active
#      policy again records nothing;
#   3. runs `lexecon server` in its place (PID 1, so `docker stop`'s SIGTERM
#      is the server's graceful shutdown), with any arguments passed on.
# host/tests/deploy.rs runs this script as written.
set -eu

: "${LEXECON_HOME:?LEXECON_HOME must be set (the image sets /data/.lexecon)}"
policy="${LEXECON_POLICY_FILE:-/etc/lexecon/policy.json}"

# A home mounted from the host belongs to the host's user; the image runs as
# uid 10001.
if [ ! -w "$LEXECON_HOME" ] || [ ! -x "$LEXECON_HOME" ]; then
  echo "lexecon: $LEXECON_HOME is not writable by uid $(id -u): give the mounted directory to that uid" \
    "(chown -R $(id -u) DIR) or run the container as its owner (--user UID:GID)" >&2
  exit 1
fi

if [ -n "${LEXECON_NODE_ID:-}" ]; then
  if [ ! -e "$LEXECON_HOME/nodes/$LEXECON_NODE_ID/config.yaml" ]; then
    lexecon init --node-id "$LEXECON_NODE_ID"
  fi
elif [ -z "$(ls -A "$LEXECON_HOME/nodes" 2>/dev/null || true)" ]; then
  LEXECON_NODE_ID=lexecon
  export LEXECON_NODE_ID
  lexecon init --node-id "$LEXECON_NODE_ID"
fi

# A ConfigMap volume mounted at the file's path without `subPath` (as the
# guide's sidecar manifest does) is a directory holding the file: take the
# one .json in it.
if [ -d "$policy" ]; then
  found="$(find -L "$policy" -mindepth 1 -maxdepth 1 -type f -name '*.json')"
  case "$found" in
    "") echo "lexecon: $policy is a directory with no .json file in it" >&2; exit 1 ;;
    *"
"*) echo "lexecon: $policy holds several .json files; mount the one policy" >&2; exit 1 ;;
  esac
  policy="$found"
fi
if [ -f "$policy" ]; then
  lexecon policy load --file "$policy"
elif [ -n "${LEXECON_POLICY_FILE:-}" ]; then
  echo "lexecon: LEXECON_POLICY_FILE=$LEXECON_POLICY_FILE does not exist" >&2
  exit 1
fi

exec lexecon server "$@"
