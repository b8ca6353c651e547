#!/usr/bin/env bash
# The one test command: Rust checks and tests, then the end-to-end suite (tests/) against
# the real `floe` binary with real Kafka clients.
#
#   scripts/test.sh                 everything (what CI runs)
#   scripts/test.sh --e2e [ARGS]    skip fmt/clippy/cargo test; build, then pytest ARGS
#                                   (e.g. scripts/test.sh --e2e -k kcat)
#
# The end-to-end suite runs the `dev`-profile binary (target/debug/floe: dependencies at
# opt-level 2, as Cargo.toml sets), built from the same artifacts as `cargo test`, so the
# Rust code is compiled once for tests and binary alike. FLOE_E2E_PROFILE=release runs it
# against the release binary instead (what `cargo run --release` gives users; slower to build).
#
# clippy runs inside that same compile: clippy-driver is the workspace crates' compiler
# (RUSTC_WORKSPACE_WRAPPER, what `cargo clippy` itself sets) for `cargo test --all-targets`,
# so its lints with -D warnings cover every target without a second, check-only build of
# every dependency. A canary crate with a known lint proves the lints really run; without
# clippy-driver the script falls back to `cargo clippy`.
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

E2E_PROFILE="${FLOE_E2E_PROFILE:-dev}"
case "$E2E_PROFILE" in
    dev) E2E_BIN="$ROOT/target/debug/floe" ;;
    release) E2E_BIN="$ROOT/target/release/floe" ;;
    *)
        echo "FLOE_E2E_PROFILE must be dev or release, not $E2E_PROFILE" >&2
        exit 2
        ;;
esac

# clippy as the workspace crates' compiler (see the header). CLIPPY_ARGS carries the lint
# flags the way `cargo clippy -- -D warnings` passes them to clippy-driver.
CLIPPY_DRIVER=""
if command -v rustup >/dev/null 2>&1; then
    CLIPPY_DRIVER="$(rustup which clippy-driver 2>/dev/null || true)"
fi
[[ -n "$CLIPPY_DRIVER" ]] || CLIPPY_DRIVER="$(command -v clippy-driver || true)"

with_clippy() {
    RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER" CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__" "$@"
}

# Proof that with_clippy lints: a scratch crate with a lint clippy denies must fail to
# build, and the same crate without it must build and pass its test.
clippy_canary() {
    local dir
    dir="$(mktemp -d)"
    mkdir -p "$dir/src"
    printf '[package]\nname = "floe-clippy-canary"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n' >"$dir/Cargo.toml"
    printf 'pub fn len(v: &Vec<u8>) -> usize { v.len() }\n#[test]\nfn t() { assert_eq!(len(&Vec::new()), 0); }\n' >"$dir/src/lib.rs"
    if (cd "$dir" && with_clippy cargo test -q --offline --target-dir "$dir/target" >"$dir/log" 2>&1); then
        echo "clippy canary: a crate with clippy::ptr_arg built under clippy-driver; lints are not running" >&2
        cat "$dir/log" >&2
        return 1
    fi
    grep -q "ptr_arg" "$dir/log" || {
        echo "clippy canary failed for another reason than the lint:" >&2
        cat "$dir/log" >&2
        return 1
    }
    sed -i 's/&Vec<u8>/\&[u8]/' "$dir/src/lib.rs"
    (cd "$dir" && with_clippy cargo test -q --offline --target-dir "$dir/target" >"$dir/log" 2>&1) || {
        echo "clippy canary: the clean crate did not build and pass under clippy-driver:" >&2
        cat "$dir/log" >&2
        return 1
    }
    rm -rf "$dir"
    echo "clippy canary: lints run under clippy-driver ($CLIPPY_DRIVER)"
}

lint_and_build() {
    if [[ -z "$CLIPPY_DRIVER" ]]; then
        echo "clippy-driver not found: running cargo clippy separately"
        cargo clippy --workspace --all-targets -- -D warnings || return
        cargo test --workspace --all-targets --no-run
        return
    fi
    clippy_canary || return
    with_clippy cargo test --workspace --all-targets --no-run
}

run_cargo() {
    if [[ -n "$CLIPPY_DRIVER" ]]; then with_clippy cargo "$@"; else cargo "$@"; fi
}

run_pytest() {
    local rc=0
    FLOE_BIN="$E2E_BIN" "$VENV/bin/python" -m pytest tests/ -v "${PYTEST_ARGS[@]}" || rc=$?
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
    step "cargo clippy -D warnings, in the build of every target" lint_and_build
    # Not a step: the exported endpoint must reach cargo test in this shell.
    echo "==> starting moto_server for the external-S3 conformance runs"
    start_moto
    step "cargo test (Rust unit and integration tests)" run_cargo test --workspace
    # S1 at CI scale: every decoder fuzzed briefly (scripts/fuzz.sh for longer runs;
    # no sanitizer here to keep CI short: the code under test has no unsafe, and the
    # targets' counting allocator still checks every allocation size).
    step "fuzz smoke test (cargo-fuzz, ${FUZZ_SECONDS:-15} s per target)" \
        env FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}" "$ROOT/scripts/fuzz.sh" "${FUZZ_SECONDS:-15}"
fi
if [[ "$E2E_PROFILE" == release ]]; then
    step "cargo build --release -p broker" cargo build --release -p broker
else
    # --workspace: the features unified as in the test build, so its artifacts are reused
    # (`-p broker` alone resolves other features and rebuilt dozens of dependencies: 290 s).
    step "cargo build --workspace --bins (dev profile, the test build's artifacts)" run_cargo build --workspace --bins
fi
[[ -x "$E2E_BIN" ]] || {
    echo "!!! FAILED: cargo build succeeded but $E2E_BIN does not exist" >&2
    exit 1
}
step "end-to-end tests (pytest tests/)" run_pytest

printf '\nAll steps passed in %ds.\n' "$((SECONDS - T_START))"
