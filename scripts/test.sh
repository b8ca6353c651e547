#!/usr/bin/env bash
# The one test command: Rust checks and tests, then the end-to-end suite (tests/) against
# the release `floe` binary with real Kafka clients.
#
#   scripts/test.sh                 everything (what CI runs)
#   scripts/test.sh --e2e [ARGS]    skip fmt/clippy/cargo test; build, then pytest ARGS
#                                   (e.g. scripts/test.sh --e2e -k kcat)
#
# On a fresh Debian machine as root it installs what it needs: kcat (apt) and a Python
# venv at .venv/ with tests/requirements.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

E2E_ONLY=0
if [[ "${1:-}" == "--e2e" ]]; then
    E2E_ONLY=1
    shift
fi
PYTEST_ARGS=("$@")

VENV="$ROOT/.venv"
REQS="$ROOT/tests/requirements.txt"
T_START=$SECONDS
STEP_NO=0

step() {
    # step "title" command...: run with a header, elapsed time, and a clear failure.
    local title="$1"
    shift
    STEP_NO=$((STEP_NO + 1))
    local t0=$SECONDS
    printf '\n==> [%d] %s  (at %ds)\n' "$STEP_NO" "$title" "$((t0 - T_START))"
    local rc=0
    "$@" || rc=$?
    local dt=$((SECONDS - t0))
    if [[ $rc -ne 0 ]]; then
        printf '\n!!! FAILED: step [%d] %s (exit %d after %ds)\n' "$STEP_NO" "$title" "$rc" "$dt" >&2
        exit "$rc"
    fi
    printf '<== [%d] %s: ok in %ds\n' "$STEP_NO" "$title" "$dt"
}

need_kcat() {
    if command -v kcat >/dev/null 2>&1; then
        echo "kcat already installed: $(command -v kcat)"
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "kcat is missing and this is not root: apt-get install -y --no-install-recommends kcat" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends kcat >/dev/null
    command -v kcat
}

need_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV" || {
            echo "python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
            return 1
        }
    fi
    # Reinstall only when requirements.txt changed since the last successful install.
    local stamp="$VENV/.requirements.sha256"
    local want
    want=$(sha256sum "$REQS" | cut -d' ' -f1)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        echo "venv up to date ($VENV)"
        return 0
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
    echo "$want" >"$stamp"
    "$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null |
        grep -iE '^(confluent-kafka|kafka-python|aiokafka|pytest) ' || true
}

# A real S3-compatible server (moto, from tests/requirements.txt) for the shadow-index
# conformance suite's external-S3 runs; stopped when this script exits.
start_moto() {
    local moto="$VENV/bin/moto_server"
    [[ -x "$moto" ]] || {
        echo "moto_server missing from $VENV (tests/requirements.txt pins moto[s3])" >&2
        return 1
    }
    local port
    port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$moto" -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/floe-moto-$$.log" 2>&1 &
    MOTO_PID=$!
    trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
    local i
    for i in $(seq 1 100); do
        if "$VENV/bin/python" - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
url = "http://127.0.0.1:%s/floe-test" % sys.argv[1]
urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=2)
PY
            export FLOE_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
            export FLOE_TEST_S3_BUCKET=floe-test
            echo "moto_server on $FLOE_TEST_S3_ENDPOINT (bucket floe-test)"
            return 0
        fi
        sleep 0.2
    done
    echo "moto_server did not start; its log:" >&2
    cat "${TMPDIR:-/tmp}/floe-moto-$$.log" >&2
    return 1
}

run_pytest() {
    local rc=0
    FLOE_BIN="$ROOT/target/release/floe" "$VENV/bin/python" -m pytest tests/ -v "${PYTEST_ARGS[@]}" || rc=$?
    if [[ $rc -eq 5 ]]; then
        echo "pytest collected no tests: that is a failure here" >&2
    fi
    return "$rc"
}

command -v cargo >/dev/null 2>&1 || {
    echo "cargo not found on PATH (source ~/.cargo/env?)" >&2
    exit 1
}

step "kcat (librdkafka CLI) present" need_kcat
step "Python venv with tests/requirements.txt" need_venv
if [[ $E2E_ONLY -eq 0 ]]; then
    step "cargo fmt --check" cargo fmt --all -- --check
    step "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings
    # Not a step: the exported endpoint must reach cargo test in this shell.
    echo "==> starting moto_server for the external-S3 conformance runs"
    start_moto
    step "cargo test (Rust unit and integration tests)" cargo test --workspace
    # S1 at CI scale: every decoder fuzzed briefly (scripts/fuzz.sh for longer runs;
    # no sanitizer here to keep CI short: the code under test has no unsafe, and the
    # targets' counting allocator still checks every allocation size).
    step "fuzz smoke test (cargo-fuzz, ${FUZZ_SECONDS:-15} s per target)" \
        env FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}" "$ROOT/scripts/fuzz.sh" "${FUZZ_SECONDS:-15}"
fi
step "cargo build --release -p broker" cargo build --release -p broker
[[ -x "$ROOT/target/release/floe" ]] || {
    echo "!!! FAILED: cargo build succeeded but target/release/floe does not exist" >&2
    exit 1
}
step "end-to-end tests (pytest tests/)" run_pytest

printf '\nAll steps passed in %ds.\n' "$((SECONDS - T_START))"
