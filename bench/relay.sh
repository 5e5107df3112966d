#!/usr/bin/env bash
# `netkit relay` on threads against `netkit relay` on the reactor: `netkit bench`
# through the relay to `netkit serve echo`.
#
# The relay runs pinned to CPU 0 (taskset -c 0); the echo server (reactor, 1 worker)
# and the load generator to CPU 1. The thread path is a binary built before the
# relay moved to the reactor (THREADS=path, e.g. built from an older commit); the
# reactor path is this tree's. ROUNDS interleaved rounds of 64 B ping-pong with
# CONNS connections; the table shows medians: messages/s (the generator's JSON),
# the relay's CPU per message (utime + stime from /proc/PID/stat, sampled when the
# warmup ends and when the run ends), its threads and peak RSS.
#
# usage: THREADS=/tmp/netkit-old bench/relay.sh
#        (env: ROUNDS=3 DURATION=5s WARMUP=1s CONNS=100 SIZE=64 REACTOR=path OUT=dir)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-100}
SIZE=${SIZE:-64}
OUT=${OUT:-${CARGO_TARGET_DIR:-$root/target}/bench-relay}
: "${THREADS:?set THREADS to a netkit binary whose relay runs on threads}"

ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"
if [[ -z ${REACTOR:-} ]]; then
    (cd "$root" && cargo build -q --release -p netkit-cli)
    REACTOR=${CARGO_TARGET_DIR:-$root/target}/release/netkit
fi

# Starts `$2 ARGS...` on CPU $1, waits for its `listening on` line; sets PID and ADDR.
start() {
    local cpu=$1 log
    shift
    log=$OUT/$$.$RANDOM.log
    taskset -c "$cpu" "$@" 2>"$log" &
    PID=$!
    for _ in $(seq 1 500); do
        if ADDR=$(grep -m1 -o 'listening on .*' "$log" 2>/dev/null); then
            ADDR=${ADDR#listening on }
            return 0
        fi
        sleep 0.01
    done
    echo "relay.sh: $* did not start" >&2
    cat "$log" >&2
    exit 1
}

stop() {
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
status() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
seconds() { python3 -c "import sys; s=sys.argv[1]; print(float(s[:-2])/1000 if s.endswith('ms') else float(s.rstrip('s')))" "$1"; }

start 1 "$REACTOR" serve echo --mode reactor --workers 1 --listen 127.0.0.1:0
EPID=$PID
EADDR=$ADDR
trap 'stop $EPID' EXIT

runs=$OUT/runs.jsonl
: >"$runs"
warm_s=$(seconds "$WARMUP")
for round in $(seq 1 "$ROUNDS"); do
    for path in threads reactor; do
        bin=$THREADS
        [[ $path == reactor ]] && bin=$REACTOR
        start 0 "$bin" relay 127.0.0.1:0 "$EADDR"
        RPID=$PID
        taskset -c 1 "$REACTOR" bench "$ADDR" --connections "$CONNS" --size "$SIZE" \
            --duration "$DURATION" --warmup "$WARMUP" --json >"$OUT/bench.json" 2>"$OUT/bench.err" &
        bpid=$!
        sleep "$warm_s"
        t0=$(cpu_ticks "$RPID")
        sleep 0.5
        threads=$(status "$RPID" Threads)
        wait "$bpid" || { echo "relay.sh: bench through the $path relay failed:" >&2; cat "$OUT/bench.err" >&2; }
        t1=$(cpu_ticks "$RPID")
        hwm=$(status "$RPID" VmHWM)
        stop "$RPID"
        python3 - "$OUT/bench.json" "$path" "$round" $((t1 - t0)) "$(getconf CLK_TCK)" "$threads" "$hwm" >>"$runs" <<'EOF'
import json, sys
path, name, rnd, ticks, tck, threads, hwm = sys.argv[1:]
try:
    b = json.load(open(path))
except Exception:
    b = {"messages": 0, "msgs_per_s": 0, "errors": -1}
msgs = max(b.get("messages") or 0, 1)
print(json.dumps({
    "path": name, "round": int(rnd), "msgs_per_s": b.get("msgs_per_s"),
    "messages": b.get("messages"), "errors": b.get("errors"),
    "cpu_us_per_msg": int(ticks) / int(tck) / msgs * 1e6,
    "threads": int(threads), "hwm_kib": int(hwm),
    "p50_us": b.get("p50_us"), "p99_us": b.get("p99_us"),
}))
EOF
        tail -n1 "$runs" >&2
    done
done

python3 - "$runs" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("| relay | msgs/s | relay CPU µs/msg | threads | peak RSS MiB | p50 µs | p99 µs | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for path in ["threads", "reactor"]:
    rs = [r for r in runs if r["path"] == path]
    if not rs: continue
    print(f"| {path} | {med([r['msgs_per_s'] or 0 for r in rs]):,.0f} | "
          f"{med([r['cpu_us_per_msg'] for r in rs]):.2f} | {med([r['threads'] for r in rs]):.0f} | "
          f"{med([r['hwm_kib'] for r in rs]) / 1024:.1f} | {med([r['p50_us'] or 0 for r in rs]):.0f} | "
          f"{med([r['p99_us'] or 0 for r in rs]):.0f} | {sum(max(r['errors'] or 0, 0) for r in rs)} |")
EOF
