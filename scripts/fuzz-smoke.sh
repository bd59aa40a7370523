#!/usr/bin/env bash
# Builds every fuzz target in fuzz/ and runs each one for a bounded time.
#
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET...]
#
# SECONDS is each target's libFuzzer -max_total_time (default 20); TARGETs
# default to all of `cargo fuzz list`. Exits non-zero when a build fails or
# any target finds a crash, panic, leak or timeout, or when a saved input in
# fuzz/regressions/<target>/ still fails (set FUZZ_SKIP_REGRESSIONS=1 to skip
# that replay). Crash inputs land in fuzz/artifacts/<target>/.
#
# Works on stable Rust: cargo-fuzz passes nightly-only flags, so this sets
# RUSTC_BOOTSTRAP=1 for its builds. AddressSanitizer is used by default;
# FUZZ_SANITIZER=none (or any cargo-fuzz sanitizer) overrides it, and if the
# ASan build fails the script falls back to `--sanitizer none`.
# Extra libFuzzer flags: FUZZ_ARGS="-max_len=8192 ...".
#
# cargo-fuzz is installed into $LEXECON_TOOLS (default ~/.lexecon-tools) when
# missing. libFuzzer grows a working corpus under fuzz/target/smoke-corpus/;
# the seeds in fuzz/corpus/ are only read.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${LEXECON_TOOLS:-$HOME/.lexecon-tools}"
cargo_fuzz_version=0.13.2
seconds="${1:-20}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
  echo "usage: $0 [SECONDS] [TARGET...]  (SECONDS: a positive integer)" >&2
  exit 2
fi

step() { printf '\n==> %s\n' "$*" >&2; }

export PATH="$tools/bin:$PATH"
if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
  step "installing cargo-fuzz $cargo_fuzz_version into $tools"
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked --root "$tools" --force
fi
cargo fuzz --version >&2

# cargo-fuzz needs -Z flags (sanitizers, coverage options): allow them on stable.
export RUSTC_BOOTSTRAP=1
# The fuzz crate has its own workspace and target dir (fuzz/target); never
# let an outer CARGO_TARGET_DIR move the instrumented build elsewhere.
unset CARGO_TARGET_DIR

cd "$root"
sanitizer="${FUZZ_SANITIZER:-address}"
named=("$@")
if (( $# > 0 )); then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

build() { # SANITIZER [TARGET...]
  if (( $# > 1 )); then
    # Only the targets named on the command line.
    local t
    for t in "${targets[@]}"; do
      cargo fuzz build --sanitizer "$1" "$t" || return 1
    done
  else
    cargo fuzz build --sanitizer "$1"
  fi
}

step "building ${targets[*]} (sanitizer: $sanitizer)"
if ! build "$sanitizer" "${named[@]}"; then
  if [[ "$sanitizer" == none ]]; then
    echo "fuzz build failed" >&2
    exit 1
  fi
  step "build with --sanitizer $sanitizer failed; retrying with --sanitizer none"
  sanitizer=none
  build none "${named[@]}"
fi

dict_for() {
  case "$1" in
    condition) echo fuzz/dict/condition.dict ;;
    policy_json | decision_request | capability_token) echo fuzz/dict/json.dict ;;
    ledger_entry) echo fuzz/dict/ledger.dict ;;
    *) echo "" ;;
  esac
}

logs="fuzz/target/smoke-logs"
mkdir -p "$logs"
declare -a summary=()
failed=()
read -r -a extra <<<"${FUZZ_ARGS:-}"

for t in "${targets[@]}"; do
  step "fuzzing $t for ${seconds}s"
  work="fuzz/target/smoke-corpus/$t"
  mkdir -p "$work" "fuzz/corpus/$t"
  args=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 -print_final_stats=1)
  dict="$(dict_for "$t")"
  [[ -n "$dict" ]] && args+=(-dict="$dict")
  set +e
  cargo fuzz run --sanitizer "$sanitizer" "$t" "$work" "fuzz/corpus/$t" -- \
    "${args[@]}" "${extra[@]}" >"$logs/$t.log" 2>&1
  rc=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n 1)"
  if (( rc != 0 )); then
    failed+=("$t")
    summary+=("$(printf '%-18s FAILED (exit %d) after %s executions; log: %s' "$t" "$rc" "${execs:-?}" "$logs/$t.log")")
    grep -E -m 12 -A 6 "panicked at|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY|Test unit written" \
      "$logs/$t.log" >&2 || tail -n 40 "$logs/$t.log" >&2
  else
    summary+=("$(printf '%-18s ok: %s executions in %ss' "$t" "${execs:-?}" "$seconds")")
  fi
done

if [[ "${FUZZ_SKIP_REGRESSIONS:-0}" != 1 ]]; then
  for t in "${targets[@]}"; do
    dir="fuzz/regressions/$t"
    [[ -d "$dir" ]] || continue
    mapfile -t inputs < <(find "$dir" -type f | sort)
    (( ${#inputs[@]} > 0 )) || continue
    step "replaying ${#inputs[@]} saved input(s) for $t"
    for f in "${inputs[@]}"; do
      if cargo fuzz run --sanitizer "$sanitizer" "$t" "$f" -- -runs=1 >"$logs/$t.regression.log" 2>&1; then
        summary+=("$(printf '%-18s ok: regression %s' "$t" "$f")")
      else
        failed+=("$t:$f")
        summary+=("$(printf '%-18s FAILED: regression %s still fails' "$t" "$f")")
        grep -E -m 4 -A 4 "panicked at|ERROR: AddressSanitizer" "$logs/$t.regression.log" >&2 || true
      fi
    done
  done
fi

step "summary"
printf '%s\n' "${summary[@]}" >&2
if (( ${#failed[@]} > 0 )); then
  printf '\nfuzz smoke FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf '\nfuzz smoke passed: %d targets, %ss each\n' "${#targets[@]}" "$seconds" >&2
