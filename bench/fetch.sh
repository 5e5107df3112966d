#!/usr/bin/env bash
# `netkit fetch` against curl: both download the same 1 GiB file from nginx (1 worker,
# sendfile on) over loopback to a file in the same directory. nginx runs on CPU 0,
# the client on CPU 1; ROUNDS interleaved rounds; the table shows medians of the
# wall time and of the client's CPU time (user + system, from /usr/bin/time).
#
# usage: bench/fetch.sh     (env: ROUNDS=3 SIZE_MIB=1024 DIR=/dev/shm/netkit-fetch)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-1024}
TARGET=${CARGO_TARGET_DIR:-$root/target}
DIR=${DIR:-$TARGET/bench-fetch}

for tool in nginx curl python3; do
    command -v "$tool" >/dev/null || { echo "fetch.sh: $tool is not installed" >&2; exit 1; }
done
(cd "$root" && cargo build -q --release -p netkit-cli)
NETKIT=$TARGET/release/netkit

rm -rf "$DIR" && mkdir -p "$DIR/www" "$DIR/out"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$DIR/www/big.bin"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$DIR/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    server { listen 127.0.0.1:$PORT; root $DIR/www; }
}
EOF
taskset -c 0 nginx -c "$DIR/nginx.conf" -p "$DIR" &
NPID=$!
trap 'kill -TERM $NPID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 200); do
    curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$PORT/big.bin" && break
    sleep 0.02
done
url=http://127.0.0.1:$PORT/big.bin

# Runs one client; prints "wall_seconds cpu_seconds".
one() {
    rm -f "$DIR/out/big.bin"
    local t0 t1
    t0=$(date +%s.%N)
    case $1 in
        netkit) /usr/bin/time -f '%U %S' -o "$DIR/time.txt" taskset -c 1 "$NETKIT" fetch -q -o "$DIR/out/big.bin" "$url" ;;
        curl) /usr/bin/time -f '%U %S' -o "$DIR/time.txt" taskset -c 1 curl -sf -o "$DIR/out/big.bin" "$url" ;;
    esac
    t1=$(date +%s.%N)
    cmp -s "$DIR/www/big.bin" "$DIR/out/big.bin" || { echo "fetch.sh: $1 saved a different file" >&2; exit 1; }
    python3 -c 'import sys; u,s=open(sys.argv[3]).read().split(); print(float(sys.argv[2])-float(sys.argv[1]), float(u)+float(s))' "$t0" "$t1" "$DIR/time.txt"
}

declare -A res
for round in $(seq 1 "$ROUNDS"); do
    for c in curl netkit; do
        r=$(one $c)
        res[$c]+="$r;"
        echo "round $round $c: $r" >&2
    done
done
python3 - "$SIZE_MIB" "${res[curl]}" "${res[netkit]}" <<'PY'
import statistics, sys
mib = int(sys.argv[1])
rows = {}
for name, raw in (("curl", sys.argv[2]), ("netkit fetch", sys.argv[3])):
    runs = [tuple(map(float, r.split())) for r in raw.split(";") if r]
    rows[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
print(f"| client | {mib} MiB wall s | MB/s | vs curl | client CPU s |")
print("|---|---:|---:|---:|---:|")
for name, (wall, cpu) in rows.items():
    mbs = mib * 1024 * 1024 / 1e6 / wall
    print(f"| {name} | {wall:.2f} | {mbs:,.0f} | {rows['curl'][0] / wall:.2f} | {cpu:.2f} |")
PY
