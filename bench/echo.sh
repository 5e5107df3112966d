#!/usr/bin/env bash
# Side-by-side echo benchmark: `netkit serve echo` in reactor mode (1 worker), tokio (current-thread
# runtime, tokio's echo example), Python's socketserver.ThreadingTCPServer, asyncio
# and uvloop.
#
# The server runs pinned to CPU 0 (taskset -c 0), the load generator
# (`netkit bench`) to CPU 1. Loads: ping-pong 64 B with 1, 50 and 1000 connections;
# streaming 16 KiB (pipelined, 16 in flight per connection) with 1 and 50
# connections. ROUNDS interleaved rounds (every server for one load, then the next
# load, then the next round); the table shows medians. For each run: messages/s
# (from the generator's JSON), server CPU per message, user and system separately
# (from /proc/PID/stat, sampled when the warmup ends and when the run ends), and the
# server's peak RSS (VmHWM). Then the 10 000 idle connections check: the server's
# RSS with 10 000 open, silent connections.
#
# usage: bench/echo.sh            (env: ROUNDS=3 DURATION=5s WARMUP=1s SERVERS="..."
#                                  LOADS="..." NETKIT=path/to/netkit-with-bench
#                                  IDLE=10000 OUT=target/bench-echo)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
IDLE=${IDLE:-10000}
OUT=${OUT:-${CARGO_TARGET_DIR:-$root/target}/bench-echo}
# tokio64k: the same tokio server with a 64 KiB buffer (netkit's read size).
# netkit-uring: netkit serve echo with the io_uring backend (Linux).
SERVERS=${SERVERS:-"netkit netkit-uring tokio tokio64k threading asyncio uvloop"}
# name:connections:size:pipeline
LOADS=${LOADS:-"pp64x1:1:64:1 pp64x50:50:64:1 pp64x1000:1000:64:1 st16kx1:1:16384:16 st16kx50:50:16384:16"}
NETKIT_TARGET=${NETKIT_TARGET:-${CARGO_TARGET_DIR:-$root/target}}
TOKIO_TARGET=${TOKIO_TARGET:-${CARGO_TARGET_DIR:-$root/target}/tokio-echo}

ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"

echo "building..." >&2
(cd "$root/bench/peers/tokio-echo" && CARGO_TARGET_DIR=$TOKIO_TARGET cargo build -q --release)
if [[ -z ${NETKIT:-} ]]; then
    (cd "$root" && CARGO_TARGET_DIR=$NETKIT_TARGET cargo build -q --release -p netkit-cli)
    NETKIT=$NETKIT_TARGET/release/netkit
fi
"$NETKIT" bench --help >/dev/null || { echo "echo.sh: $NETKIT has no working 'bench'" >&2; exit 1; }

server_cmd() {
    case $1 in
        netkit) echo "$NETKIT serve echo --workers 1 --listen 127.0.0.1:0" ;;
        netkit-uring) echo "$NETKIT serve echo --workers 1 --backend uring --listen 127.0.0.1:0" ;;
        tokio) echo "$TOKIO_TARGET/release/tokio-echo 127.0.0.1:0" ;;
        tokio64k) echo "$TOKIO_TARGET/release/tokio-echo 127.0.0.1:0 65536" ;;
        threading | asyncio | uvloop) echo "python3 $here/echo_servers.py $1 127.0.0.1:0" ;;
        *) echo "echo.sh: unknown server $1" >&2; exit 2 ;;
    esac
}

# Starts server $1 on CPU 0; sets SPID and SADDR.
start_server() {
    local log=$OUT/server.log
    : >"$log"
    # shellcheck disable=SC2046
    taskset -c 0 $(server_cmd "$1") 2>"$log" &
    SPID=$!
    for _ in $(seq 1 500); do
        if SADDR=$(grep -m1 -o 'listening on .*' "$log" 2>/dev/null); then
            SADDR=${SADDR#listening on }
            return 0
        fi
        sleep 0.01
    done
    echo "echo.sh: server $1 did not start" >&2
    cat "$log" >&2
    exit 1
}

stop_server() {
    kill -INT "$SPID" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.01
    done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
}

# utime stime (clock ticks) of process $1, threads included.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat"
}

hwm_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

seconds() { python3 -c "import sys; s=sys.argv[1]; print(float(s[:-2])/1000 if s.endswith('ms') else float(s.rstrip('s')))" "$1"; }

runs=$OUT/runs.jsonl
: >"$runs"
warm_s=$(seconds "$WARMUP")
for round in $(seq 1 "$ROUNDS"); do
    for load in $LOADS; do
        IFS=: read -r lname conns size pipeline <<<"$load"
        for srv in $SERVERS; do
            start_server "$srv"
            taskset -c 1 "$NETKIT" bench "$SADDR" --connections "$conns" --size "$size" \
                --pipeline "$pipeline" --duration "$DURATION" --warmup "$WARMUP" --json \
                >"$OUT/bench.json" 2>"$OUT/bench.err" &
            bpid=$!
            sleep "$warm_s"
            read -r u0 s0 < <(cpu_ticks "$SPID")
            wait "$bpid" || { echo "echo.sh: bench against $srv ($lname) failed:" >&2; cat "$OUT/bench.err" >&2; }
            read -r u1 s1 < <(cpu_ticks "$SPID")
            hwm=$(hwm_kib "$SPID")
            stop_server
            python3 - "$OUT/bench.json" "$srv" "$lname" "$round" $((u1 - u0)) $((s1 - s0)) "$hwm" "$(getconf CLK_TCK)" >>"$runs" <<'EOF'
import json, sys
path, srv, load, rnd, du, ds, hwm, tck = sys.argv[1:]
try:
    b = json.load(open(path))
except Exception:
    b = {"messages": 0, "msgs_per_s": 0, "errors": -1}
msgs = max(b.get("messages") or 0, 1)
print(json.dumps({
    "server": srv, "load": load, "round": int(rnd),
    "msgs_per_s": b.get("msgs_per_s"), "messages": b.get("messages"),
    "errors": b.get("errors"),
    "user_us_per_msg": int(du) / int(tck) / msgs * 1e6,
    "sys_us_per_msg": int(ds) / int(tck) / msgs * 1e6,
    "hwm_kib": int(hwm), "p50_us": b.get("p50_us"), "p99_us": b.get("p99_us"),
}))
EOF
            tail -n1 "$runs" >&2
        done
    done
done

# 10 000 idle connections: the server's resident size with them all open.
idle=$OUT/idle.jsonl
: >"$idle"
for srv in $SERVERS; do
    start_server "$srv"
    base=$(rss_kib "$SPID")
    python3 - "$SADDR" "$IDLE" "$SPID" "$base" "$srv" >>"$idle" <<'EOF'
import json, socket, sys, time
addr, n, pid, base, srv = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
host, _, port = addr.rpartition(":")
socks = []
for i in range(n):
    s = socket.create_connection((host, int(port)))
    socks.append(s)
# Every connection served: one echo round trip on a sample of them, last one included.
for s in socks[:: max(1, n // 100)] + socks[-1:]:
    s.sendall(b"x")
    assert s.recv(1) == b"x"
time.sleep(0.5)
rss = int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")][0].split()[1])
print(json.dumps({"server": srv, "idle_connections": n, "rss_kib": rss, "rss_before_kib": base}))
for s in socks:
    s.close()
EOF
    tail -n1 "$idle" >&2
    stop_server
done

python3 - "$runs" "$idle" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
idle = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
servers, loads = [], []
for r in runs:
    if r["server"] not in servers: servers.append(r["server"])
    if r["load"] not in loads: loads.append(r["load"])
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("| load | server | msgs/s | user µs/msg | sys µs/msg | total µs/msg | peak RSS MiB | p99 µs | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for load in loads:
    for srv in servers:
        rs = [r for r in runs if r["server"] == srv and r["load"] == load]
        if not rs: continue
        u = med([r["user_us_per_msg"] for r in rs]); s = med([r["sys_us_per_msg"] for r in rs])
        print(f"| {load} | {srv} | {med([r['msgs_per_s'] or 0 for r in rs]):,.0f} | {u:.2f} | {s:.2f} | "
              f"{med([r['user_us_per_msg'] + r['sys_us_per_msg'] for r in rs]):.2f} | "
              f"{med([r['hwm_kib'] for r in rs]) / 1024:.1f} | {med([r['p99_us'] or 0 for r in rs]):.0f} | "
              f"{sum(max(r['errors'] or 0, 0) for r in rs)} |")
print()
print("| server | idle connections | RSS MiB (before → with them open) |")
print("|---|---:|---:|")
for r in idle:
    print(f"| {r['server']} | {r['idle_connections']} | {r['rss_before_kib']/1024:.1f} → {r['rss_kib']/1024:.1f} |")
EOF
