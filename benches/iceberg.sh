#!/usr/bin/env bash
# Iceberg projection measurements recorded in benches/RESULTS.md, section
# "Iceberg projection":
#   1. acks=all produce, 1 KiB records, to a topic projected with
#      iceberg.mode=key_value (iceberg.target.lag.ms=1000) vs to a plain
#      topic, alternating, $RUNS runs each;
#      then the same at a fixed $RATE_HIGH MB/s (below saturation);
#   2. commit lag while producing at $LAG_RATE MB/s to a projected topic;
#   3. projection throughput of a backlog: $BACKLOG_MB MB written with the
#      projection off, then `floe topic alter T --config iceberg.mode=...`,
#      timed until the table's current snapshot holds every partition up to
#      its high watermark, with the broker's CPU seconds (per thread) during it:
#      key_value, and value_schema_id_prefix with Avro values
#      (floe-load produce --avro-schema-id).
#
#   cargo build --release -p broker -p benches
#   benches/iceberg.sh            # STEPS="1 1b" runs only those sections
#
# Every command is printed before its output with the CPU idle share in the
# 2 s before it and the load average. The warehouse is the default one
# (file://<data-dir>/bucket/iceberg). Writes under $BENCH_DIR (default
# /tmp/floe-iceberg-bench), a few GB; the data dir is deleted at exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release}
dir=${BENCH_DIR:-/tmp/floe-iceberg-bench}
port=${PORT:-19392}
admin_port=${ADMIN_PORT:-19944}
registry_port=${REGISTRY_PORT:-19381}
duration=${DURATION:-10s}
runs=${RUNS:-3}
partitions=${PARTITIONS:-4}
lag_rate=${LAG_RATE:-20}
lag_duration=${LAG_DURATION:-30s}
rate_high=${RATE_HIGH:-150}
backlog_mb=${BACKLOG_MB:-2000}
steps=" ${STEPS:-1 1b 2 3} "  # which sections to run, e.g. STEPS=1
mkdir -p "$dir"

# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
broker="127.0.0.1:$port"
admin="127.0.0.1:$admin_port"
registry="http://127.0.0.1:$registry_port"
# User + system ticks of the broker's threads, summed by thread name
# ("name ticks" lines; the name is the comm field in parentheses).
thread_ticks() {
    local f
    for f in /proc/"$broker_pid"/task/*/stat; do
        sed -E 's/^[0-9]+ \((.*)\) [A-Za-z] (.*)$/\1 \2/' "$f" 2>/dev/null |
            awk '{n = $1; sub(/-?[0-9]+$/, "", n); print n, $13 + $14}'
    done | awk '{t[$1] += $2} END {for (n in t) print n, t[n]}' | sort
}
# Prints the per-thread-name CPU seconds between two thread_ticks outputs.
thread_delta() {
    join -a 2 -e 0 -o 0,1.2,2.2 <(echo "$1") <(echo "$2") |
        awk '$3 - $2 > 0 {printf "    %-16s %6.2f s\n", $1, ($3 - $2) / 100}'
}

broker_pid=
cleanup() {
    [ -n "$broker_pid" ] && kill -TERM "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$dir/data"
    return 0
}
trap cleanup EXIT

start_broker() {
    "$floe" serve --data-dir "$dir/data" --kafka-addr "$broker" --admin-addr "$admin" \
        --registry-addr "127.0.0.1:$registry_port" >>"$dir/broker.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 100); do
        curl -sf "http://$admin/health" >/dev/null && return
        sleep 0.2
    done
    echo "broker did not become healthy" >&2
    tail -20 "$dir/broker.log" >&2
    exit 1
}

# Runs floe-load and reports the CPU seconds it and the broker used.
measure() {
    local b0 b1
    b0=$(cpu_ticks "$broker_pid")
    printf '$ floe-load %s\n' "$*"
    load_line
    /usr/bin/time -f "  floe-load cpu: %U s user, %S s sys, %e s wall" "$load" "$@" 2>&1 |
        grep -v '^  \(produce\|consume\):'
    b1=$(cpu_ticks "$broker_pid")
    printf '  broker cpu: %s s\n' "$(secs $((b1 - b0)))"
}

status() { curl -sf "http://$admin/v1/iceberg/status?topic=$1"; }
# The shard's high watermark of every partition of $1, {"0": hw, ...}.
high_watermarks() {
    curl -sf "http://$admin/v1/tier/status?topic=$1" |
        jq -c '[.partitions[] | {key: (.partition | tostring), value: .high_watermark}] | from_entries'
}
# The next offset of every partition committed to table floe.$1, from its
# current snapshot's summary (floe.next-offset.<partition>), {"0": n, ...}:
# what a reader of the table sees. (Not the status' projected_offset: before
# a run's first commit it reports the offsets read, not the ones committed.)
table_offsets() {
    local meta=$dir/data/bucket/iceberg/floe/$1/metadata v
    v=$(cat "$meta/version-hint.text" 2>/dev/null) || { echo '{}'; return; }
    jq -c '.["current-snapshot-id"] as $id
        | ((.snapshots // []) | map(select(.["snapshot-id"] == $id)) | .[0].summary // {})
        | with_entries(select(.key | startswith("floe.next-offset."))
            | {key: (.key | ltrimstr("floe.next-offset.")), value: (.value | tonumber)})' \
        "$meta/v$v.metadata.json"
}
# True when the table of $1 holds every partition up to the shard's high
# watermark.
projected() {
    local hw
    hw=$(high_watermarks "$1")
    table_offsets "$1" | jq -e --argjson hw "$hw" \
        '. as $t | ($hw | length) > 0 and all($hw | to_entries[]; ($t[.key] // 0) >= .value)' \
        >/dev/null
}

produce_args=(--record-size 1024 --acks all --connections 4 --in-flight 4 --batch-bytes 262144)

echo "binaries: $bin/floe built $(date -u -r "$bin/floe" +%FT%TZ), floe-load built $(date -u -r "$bin/floe-load" +%FT%TZ)"
echo "floe $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- broker iceberg-sink || echo ' (broker/iceberg-sink modified in the working tree)'), $(nproc) cores, $(date -u +%FT%TZ)"
rm -rf "$dir/data" "$dir/broker.log"
start_broker
echo "broker: floe serve --data-dir $dir/data --kafka-addr $broker --admin-addr $admin --registry-addr 127.0.0.1:$registry_port"

if [[ $steps == *" 1 "* ]]; then
say "1. acks=all produce, 1 KiB, $partitions partitions, $duration: projected (key_value, target lag 1 s) vs plain, alternating"
# Each run starts from the same state: the previous run's topic is deleted
# (after its projection caught up), so its pages leave the page cache; and
# the order alternates (plain first in odd pairs, projected first in even
# ones), and every run starts with no dirty pages and (as root) an empty
# page cache. Before, the projected run always came second, into a page
# cache still holding the plain run's ~10 GB, and paid for its writeback and
# reclaim: 0.49x on a quiet box with that order vs 0.95x with a fresh broker
# per run.
one_run() {
    local kind=$1 i=$2 configs=
    [ "$kind" = proj ] && configs="--config iceberg.mode=key_value --config iceberg.target.lag.ms=1000"
    run "$floe topic create $kind$i --partitions $partitions --broker $broker $configs"
    measure produce --broker "$broker" --topic "$kind$i" --partitions "$partitions" \
        --duration "$duration" "${produce_args[@]}"
    if [ "$kind" = proj ]; then
        local b0 t0
        b0=$(cpu_ticks "$broker_pid")
        t0=$(date +%s.%N)
        until projected "proj$i"; do sleep 0.2; done
        printf '  projection caught up %.1f s after the produce ended, broker cpu %s s\n' \
            "$(echo "$(date +%s.%N) - $t0" | bc -l)" "$(secs $(($(cpu_ticks "$broker_pid") - b0)))"
    fi
    run "$floe topic delete $kind$i --broker $broker"
    settle
}
settle
for i in $(seq "$runs"); do
    if [ $((i % 2)) -eq 1 ]; then
        one_run plain "$i"
        one_run proj "$i"
    else
        one_run proj "$i"
        one_run plain "$i"
    fi
done

fi

if [[ $steps == *" 1b "* ]]; then
say "1b. the same below saturation: $rate_high MB/s for $duration, plain vs projected (achieved rate and request latency)"
for kind in plain proj; do
    configs=
    [ "$kind" = proj ] && configs="--config iceberg.mode=key_value --config iceberg.target.lag.ms=1000"
    run "$floe topic create ${kind}r --partitions $partitions --broker $broker $configs"
    measure produce --broker "$broker" --topic "${kind}r" --partitions "$partitions" \
        --rate "$rate_high" --duration "$duration" "${produce_args[@]}"
done
until projected projr; do sleep 0.2; done
run "$floe topic delete plainr --broker $broker; $floe topic delete projr --broker $broker"

fi

if [[ $steps == *" 2 "* ]]; then
say "2. commit lag: $lag_rate MB/s for $lag_duration to a projected topic (key_value, target lag 1 s), status sampled every 0.2 s"
run "$floe topic create lag --partitions $partitions --broker $broker --config iceberg.mode=key_value --config iceberg.target.lag.ms=1000"
samples=$dir/lag-samples.jsonl
: >"$samples"
# Each sample: the time, the shard's high watermarks, the projector's status
# of every partition and the offsets committed to the table.
(
    while :; do
        t=$(date +%s.%N)
        hw=$(high_watermarks lag) || hw=null
        st=$(status lag | jq -c '.topics[0].partitions') || st=null
        tb=$(table_offsets lag) || tb=null
        echo "{\"t\": $t, \"hw\": $hw, \"status\": $st, \"table\": $tb}" >>"$samples"
        sleep 0.2
    done
) &
sampler=$!
measure produce --broker "$broker" --topic lag --partitions "$partitions" --rate "$lag_rate" \
    --duration "$lag_duration" "${produce_args[@]}"
until projected lag; do sleep 0.2; done
sleep 1
kill "$sampler"
wait "$sampler" 2>/dev/null || true
echo "# $(wc -l <"$samples") samples in $samples"
python3 - "$samples" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r["hw"] and r["status"] and r["table"] is not None]
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, -(-len(xs) * p // 100) - 1))] if xs else float("nan")
# (a) the projector's own lag_ms of every partition in every sample taken
# while records were being produced (hw moved since the previous sample).
lag_ms = []
for prev, cur in zip(rows, rows[1:]):
    if cur["hw"] != prev["hw"]:
        lag_ms += [p["lag_ms"] for p in cur["status"]]
# (b) per offset: the first sample at which the shard's high watermark was
# past it (produced and acknowledged) to the first sample at which the
# table's current snapshot had it (its next offset past it), per partition.
produced, committed = {}, {}
for r in rows:
    for p, hw in r["hw"].items():
        produced.setdefault(p, []).append((r["t"], hw))
    for p in r["hw"]:
        committed.setdefault(p, []).append((r["t"], r["table"].get(p, 0)))
delays = []
for p, seen in produced.items():
    done = committed.get(p, [])
    j = 0
    last = 0
    for t, hw in seen:
        if hw <= last:
            continue
        # the offsets last..hw-1 became visible at t (at most 0.2 s late)
        while j < len(done) and done[j][1] < hw:
            j += 1
        if j == len(done):
            break
        delays += [done[j][0] - t] * (hw - last)
        last = hw
print(f"  (a) projector lag_ms over {len(lag_ms)} partition samples during the produce: "
      f"p50 {pct(lag_ms, 50)} ms, p99 {pct(lag_ms, 99)} ms, max {max(lag_ms) if lag_ms else 'nan'} ms")
print(f"  (b) acknowledged -> in the table's current snapshot, per record ({len(delays)} records, 0.2 s sampling): "
      f"p50 {pct(delays, 50):.2f} s, p99 {pct(delays, 99):.2f} s, max {max(delays):.2f} s")
EOF
run "$floe iceberg status --admin $admin lag"
run "$floe topic delete lag --broker $broker"

fi

# Writes a backlog of $backlog_mb MB with the projection off, then turns it
# on with $2 (extra configs) and times the catch-up.
backlog() {
    local topic=$1 configs=$2
    shift 2
    local rate=200
    local secs_=$((backlog_mb / rate))
    measure produce --broker "$broker" --topic "$topic" --partitions "$partitions" \
        --rate "$rate" --duration "${secs_}s" "${produce_args[@]}" "$@"
    sleep 2
    local b0 t0 t1 b1 th0 th1 bytes
    th0=$(thread_ticks)
    b0=$(cpu_ticks "$broker_pid")
    run "$floe topic alter $topic --broker $broker $configs"
    t0=$(date +%s.%N)
    echo "# then every 0.2 s until the table's current snapshot holds every partition up to its high watermark (floe.next-offset.<p> in <warehouse>/floe/$topic/metadata/v<version-hint>.metadata.json vs GET /v1/tier/status?topic=$topic)"
    until projected "$topic"; do sleep 0.2; done
    t1=$(date +%s.%N)
    b1=$(cpu_ticks "$broker_pid")
    th1=$(thread_ticks)
    bytes=$(curl -sf "http://$admin/v1/tier/status?topic=$topic" |
        jq '[.partitions[].high_watermark] | add * 1024')
    local wall cpu
    wall=$(echo "$t1 - $t0" | bc -l)
    cpu=$(secs $((b1 - b0)))
    printf '  projected %.1f MB of values in %.2f s: %.1f MB/s; broker cpu %s s: %.1f MB/s per core\n' \
        "$(echo "$bytes / 1000000" | bc -l)" "$wall" "$(echo "$bytes / $wall / 1000000" | bc -l)" \
        "$cpu" "$(echo "$bytes / $cpu / 1000000" | bc -l)"
    echo "  broker cpu by thread name during the catch-up (threads alive at both ends):"
    thread_delta "$th0" "$th1"
    printf '    %-16s %6.2f s\n' "(exited threads)" "$(echo "$cpu - $(thread_delta "$th0" "$th1" |
        awk '{s += $2} END {print s + 0}')" | bc -l)"
    run "$floe iceberg status --admin $admin $topic"
}

if [[ $steps == *" 3 "* ]]; then
say "3a. projection throughput: a $backlog_mb MB backlog (1 KiB records, $partitions partitions), then iceberg.mode=key_value"
run "$floe topic create bk --partitions $partitions --broker $broker"
backlog bk "--config iceberg.mode=key_value --config iceberg.target.lag.ms=1000"
run "$floe topic delete bk --broker $broker"

say "3b. the same with 1 KiB Avro values, iceberg.mode=value_schema_id_prefix"
run "$floe topic create bkavro --partitions $partitions --broker $broker"
printf '$ floe-load avro-schema | jq -Rs {schema: .} | curl -X POST %s/subjects/bkavro-value/versions\n' "$registry"
id=$("$load" avro-schema | jq -Rs '{schema: .}' |
    curl -sf -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
        --data-binary @- "$registry/subjects/bkavro-value/versions" | jq .id)
echo "  schema id $id"
backlog bkavro "--config iceberg.mode=value_schema_id_prefix --config iceberg.target.lag.ms=1000" \
    --avro-schema-id "$id"
run "$floe topic delete bkavro --broker $broker"

fi

say "broker log: warnings and errors"
grep -E 'WARN|ERROR' "$dir/broker.log" | tail -20 || echo "  none"
