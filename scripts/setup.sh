#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test Lexecon. Idempotent:
# every step checks first. Tools go to $LEXECON_TOOLS (default ~/.lexecon-tools),
# never into the repository.
#   - rustup targets wasm32-wasip2 (the component) and wasm32-unknown-unknown (npm)
#   - wasm-bindgen-cli at exactly the version js/bindings pins
#   - wasm-tools (inspects the component's imports in a test)
#   - js/node_modules from package-lock.json (npm ci)
#   - Debian's prometheus (prometheus, promtool) and systemd-analyze, for the
#     tests of examples/deploy/ (apt-get, as root)
#   - a running PostgreSQL for the storage tests (started if installed but down)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${LEXECON_TOOLS:-$HOME/.lexecon-tools}"
mkdir -p "$tools/bin"

step() { printf '\n==> %s\n' "$*" >&2; }

step "rust targets"
installed="$(rustup target list --installed)"
for t in wasm32-wasip2 wasm32-unknown-unknown; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

step "wasm-bindgen-cli"
wbg_version="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$root/js/bindings/Cargo.toml")"
if [[ "$("$tools/bin/wasm-bindgen" --version 2>/dev/null || true)" != "wasm-bindgen $wbg_version" ]]; then
  # Not --locked: the CLI's own lockfile pins a yanked crate.
  cargo install wasm-bindgen-cli --version "$wbg_version" --root "$tools" --force
fi

step "wasm-tools"
wasm_tools_version=1.263.0
if [[ "$("$tools/bin/wasm-tools" --version 2>/dev/null || true)" != "wasm-tools $wasm_tools_version"* ]]; then
  cargo install wasm-tools --version "$wasm_tools_version" --locked --root "$tools" --force
fi

step "npm dependencies (js/)"
if [[ ! -d "$root/js/node_modules" || "$root/js/package-lock.json" -nt "$root/js/node_modules/.package-lock.json" ]]; then
  (cd "$root/js" && npm ci --no-audit --no-fund)
fi

step "prometheus, promtool and systemd-analyze (host/tests/deploy.rs)"
need_pkgs=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need_pkgs+=(prometheus)
command -v systemd-analyze >/dev/null || need_pkgs+=(systemd)
if ((${#need_pkgs[@]})); then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    # Installing Debian's prometheus does not start it (no systemd here).
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null; }
  else
    echo "warning: install ${need_pkgs[*]} (Debian packages) for host/tests/deploy.rs" >&2
  fi
fi

step "postgresql"
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null \
    || echo "warning: no PostgreSQL at 127.0.0.1:5432; the PostgreSQL tests will fail" >&2
fi
echo "setup: done" >&2
