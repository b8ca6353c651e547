# Shared by benches/measure.sh, tier.sh and iceberg.sh (sourced after they set
# $bin, the build's binaries, and $dir, their work directory).

# Copies of the binaries: other builds may replace target/release meanwhile.
mkdir -p "$dir/bin"
cp "$bin/floe" "$bin/floe-load" "$dir/bin/"
floe=$dir/bin/floe
load=$dir/bin/floe-load

say() { printf '\n### %s\n' "$*"; }
# Percent of CPU time idle over the next 2 s (other sessions share the box).
idle_pct() {
    local a b
    read -r -a a </proc/stat
    sleep 2
    read -r -a b </proc/stat
    local total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    echo $((100 * (b[4] + b[5] - a[4] - a[5]) / total))
}
load_line() {
    printf '# idle %s%% in the 2 s before; load average %s\n' "$(idle_pct)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)"
}
# Prints a command line (a string, pipes included) and the load, then runs it.
run() {
    printf '$ %s\n' "$1"
    load_line
    eval "$1"
}
# User and system CPU ticks (1/100 s) of a process, as "user system".
cpu_ticks_split() { awk '{print $14, $15}' "/proc/$1/stat"; }
# User + system CPU ticks of a process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Ticks as seconds.
secs() { echo "scale=2; $1 / 100" | bc; }

# Writes back every dirty page and, when allowed (root), empties the page
# cache, so no run pays for the writeback or reclaim of the one before (on
# this VM that moved produce by up to 2x: benches/RESULTS.md, Iceberg run 5).
settle() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then
        echo 1 >/proc/sys/vm/drop_caches
        echo "# synced and dropped the page cache"
    else
        echo "# synced (not root: the page cache is not dropped)"
    fi
    sleep 2
}
