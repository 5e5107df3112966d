#!/usr/bin/env bash
# Run the netkit::pack criterion benches and the CPython struct timings side by side,
# both pinned to CPU 1, and print a markdown table with the ratios.
#
# usage: bench/pack.sh [extra criterion args]   (default: --warm-up-time 1 --measurement-time 3)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
crit_args=("$@")
if [ ${#crit_args[@]} -eq 0 ]; then
    crit_args=(--warm-up-time 1 --measurement-time 3)
fi
pin=(taskset -c 1)
command -v taskset >/dev/null || pin=()

cargo bench -p netkit --bench pack --no-run >/dev/null
"${pin[@]}" cargo bench -p netkit --bench pack -- "${crit_args[@]}" >&2
py_json=$("${pin[@]}" python3 bench/pack_cpython.py)

python3 - "$target/criterion/pack" "$py_json" <<'PY'
import json, os, sys
crit_dir, py = sys.argv[1], json.loads(sys.argv[2])

def ns(case):
    with open(os.path.join(crit_dir, case, "new", "estimates.json")) as f:
        return json.load(f)["mean"]["point_estimate"]

rows = [
    ("Struct('<IIIHH').unpack_from (ZIP header)", "unpack_from_IIIHH", "unpack_from_IIIHH"),
    ("unpack_ints_from (alloc-free) vs CPython Struct.unpack_from", "unpack_ints_from_IIIHH", "unpack_from_IIIHH"),
    ("hand-written from_le_bytes vs CPython Struct.unpack_from", "from_le_bytes_IIIHH", "unpack_from_IIIHH"),
    ("pack('!I', n) module function", "pack_fn_I", "pack_fn_I"),
    ("Struct('!I').pack(n)", "struct_pack_I", "struct_pack_I"),
    ("iter_unpack('!HHI') over 64 MiB", "iter_unpack_HHI_64MiB", "iter_unpack_HHI_64MiB"),
    ("unpack_ints_from per '!HHI' record over 64 MiB", "iter_ints_HHI_64MiB", "iter_unpack_HHI_64MiB"),
]
print("| case | netkit | CPython 3 | speed-up |")
print("|---|---:|---:|---:|")
for label, ours, theirs in rows:
    a, b = ns(ours), py[theirs]
    if ours.endswith("64MiB"):
        fa, fb = f"{(64 << 20) / a:.2f} GB/s", f"{(64 << 20) / b:.3f} GB/s"
    else:
        fa, fb = f"{a:.1f} ns", f"{b:.1f} ns"
    print(f"| {label} | {fa} | {fb} | {b / a:.1f}× |")
alloc_free, by_hand = ns("unpack_ints_from_IIIHH"), ns("from_le_bytes_IIIHH")
print()
print(f"alloc-free path / hand-written from_le_bytes: {alloc_free / by_hand:.2f}× "
      f"({alloc_free:.1f} ns vs {by_hand:.1f} ns)")
print(f"CPython module-level struct.unpack_from('<IIIHH', ...): {py['unpack_from_IIIHH_module']:.1f} ns")
PY
