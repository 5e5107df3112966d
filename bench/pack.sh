#!/usr/bin/env bash
# Run the netkit::pack criterion benches and the CPython struct timings side by side,
# both pinned to CPU 1, and print a markdown table with the ratios and the goals.
# With valgrind installed, also counts instructions per call (per record for the
# 64 MiB cases, measured over 1 MiB) with callgrind, for netkit and for CPython: each
# case runs at two repeat counts and the difference is divided out, so setup and
# interpreter start-up are not counted. On a loaded machine the counts are the
# steadier measure; times are medians of criterion's medians.
#
# usage: bench/pack.sh [extra criterion args]   (default: --warm-up-time 1 --measurement-time 3)
# env:   RUNS=3        repeat criterion + CPython and report medians (default 1)
#        CALLGRIND=0   skip the instruction counts
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
runs=${RUNS:-1}
crit_args=("$@")
if [ ${#crit_args[@]} -eq 0 ]; then
    crit_args=(--warm-up-time 1 --measurement-time 3)
fi
pin=(taskset -c 1)
command -v taskset >/dev/null || pin=()

bin=$(cargo bench -p netkit --bench pack --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "pack":
        print(m["executable"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for run in $(seq 1 "$runs"); do
    echo "== run $run of $runs" >&2
    "${pin[@]}" "$bin" --bench "${crit_args[@]}" >&2
    python3 - "$target/criterion/pack" >"$work/crit.$run.json" <<'PY'
import json, os, sys
d = sys.argv[1]
out = {}
for case in os.listdir(d):
    p = os.path.join(d, case, "new", "estimates.json")
    if os.path.exists(p):
        with open(p) as f:
            out[case] = json.load(f)["median"]["point_estimate"]
print(json.dumps(out))
PY
    "${pin[@]}" python3 bench/pack_cpython.py >"$work/py.$run.json"
done

echo '{}' >"$work/ir.json"
echo '{}' >"$work/pyir.json"
if [ "${CALLGRIND:-1}" != 0 ] && command -v valgrind >/dev/null; then
    echo "== callgrind instruction counts" >&2
    ir() {
        PACK_CALLGRIND="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 |
            sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
    }
    # The interpreter itself, not a pyenv shim script.
    py=$(python3 -c 'import sys; print(sys.executable)')
    pyir() {
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$py" bench/pack_cpython.py --calls "$1" "$2" 2>&1 |
            sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
    }
    {
        echo "{"
        sep=""
        for case in unpack_from_IIIHH pack_fn_I struct_pack_I iter_unpack_HHI; do
            case $case in
            *_HHI) a=$(pyir "$case" 1) b=$(pyir "$case" 2) div=131072 ;;
            *) a=$(pyir "$case" 1000) b=$(pyir "$case" 3000) div=2000 ;;
            esac
            echo "$sep\"$case\": $(python3 -c "print(($b - $a) / $div)")"
            sep=","
        done
        echo "}"
    } >"$work/pyir.json"
    {
        echo "{"
        sep=""
        for case in $(PACK_CALLGRIND=list "$bin"); do
            case $case in
            # Passes over 1 MiB of 8-byte records: per record.
            *_HHI) a=$(ir "$case" 1) b=$(ir "$case" 3) div=$((2 * 131072)) ;;
            *) a=$(ir "$case" 1000) b=$(ir "$case" 3000) div=2000 ;;
            esac
            echo "$sep\"$case\": $(python3 -c "print(($b - $a) / $div)")"
            sep=","
        done
        echo "}"
    } >"$work/ir.json"
fi

python3 - "$work" "$runs" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
crit = [json.load(open(f"{work}/crit.{r}.json")) for r in range(1, runs + 1)]
py = [json.load(open(f"{work}/py.{r}.json")) for r in range(1, runs + 1)]
ir = json.load(open(f"{work}/ir.json"))
pyir = json.load(open(f"{work}/pyir.json"))
ns = lambda case: statistics.median(c[case] for c in crit)
cp = lambda case: statistics.median(p[case] for p in py)
MIB64 = 64 << 20

def instr(case, table=None):
    table = ir if table is None else table
    key = case.replace("_64MiB", "")
    return f"{table[key]:.0f}" if key in table else "–"

print(f"netkit::pack vs CPython {py[0]['version']} struct; median of {runs} run(s), "
      "pinned with taskset -c 1. Instructions: callgrind, per call (per record for 64 MiB).")
print()
print("| case | netkit | netkit instr | CPython | CPython instr | speed-up vs CPython (time) |")
print("|---|---:|---:|---:|---:|---:|")
rows = [
    ("Struct('<IIIHH').unpack_from (ZIP header), let v = ...?", "unpack_from_IIIHH", "unpack_from_IIIHH"),
    ("Struct('<IIIHH').unpack_from, values used in place", "unpack_from_in_place_IIIHH", "unpack_from_IIIHH"),
    ("Struct.unpack_ints_from into [i128; 5] (no allocation)", "unpack_ints_from_IIIHH", "unpack_from_IIIHH"),
    ("hand-written from_le_bytes (baseline)", "from_le_bytes_IIIHH", "unpack_from_IIIHH"),
    ("pack('!I', n) module function", "pack_fn_I", "pack_fn_I"),
    ("Struct('!I').pack(n)", "struct_pack_I", "struct_pack_I"),
]
for label, ours, theirs in rows:
    a, b = ns(ours), cp(theirs)
    print(f"| {label} | {a:.1f} ns | {instr(ours)} | {b:.1f} ns | {instr(theirs, pyir)} | {b / a:.1f}× |")
iters = [
    ("iter_unpack('!HHI'), for loop (Values per record)", "iter_unpack_HHI_64MiB"),
    ("iter_unpack('!HHI').for_each (Values per record)", "iter_unpack_for_each_HHI_64MiB"),
    ("unpack_ints_from per '!HHI' record", "iter_ints_HHI_64MiB"),
    ("iter_records + Record::ints_into", "iter_records_HHI_64MiB"),
    ("for_each_ints (callback per record)", "for_each_ints_HHI_64MiB"),
    ("hand-written from_be_bytes loop (baseline)", "from_be_bytes_HHI_64MiB"),
]
b = cp("iter_unpack_HHI_64MiB")
for label, ours in iters:
    a = ns(ours)
    print(f"| {label}, 64 MiB, all fields summed | {MIB64 / a:.2f} GB/s | {instr(ours)} | "
          f"{MIB64 / b:.3f} GB/s | {instr('iter_unpack_HHI', pyir)} | {b / a:.1f}× |")

print()
print("Goals:")
def goal(ok, text):
    print(f"- [{'x' if ok else ' '}] {text}")
u, c = ns("unpack_from_IIIHH"), cp("unpack_from_IIIHH")
p = ns("unpack_from_in_place_IIIHH")
goal(c / u >= 30, f"Struct.unpack_from('<IIIHH') ≥ 30× CPython: {c / u:.1f}× ({u:.1f} ns vs {c:.1f} ns);"
     f" values used in place {c / p:.1f}× ({p:.1f} ns)")
a, h = ns("unpack_ints_from_IIIHH"), ns("from_le_bytes_IIIHH")
goal(a / h <= 5, f"unpack_ints_from within 5× of from_le_bytes: {a / h:.2f}× ({a:.1f} ns vs {h:.1f} ns)")
fe, fl = MIB64 / ns("iter_unpack_for_each_HHI_64MiB"), MIB64 / ns("iter_unpack_HHI_64MiB")
goal(fe >= 2, f"iter_unpack('!HHI') over 64 MiB ≥ 2 GB/s: {fe:.2f} GB/s by for_each (a for loop: {fl:.2f} GB/s)")
best = max(MIB64 / ns(k) for _, k in iters[2:5])
goal(best >= 2, f"'!HHI' records over 64 MiB ≥ 2 GB/s (best integer API): {best:.2f} GB/s")
p, q = ns("pack_fn_I"), cp("pack_fn_I")
goal(p <= q, f"pack('!I', n) not slower than CPython: {q / p:.1f}× ({p:.1f} ns vs {q:.1f} ns)")
if ir and pyir:
    print()
    print("By callgrind instruction counts (steadier than times on a loaded machine):")
    print(f"- unpack_from: CPython {pyir['unpack_from_IIIHH']:.0f} / netkit {ir['unpack_from_IIIHH']:.0f}"
          f" = {pyir['unpack_from_IIIHH'] / ir['unpack_from_IIIHH']:.1f}×; values used in place:"
          f" {pyir['unpack_from_IIIHH'] / ir['unpack_from_in_place_IIIHH']:.1f}×; unpack_ints_from:"
          f" {pyir['unpack_from_IIIHH'] / ir['unpack_ints_from_IIIHH']:.1f}×")
    print(f"- unpack_ints_from / hand-written: {ir['unpack_ints_from_IIIHH'] / ir['from_le_bytes_IIIHH']:.2f}×"
          " (both include the same call-and-loop harness)")
    print(f"- pack('!I'): CPython {pyir['pack_fn_I']:.0f} / netkit {ir['pack_fn_I']:.0f}"
          f" = {pyir['pack_fn_I'] / ir['pack_fn_I']:.1f}×")
    print(f"- per '!HHI' record: iter_unpack for loop {ir['iter_unpack_HHI']:.1f},"
          f" iter_unpack for_each {ir['iter_unpack_for_each_HHI']:.1f}, for_each_ints"
          f" {ir['for_each_ints_HHI']:.1f}, iter_records {ir['iter_records_HHI']:.1f},"
          f" hand-written {ir['from_be_bytes_HHI']:.1f}, CPython iter_unpack + sum"
          f" {pyir['iter_unpack_HHI']:.0f}")
print()
print(f"CPython module-level struct.unpack_from('<IIIHH', ...): {cp('unpack_from_IIIHH_module'):.1f} ns")
PY
