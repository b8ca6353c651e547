#!/usr/bin/env bash
# Runs the measurements recorded in benches/RESULTS.md and prints every
# command before its output, with the load average and the CPU seconds the
# broker and floe-load used.
#
#   cargo build --release -p broker -p benches
#   benches/measure.sh [limits|broker|all]        # default: all
#
# BROKER_ENV="VAR=value ..." is put in the broker's environment (e.g. the
# glibc malloc tunables tried in RESULTS.md).
#
# Needs fio and iperf3 for the machine limits (apt-get install fio iperf3).
# Writes under $BENCH_DIR (default /tmp/floe-bench), a few GB at a time.
set -euo pipefail

what=${1:-all}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release}
dir=${BENCH_DIR:-/tmp/floe-bench}
port=${PORT:-19092}
admin_port=${ADMIN_PORT:-19644}
duration=${DURATION:-20s}
mkdir -p "$dir"

# shellcheck source=benches/lib.sh
source "$root/benches/lib.sh"
broker="127.0.0.1:$port"

limits() {
    say "sequential O_DIRECT write"
    run "dd if=/dev/zero of=$dir/dd-direct bs=1M count=2048 oflag=direct 2>&1 | tail -1"
    rm -f "$dir/dd-direct"
    run "fio --name=seq-direct --filename=$dir/fio-seq --rw=write --bs=1M --size=2G \
--direct=1 --ioengine=libaio --iodepth=8 | grep -E '^ +write:'"
    rm -f "$dir/fio-seq"

    say "write + fdatasync after every write, appending (buffered, as the broker writes)"
    for bs in 4k 256k 1M; do
        rm -f "$dir/fio-append"
        run "fio --name=append-$bs --filename=$dir/fio-append --rw=write --bs=$bs \
--size=2G --fdatasync=1 --ioengine=sync --file_append=1 --runtime=10 --time_based | grep -E '^ +write:|^ +sync \(usec\)'"
    done
    rm -f "$dir/fio-append"

    say "write + fdatasync after every write, overwriting a laid-out file (no size change)"
    for bs in 4k 64k 256k 1M; do
        run "fio --name=fdatasync-$bs --filename=$dir/fio-sync --rw=write --bs=$bs \
--size=1G --fdatasync=1 --ioengine=sync --runtime=10 --time_based | grep -E '^ +write:|^ +sync \(usec\)'"
        rm -f "$dir/fio-sync"
    done
    run "dd if=/dev/zero of=$dir/dd-dsync bs=256k count=4000 oflag=dsync 2>&1 | tail -1"
    rm -f "$dir/dd-dsync"

    say "loopback TCP"
    iperf3 -s -1 -p 15201 >/dev/null 2>&1 &
    sleep 1
    run "iperf3 -c 127.0.0.1 -p 15201 -t 10 | grep -E 'sender|receiver'"
    iperf3 -s -1 -p 15201 >/dev/null 2>&1 &
    sleep 1
    run "iperf3 -c 127.0.0.1 -p 15201 -t 10 -P 2 | grep -E 'SUM.*(sender|receiver)'"
}

broker_pid=
start_broker() {
    rm -rf "$dir/data"
    # shellcheck disable=SC2086 # BROKER_ENV is a list of VAR=value words
    env ${BROKER_ENV:-} "$floe" serve --data-dir "$dir/data" --kafka-addr "$broker" \
        --admin-addr "127.0.0.1:$admin_port" "$@" >"$dir/broker.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$admin_port/health" >/dev/null && return
        sleep 0.2
    done
    echo "broker did not become healthy" >&2
    cat "$dir/broker.log" >&2
    exit 1
}
stop_broker() {
    kill -TERM "$broker_pid"
    wait "$broker_pid" || true
    rm -rf "$dir/data" # up to ~20 GB per scenario
}

# Runs floe-load and reports the CPU seconds it and the broker used.
measure() {
    read -r user0 sys0 < <(cpu_ticks_split "$broker_pid")
    printf '$ floe-load %s\n' "$*"
    load_line
    /usr/bin/time -f "  floe-load cpu: %U s user, %S s sys, %e s wall" "$load" "$@" 2>&1 |
        grep -v '^  \(produce\|consume\):'
    read -r user1 sys1 < <(cpu_ticks_split "$broker_pid")
    printf '  broker cpu: %s s user, %s s sys\n' \
        "$(echo "scale=2; ($user1 - $user0) / 100" | bc)" "$(echo "scale=2; ($sys1 - $sys0) / 100" | bc)"
}

broker_scenarios() {
    start_broker
    say "acks=all produce, 1 KiB records, 1 partition"
    measure produce --broker "$broker" --topic p1 --partitions 1 --record-size 1024 \
        --acks all --duration "$duration" --connections 4 --in-flight 4 --batch-bytes 262144
    say "consume from the local tail (the 1-partition topic, just written)"
    measure consume --broker "$broker" --topic p1 --from earliest --duration 60s
    stop_broker

    start_broker
    say "acks=all produce, 1 KiB records, 8 partitions"
    measure produce --broker "$broker" --topic p8 --partitions 8 --record-size 1024 \
        --acks all --duration "$duration" --connections 8 --in-flight 4 --batch-bytes 262144
    say "consume from the local tail (the 8-partition topic, just written)"
    measure consume --broker "$broker" --topic p8 --from earliest --duration 60s \
        --fetch-connections 2
    stop_broker

    start_broker
    say "end to end at a fixed 20 MB/s, 1 partition, acks=all"
    measure e2e --broker "$broker" --topic e2e --partitions 1 --rate 20 \
        --duration "$duration" --connections 1 --in-flight 5 --linger-ms 1
    stop_broker
}

echo "broker environment: ${BROKER_ENV:-(default)}"
echo "binaries: $bin/floe built $(date -u -r "$bin/floe" +%FT%TZ), floe-load built $(date -u -r "$bin/floe-load" +%FT%TZ)"
echo "floe $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- broker protocol || echo ' (broker/protocol modified)'), $(nproc) cores, $(date -u +%FT%TZ)"
case $what in
limits) limits ;;
broker) broker_scenarios ;;
all)
    limits
    broker_scenarios
    ;;
*)
    echo "usage: $0 [limits|broker|all]" >&2
    exit 2
    ;;
esac
