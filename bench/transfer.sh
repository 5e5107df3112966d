#!/usr/bin/env bash
# File-transfer benchmark: `netkit send FILE` to `netkit serve receive` against
# `cat FILE | nc` to `nc -l > FILE` (netcat-openbsd), over loopback.
#
# Each run moves one SIZE_MIB file (default 200 MiB, made once with a fast
# pattern) and is timed from the sender's start until the received file is
# complete: for nc, until the listener exits (its output written, not synced);
# for netkit, until `netkit send` exits, which is after the receiver has checked
# the CRC-32, fsynced the file and renamed it into place. ROUNDS interleaved rounds;
# the median of each side and the ratio (netkit throughput / nc throughput) are
# printed. The page cache is warm (the file is read once first) for both sides.
#
# Where the received files go matters: on a disk the fsync that netkit does and
# nc does not is part of the price; on tmpfs it is free. DIR picks the place
# (default: a fresh directory under $TMPDIR or /tmp); run it with DIR on
# /dev/shm to compare the network paths alone.
#
# usage: bench/transfer.sh   (env: ROUNDS=3 SIZE_MIB=200 DIR=/path NETKIT=path/to/netkit
#                             PORT_NC=19431)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-200}
PORT_NC=${PORT_NC:-19431}
target=${CARGO_TARGET_DIR:-$root/target}

command -v nc >/dev/null || { echo "nc not found (apt-get install netcat-openbsd)" >&2; exit 1; }
if [[ -z ${NETKIT:-} ]]; then
    echo "building..." >&2
    (cd "$root" && CARGO_TARGET_DIR=$target cargo build -q --release -p netkit-cli)
    NETKIT=$target/release/netkit
fi

work=${DIR:-$(mktemp -d "${TMPDIR:-/tmp}/nk-transfer-bench.XXXXXX")}
mkdir -p "$work/root"
file=$work/big.bin
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work/root" "$work/nc.out" "$file" "$work/serve.log"
    [[ -z ${DIR:-} ]] && rmdir "$work" 2>/dev/null
    true
}
trap cleanup EXIT

python3 - "$file" "$SIZE_MIB" <<'EOF'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
block = bytes((i * 131 + 7) & 0xFF for i in range(1 << 20))
with open(path, "wb") as f:
    for i in range(mib):
        f.write(i.to_bytes(4, "big") + block[4:])
EOF
cat "$file" >/dev/null
bytes=$(stat -c %s "$file")

"$NETKIT" serve receive --mode threads --listen 127.0.0.1:0 --root "$work/root" \
    2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/serve.log" 2>/dev/null && break
    sleep 0.05
done
addr=$(sed -n 's/^listening on //p' "$work/serve.log" | head -1)
[[ -n $addr ]] || { echo "receiver did not start" >&2; cat "$work/serve.log" >&2; exit 1; }

now() { date +%s.%N; }

run_nc() {
    rm -f "$work/nc.out"
    nc -l 127.0.0.1 "$PORT_NC" >"$work/nc.out" &
    local lpid=$!
    for _ in $(seq 100); do
        ss -ltn 2>/dev/null | grep -q ":$PORT_NC " && break
        sleep 0.02
    done
    local t0 t1
    t0=$(now)
    cat "$file" | nc -N 127.0.0.1 "$PORT_NC"
    wait "$lpid"
    t1=$(now)
    cmp -s "$file" "$work/nc.out" || { echo "nc: output differs" >&2; exit 1; }
    echo "$t1 - $t0" | bc -l
}

run_netkit() {
    rm -f "$work/root/big.bin"
    local t0 t1
    t0=$(now)
    (cd "$work" && "$NETKIT" send "$addr" big.bin >/dev/null)
    t1=$(now)
    cmp -s "$file" "$work/root/big.bin" || { echo "netkit: output differs" >&2; exit 1; }
    echo "$t1 - $t0" | bc -l
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

nc_times=()
nk_times=()
for r in $(seq "$ROUNDS"); do
    nc_times+=("$(run_nc)")
    nk_times+=("$(run_netkit)")
    printf 'round %d: nc %.3fs  netkit %.3fs\n' "$r" "${nc_times[-1]}" "${nk_times[-1]}" >&2
done
nc_med=$(median "${nc_times[@]}")
nk_med=$(median "${nk_times[@]}")
mib=$(echo "$bytes / 1048576" | bc -l)
printf '%-8s %10s %12s\n' side "median s" "MiB/s"
printf '%-8s %10.3f %12.0f\n' nc "$nc_med" "$(echo "$mib / $nc_med" | bc -l)"
printf '%-8s %10.3f %12.0f\n' netkit "$nk_med" "$(echo "$mib / $nk_med" | bc -l)"
printf 'netkit / nc throughput: %.2f  (files in %s)\n' "$(echo "$nc_med / $nk_med" | bc -l)" "$work"
