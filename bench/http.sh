#!/usr/bin/env bash
# Side-by-side static-file benchmark: `netkit serve http` (reactor, 1 worker), nginx
# (1 worker, sendfile on, an access log line per request as netkit writes) and `python3 -m http.server`, with wrk.
#
# The server runs pinned to CPU 0, wrk to CPU 1. Loads: a 1 KiB file with 50
# connections (requests/s), and a 100 MiB file with 4 connections (MB/s; wrk itself
# is the limit there, so the server's CPU time per MB is reported too). ROUNDS
# interleaved rounds; the table shows medians. Server CPU comes from /proc/PID/stat
# (utime + stime of the server and its children) over the measured run.
#
# usage: bench/http.sh     (env: ROUNDS=3 DURATION=5s SERVERS="netkit nginx python")
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
SERVERS=${SERVERS:-"netkit nginx python"}
TARGET=${CARGO_TARGET_DIR:-$root/target}
OUT=${OUT:-$TARGET/bench-http}
TICK=$(getconf CLK_TCK)

for tool in wrk nginx python3; do
    command -v "$tool" >/dev/null || { echo "http.sh: $tool is not installed" >&2; exit 1; }
done
(cd "$root" && cargo build -q --release -p netkit-cli)
NETKIT=$TARGET/release/netkit

rm -rf "$OUT" && mkdir -p "$OUT/www"
head -c 1024 /dev/urandom >"$OUT/www/1k.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$OUT/www/100m.bin"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nginx_conf() {
    cat >"$OUT/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log '$OUT/nginx-access.log';
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$1;
        root $OUT/www;
    }
}
EOF
}

# Starts server $1 on CPU 0; sets SPID and PORT; waits until it answers.
start() {
    PORT=$(port)
    case $1 in
        netkit) taskset -c 0 "$NETKIT" serve http --root "$OUT/www" --workers 1 \
                    --listen "127.0.0.1:$PORT" 2>"$OUT/netkit.log" &
                SPID=$! ;;
        nginx) nginx_conf "$PORT"
               taskset -c 0 nginx -c "$OUT/nginx.conf" -p "$OUT" 2>"$OUT/nginx.log" &
               SPID=$! ;;
        python) (cd "$OUT/www" && exec taskset -c 0 python3 -m http.server --bind 127.0.0.1 "$PORT" \
                    >"$OUT/python.log" 2>&1) &
                SPID=$! ;;
    esac
    for _ in $(seq 1 500); do
        curl -sf -o /dev/null "http://127.0.0.1:$PORT/1k.bin" && return 0
        sleep 0.02
    done
    echo "http.sh: $1 did not start" >&2
    exit 1
}

stop() {
    kill -TERM "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
}

# utime+stime ticks of $1 and its children (nginx's worker).
ticks() {
    local total=0 p
    for p in $1 $(pgrep -P "$1" || true); do
        total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")))
    done
    echo $total
}

# Runs wrk against server $1 for load $2 (small|large); prints "value cpu_per_unit".
run() {
    local conns file
    case $2 in
        small) conns=50 file=1k.bin ;;
        large) conns=4 file=100m.bin ;;
    esac
    local t0 t1
    t0=$(ticks "$SPID")
    taskset -c 1 wrk -t1 -c$conns -d"$DURATION" --latency "http://127.0.0.1:$PORT/$file" >"$OUT/wrk.txt"
    t1=$(ticks "$SPID")
    python3 - "$OUT/wrk.txt" "$2" "$((t1 - t0))" "$TICK" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
kind, ticks, hz = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", text)
scale = {"B": 1e-6, "KB": 1024 / 1e6, "MB": 1024**2 / 1e6, "GB": 1024**3 / 1e6}[m.group(2)]
mbs = float(m.group(1)) * scale
dur = float(re.search(r"requests in ([\d.]+)(\w+)", text).group(1))
cpu = ticks / hz
if kind == "small":
    print(f"{rps:.0f} {cpu / (rps * dur) * 1e6:.2f}")
else:
    print(f"{mbs:.0f} {cpu / (mbs * dur) * 1e3:.3f}")
PY
}

declare -A results
for round in $(seq 1 "$ROUNDS"); do
    for load in small large; do
        for s in $SERVERS; do
            start "$s"
            r=$(run "$s" "$load")
            stop
            results[$s.$load]+="$r;"
            echo "round $round $load $s: $r" >&2
        done
    done
done

python3 - "$SERVERS" "$(for k in "${!results[@]}"; do echo "$k=${results[$k]}"; done)" <<'PY'
import statistics, sys
servers = sys.argv[1].split()
res = {}
for line in sys.argv[2].splitlines():
    k, v = line.split("=", 1)
    res[k] = [tuple(map(float, x.split())) for x in v.split(";") if x]
def med(k, i):
    return statistics.median(r[i] for r in res[k])
base = "nginx" if "nginx" in servers else servers[0]
print("| server | 1 KiB req/s (50 conns) | vs nginx | server CPU µs/req | 100 MiB MB/s (4 conns) | vs nginx | server CPU ms/MB |")
print("|---|---:|---:|---:|---:|---:|---:|")
for s in servers:
    print(f"| {s} | {med(s+'.small',0):,.0f} | {med(s+'.small',0)/med(base+'.small',0):.2f} | "
          f"{med(s+'.small',1):.1f} | {med(s+'.large',0):,.0f} | "
          f"{med(s+'.large',0)/med(base+'.large',0):.2f} | {med(s+'.large',1):.3f} |")
PY
