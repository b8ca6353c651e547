#!/usr/bin/env bash
# Tiered-storage (shadow index) measurements recorded in benches/RESULTS.md,
# section "Tiered storage (shadow index)": upload throughput of a backlog,
# the S3 server's own parallel ranged-GET rate, cold and warm remote reads,
# and acks=all produce while uploads and remote reads (full speed, then
# paced at 200 MB/s) run vs idle. Before each produce run the page cache is
# synced and, as root, dropped.
#
#   cargo build --release -p broker -p benches
#   benches/tier.sh                      # CACHE_DIRECT_IO=false: [tier] cache-direct-io = false
#
# Every command is printed before its output with the CPU idle share in the
# 2 s before it and the load average; each measurement reports the CPU
# seconds the broker, the S3 server (moto) and floe-load used, and how the
# broker's floe_tier_* counters moved.
#
# Needs moto in the repository's venv:
#   .venv/bin/pip install 'moto[s3]==5.2.5' flask flask-cors boto3
# Writes under $BENCH_DIR (default /tmp/floe-tier-bench): about 3 GB of
# backlog plus up to ~6 GB uploaded by one produce run (moto spools objects
# to temporary files; each busy run's topic is deleted once uploaded);
# everything is deleted at exit. Runs ~5 minutes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release}
dir=${BENCH_DIR:-/tmp/floe-tier-bench}
port=${PORT:-19292}
admin_port=${ADMIN_PORT:-19844}
registry_port=${REGISTRY_PORT:-19281}
s3_port=${S3_PORT:-15920}
moto_server=${MOTO_SERVER:-$root/.venv/bin/moto_server}
duration=${DURATION:-10s}
bucket=floe-bench
mkdir -p "$dir"

# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
broker="127.0.0.1:$port"
admin="127.0.0.1:$admin_port"
endpoint="http://127.0.0.1:$s3_port"

export AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \
    AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true

# One counter of the broker's /metrics (0 when absent; seconds to 0.01 s).
metric() {
    local format="%.0f\n"
    [[ $1 == *_seconds_total ]] && format="%.2f\n"
    curl -sf "http://$admin/metrics" | awk -v m="$1" -v f="$format" '$1 == m {v = $2} END {printf f, v + 0}'
}
tier_counters="floe_tier_upload_bytes_total floe_tier_remote_fetched_bytes_total \
floe_tier_remote_read_bytes_total floe_tier_cache_hits_total floe_tier_cache_misses_total \
floe_tier_remote_read_wait_seconds_total"
snapshot() {
    local m out=""
    for m in $tier_counters; do out+="$(metric "$m") "; done
    echo "$out"
}
# Prints how the floe_tier_* counters moved between two snapshots.
print_delta() {
    local -a a b names
    read -r -a a <<<"$1"
    read -r -a b <<<"$2"
    read -r -a names <<<"$tier_counters"
    local i line="  broker counters:"
    for i in "${!names[@]}"; do
        line+=" ${names[i]#floe_tier_}+$(echo "${b[i]} - ${a[i]}" | bc)"
    done
    echo "$line"
}

moto_pid=
broker_pid=
cleanup() {
    [ -n "$broker_pid" ] && kill -TERM "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    [ -n "$moto_pid" ] && kill -TERM "$moto_pid" 2>/dev/null && wait "$moto_pid" 2>/dev/null
    rm -rf "$dir/data" "$dir/cache"
    return 0
}
trap cleanup EXIT

start_moto() {
    "$moto_server" -H 127.0.0.1 -p "$s3_port" >"$dir/moto.log" 2>&1 &
    moto_pid=$!
    for _ in $(seq 50); do
        curl -sf "$endpoint/" >/dev/null && break
        sleep 0.2
    done
    curl -sf -X PUT "$endpoint/$bucket" >/dev/null
}

start_broker() {
    cat >"$dir/floe.toml" <<EOF
[tier]
chunk-bytes = 16777216
upload-interval-ms = 200
upload-concurrency = 4
cache-dir = "$dir/cache"
cache-direct-io = ${CACHE_DIRECT_IO:-true}
EOF
    "$floe" serve --config "$dir/floe.toml" --data-dir "$dir/data" --kafka-addr "$broker" \
        --admin-addr "$admin" --registry-addr "127.0.0.1:$registry_port" \
        --object-store "s3://$bucket/floe" --tier-idle-roll-ms 1000 \
        --tier-cache-bytes 4294967296 >>"$dir/broker.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 100); do
        curl -sf "http://$admin/health" >/dev/null && return
        sleep 0.2
    done
    echo "broker did not become healthy" >&2
    tail -20 "$dir/broker.log" >&2
    exit 1
}
stop_broker() {
    kill -TERM "$broker_pid"
    wait "$broker_pid" || true
    broker_pid=
}

# Runs floe-load and reports the CPU seconds it, the broker and moto used
# and the tier counters' movement. $BACKGROUND, if set, is a command line
# started in the background right before floe-load (after the load line).
BACKGROUND=
background_pid=
measure() {
    local b0 m0 b1 m1 c0 c1
    b0=$(cpu_ticks "$broker_pid")
    m0=$(cpu_ticks "$moto_pid")
    c0=$(snapshot)
    [ -n "$BACKGROUND" ] && printf '$ (%s) &\n' "$BACKGROUND"
    printf '$ floe-load %s\n' "$*"
    load_line
    if [ -n "$BACKGROUND" ]; then
        eval "($BACKGROUND) >$dir/background.log 2>&1 &"
        background_pid=$!
    fi
    /usr/bin/time -f "  floe-load cpu: %U s user, %S s sys, %e s wall" "$load" "$@" 2>&1 |
        grep -v '^  \(produce\|consume\):'
    b1=$(cpu_ticks "$broker_pid")
    m1=$(cpu_ticks "$moto_pid")
    c1=$(snapshot)
    printf '  broker cpu: %s s; moto cpu: %s s\n' "$(secs $((b1 - b0)))" "$(secs $((m1 - m0)))"
    print_delta "$c0" "$c1"
}

# True when every partition of $1 has everything up to its high watermark
# in the object store.
uploaded() {
    "$floe" tier status --admin "$admin" --json "$1" |
        jq -e 'all(.partitions[]; .upload_lag == 0 and .remote_end == .high_watermark)' >/dev/null
}

# Turns remote storage on for a topic holding a local backlog and times the
# upload of all of it.
upload_backlog() {
    local topic=$1 b0 m0 c0 t0 t1 b1 m1 c1 u
    b0=$(cpu_ticks "$broker_pid")
    m0=$(cpu_ticks "$moto_pid")
    c0=$(snapshot)
    run "$floe topic alter $topic --broker $broker --config remote.storage.enable=true"
    t0=$(date +%s.%N)
    echo "# then: floe tier status --admin $admin --json $topic every 0.1 s until every partition's upload_lag is 0"
    until uploaded "$topic"; do sleep 0.1; done
    t1=$(date +%s.%N)
    b1=$(cpu_ticks "$broker_pid")
    m1=$(cpu_ticks "$moto_pid")
    c1=$(snapshot)
    read -r u _ <<<"$c1"
    read -r u0 _ <<<"$c0"
    u=$((u - u0))
    printf '  uploaded %.1f MB in %.2f s: %.1f MB/s (floe_tier_upload_bytes_total)\n' \
        "$(echo "$u / 1000000" | bc -l)" "$(echo "$t1 - $t0" | bc -l)" \
        "$(echo "$u / ($t1 - $t0) / 1000000" | bc -l)"
    printf '  broker cpu: %s s; moto cpu: %s s\n' "$(secs $((b1 - b0)))" "$(secs $((m1 - m0)))"
    print_delta "$c0" "$c1"
    run "$floe tier status --admin $admin $topic | tail -n +3"
}

s3_get() {
    local m0 m1
    m0=$(cpu_ticks "$moto_pid")
    printf '$ floe-load %s\n' "$*"
    load_line
    /usr/bin/time -f "  floe-load cpu: %U s user, %S s sys, %e s wall" "$load" "$@" 2>&1
    m1=$(cpu_ticks "$moto_pid")
    printf '  moto cpu: %s s\n' "$(secs $((m1 - m0)))"
}

produce_args=(--record-size 1024 --acks all --duration "$duration" --connections 4
    --in-flight 4 --batch-bytes 262144)
topic_configs="--config segment.bytes=16777216 --config retention.bytes=-1"
tier_configs="$topic_configs --config local.retention.bytes=16777216"

echo "binaries: $bin/floe built $(date -u -r "$bin/floe" +%FT%TZ), floe-load built $(date -u -r "$bin/floe-load" +%FT%TZ)"
echo "floe $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- broker shadow-index protocol || echo ' (broker/shadow-index/protocol modified)'), $(nproc) cores, $(date -u +%FT%TZ)"
echo "moto $("$root/.venv/bin/python" -c 'import moto; print(moto.__version__)') on $endpoint"
rm -rf "$dir/data" "$dir/cache" "$dir/broker.log"
start_moto
start_broker
echo "broker: floe serve --config $dir/floe.toml --data-dir $dir/data --kafka-addr $broker --admin-addr $admin --registry-addr 127.0.0.1:$registry_port --object-store s3://$bucket/floe --tier-idle-roll-ms 1000 --tier-cache-bytes 4294967296"
echo "floe.toml:"
sed 's/^/  /' "$dir/floe.toml"

say "idle: acks=all produce, 1 KiB records, 1 partition, non-tiered topic (nothing else running)"
settle
run "$floe topic create plain1 --broker $broker $topic_configs"
measure produce --broker "$broker" --topic plain1 --partitions 1 "${produce_args[@]}"
run "$floe topic delete plain1 --broker $broker"

say "backlogs (setup): 2 GB in 4 partitions, 1 GB in 1 partition, remote storage still off"
run "$floe topic create cold4 --partitions 4 --broker $broker $tier_configs --config remote.storage.enable=false"
run "$floe topic create cold1 --partitions 1 --broker $broker $tier_configs --config remote.storage.enable=false"
measure produce --broker "$broker" --topic cold4 --partitions 4 --rate 200 --duration 10s \
    --connections 4 --in-flight 4 --batch-bytes 262144
measure produce --broker "$broker" --topic cold1 --partitions 1 --rate 100 --duration 10s \
    --connections 4 --in-flight 4 --batch-bytes 262144
sleep 2 # the active segments go idle and are rolled on the first tier pass

say "upload throughput: the 4-partition backlog (2 shards)"
upload_backlog cold4
say "upload throughput: the 1-partition backlog (1 shard)"
upload_backlog cold1

say "the S3 server's own parallel ranged GETs of 16 MiB over the same .log objects"
for p in 1 2 4; do
    s3_get s3-get --endpoint "$endpoint" --bucket "$bucket" --prefix floe/topics/cold4 \
        --parallel "$p" --chunk-bytes 16777216
done
s3_get s3-get --endpoint "$endpoint" --bucket "$bucket" --prefix floe/topics/cold1 \
    --parallel 2 --chunk-bytes 16777216

say "cold and warm remote reads (broker restarted with the chunk cache deleted)"
stop_broker
rm -rf "$dir/cache"
start_broker
run "$floe tier status --admin $admin | grep cold"
say "cold read, 4 partitions, fetch partition-max-bytes 1 MiB"
measure consume --broker "$broker" --topic cold4 --from earliest --duration 120s
say "warm read (same broker: every chunk in the cache), 4 partitions"
measure consume --broker "$broker" --topic cold4 --from earliest --duration 120s
say "cold read, 1 partition"
measure consume --broker "$broker" --topic cold1 --from earliest --duration 120s
say "warm read, 1 partition"
measure consume --broker "$broker" --topic cold1 --from earliest --duration 120s

stop_broker
rm -rf "$dir/cache"
start_broker
say "cold read, 4 partitions, fetch partition-max-bytes 16 MiB (restarted, cache deleted)"
measure consume --broker "$broker" --topic cold4 --from earliest --duration 120s \
    --partition-max-bytes 16777216
say "warm read, 4 partitions, partition-max-bytes 16 MiB"
measure consume --broker "$broker" --topic cold4 --from earliest --duration 120s \
    --partition-max-bytes 16777216

drain() {
    local topic=$1 b0 t0 t1
    b0=$(cpu_ticks "$broker_pid")
    t0=$(date +%s.%N)
    echo "# floe tier status --admin $admin --json $topic every 0.1 s until upload_lag is 0"
    for _ in $(seq 1200); do uploaded "$topic" && break; sleep 0.1; done
    t1=$(date +%s.%N)
    printf '  the rest uploaded in %.1f s after the produce ended, broker cpu %s s\n' \
        "$(echo "$t1 - $t0" | bc -l)" "$(secs $(($(cpu_ticks "$broker_pid") - b0)))"
    run "$floe tier status --admin $admin $topic | tail -n +3"
}

# After a produce with $BACKGROUND: whether the background reads outlasted
# it, and their summary lines.
background_report() {
    BACKGROUND=
    if kill -0 "$background_pid" 2>/dev/null; then
        echo "  (the background cold reads were still running when the produce ended)"
    else
        echo "  (the background cold reads ended BEFORE the produce did)"
    fi
    wait "$background_pid" || true
    grep -v '^  consume:' "$dir/background.log" | sed 's/^/  background: /'
}

say "busy (uploads): acks=all produce, 1 KiB, 1 partition, to a tiered topic whose segments upload as it runs"
run "$floe topic create hot1 --broker $broker $tier_configs --config remote.storage.enable=true"
settle
measure produce --broker "$broker" --topic hot1 --partitions 1 "${produce_args[@]}"
drain hot1
run "$floe topic delete hot1 --broker $broker"

say "busy (uploads + remote reads): the same to a fresh tiered topic while a cold read of cold4 then cold1 runs (broker restarted, cache deleted)"
stop_broker
rm -rf "$dir/cache"
start_broker
run "$floe topic create hot2 --broker $broker $tier_configs --config remote.storage.enable=true"
settle
BACKGROUND="$load consume --broker $broker --topic cold4 --from earliest --duration 120s; \
$load consume --broker $broker --topic cold1 --from earliest --duration 120s"
measure produce --broker "$broker" --topic hot2 --partitions 1 "${produce_args[@]}"
background_report
drain hot2
run "$floe topic delete hot2 --broker $broker"

# A consumer catching up on history usually reads no faster than it can
# process: the same with the cold read paced at 200 MB/s (the broker's
# tiering work at a steady rate rather than all the CPU it can get).
say "busy (uploads + a paced remote read): the same to a fresh tiered topic while a cold read of cold4 at 200 MB/s runs (broker restarted, cache deleted)"
stop_broker
rm -rf "$dir/cache"
start_broker
run "$floe topic create hot3 --broker $broker $tier_configs --config remote.storage.enable=true"
settle
BACKGROUND="$load consume --broker $broker --topic cold4 --from earliest --duration 11s --rate 200"
measure produce --broker "$broker" --topic hot3 --partitions 1 "${produce_args[@]}"
background_report
drain hot3
run "$floe topic delete hot3 --broker $broker"

say "idle again: acks=all produce, 1 KiB, 1 partition, non-tiered topic"
run "$floe topic create plain2 --broker $broker $topic_configs"
settle
measure produce --broker "$broker" --topic plain2 --partitions 1 "${produce_args[@]}"
