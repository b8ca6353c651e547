#!/usr/bin/env bash
# Fuzz Floe's decoders (TESTING.md target S1): frames and request headers,
# every request body, record batches, decompression.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 20)
#
# 1. installs cargo-fuzz if it is missing (`cargo install cargo-fuzz --locked`, ~1 min);
# 2. builds the targets in fuzz/ (own workspace, own target dir fuzz/target);
# 3. writes the seed corpora (fuzz/seeds.rs) into fuzz/corpus/<target>/;
# 4. re-runs every saved reproducer in fuzz/regressions/<target>/;
# 5. fuzzes each target for SECONDS_PER_TARGET seconds.
# Fails if a reproducer still fails or a crash, OOM, leak or timeout is found,
# printing the path of the input that reproduces it.
#
# Toolchain: stable Rust with RUSTC_BOOTSTRAP=1, which lets cargo-fuzz pass the
# -Z flags it needs (-Zsanitizer, sancov passes) to a stable compiler.
# Sanitizer: AddressSanitizer by default; FUZZ_SANITIZER=none builds without it
# (faster, still catches panics, aborts, OOMs and timeouts; the targets' own
# counting allocator still checks allocation sizes).
#
# Environment: FUZZ_SANITIZER (address|none), FUZZ_JOBS (parallel libFuzzer
# workers per target, default 1), FUZZ_RSS_MB (default 2048).
#
# Reproduce a finding:   fuzz/target/<host>/release/<target> <input file>
# or:                    RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <input file>   (in the repo root)
set -euo pipefail

SECONDS_PER_TARGET="${1:-20}"
SANITIZER="${FUZZ_SANITIZER:-address}"
JOBS="${FUZZ_JOBS:-1}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
TARGETS=(frame requests record_batch decompress)

# Largest input per target: a frame/request of 64 KiB covers every count and
# varint shape; batches go past the target's 256 KiB max.message.bytes.
max_len() {
    case "$1" in
        record_batch) echo 270000 ;;
        *) echo 65536 ;;
    esac
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ="$ROOT/fuzz"
cd "$ROOT"

export RUSTC_BOOTSTRAP=1
# detect_odr_violation=0: what cargo-fuzz sets for ASan builds of Rust code.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== building fuzz targets (sanitizer: $SANITIZER; rustc: $(rustc --version))"
build_start=$SECONDS
for target in "${TARGETS[@]}"; do
    cargo fuzz build --sanitizer "$SANITIZER" "$target"
done
# The seed writer is a plain program: built without coverage instrumentation
# (its sancov hooks only exist in a libFuzzer or sanitizer runtime), and
# unoptimized: it runs for a moment, and a debug build of its dependencies
# takes a fraction of a release one.
cargo build --manifest-path "$FUZZ/Cargo.toml" --target-dir "$FUZZ/target/seeds" --bin seeds
echo "   built in $((SECONDS - build_start)) s"

HOST="$(rustc -vV | sed -n 's/^host: //p')"
BIN="$FUZZ/target/$HOST/release"

echo "== writing seed corpora"
"$FUZZ/target/seeds/debug/seeds" "$FUZZ/corpus"

failed=()
summary=()

# 4. Saved reproducers must pass now (each file is run once).
for target in "${TARGETS[@]}"; do
    dir="$FUZZ/regressions/$target"
    [ -d "$dir" ] || continue
    mapfile -t inputs < <(find "$dir" -type f ! -name '*.md' ! -name '.*' | sort)
    [ "${#inputs[@]}" -gt 0 ] || continue
    echo "== $target: re-running ${#inputs[@]} saved reproducer(s) from fuzz/regressions/$target/"
    log="$FUZZ/artifacts/$target-regressions.log"
    mkdir -p "$FUZZ/artifacts"
    for input in "${inputs[@]}"; do
        if ! "$BIN/$target" -rss_limit_mb="$RSS_MB" -timeout=20 \
            -artifact_prefix="$FUZZ/artifacts/regression-" "$input" >"$log" 2>&1; then
            echo "!! $target: reproducer still fails: $input"
            grep -E "panicked|==floe-fuzz==|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY" "$log" | head -5 | sed 's/^/   /'
            failed+=("$target: $input (regression, log $log)")
        fi
    done
done

# 5. Fuzz each target.
for target in "${TARGETS[@]}"; do
    corpus="$FUZZ/corpus/$target"
    artifacts="$FUZZ/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    marker="$(mktemp)"
    log="$FUZZ/artifacts/$target.log"
    echo "== $target: fuzzing for ${SECONDS_PER_TARGET}s (max_len $(max_len "$target"))"
    status=0
    args=(
        "$corpus"
        -artifact_prefix="$artifacts/"
        -max_total_time="$SECONDS_PER_TARGET"
        -rss_limit_mb="$RSS_MB"
        -max_len="$(max_len "$target")"
        -timeout=10
        -print_final_stats=1
    )
    if [ "$JOBS" -gt 1 ]; then
        args+=(-jobs="$JOBS" -workers="$JOBS")
    fi
    # From fuzz/: with -jobs, libFuzzer writes fuzz-<n>.log into the working directory.
    (cd "$FUZZ" && "$BIN/$target" "${args[@]}") >"$log" 2>&1 || status=$?
    if [ "$JOBS" -gt 1 ]; then
        cat "$FUZZ"/fuzz-*.log >>"$log" 2>/dev/null || true
        rm -f "$FUZZ"/fuzz-*.log
    fi
    stats="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)"
    [ -n "$stats" ] || stats="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    echo "   $stats"
    summary+=("$target: ${stats:-no stats (see $log)}")
    mapfile -t found < <(find "$artifacts" -maxdepth 1 -type f -newer "$marker" \
        \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | sort)
    rm -f "$marker"
    if [ "$status" -ne 0 ] || [ "${#found[@]}" -gt 0 ]; then
        echo "!! $target: libFuzzer exited with status $status; log: $log"
        grep -E "panicked|==floe-fuzz==|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY|out-of-memory|timeout" "$log" | head -8 | sed 's/^/   /'
        for f in "${found[@]}"; do
            echo "   reproducer: $f"
            echo "   run it:     $BIN/$target $f"
        done
        failed+=("$target: status $status ${found[*]:-} (log $log)")
    fi
done

echo
echo "== summary (${SECONDS_PER_TARGET}s per target, sanitizer $SANITIZER)"
for line in "${summary[@]}"; do
    echo "   $line"
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED:"
    for f in "${failed[@]}"; do
        echo "   $f"
    done
    echo "Save a reproducer under fuzz/regressions/<target>/ so this script re-runs it."
    exit 1
fi
echo "OK: no crash, OOM, leak or timeout"
