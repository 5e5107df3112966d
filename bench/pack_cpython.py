#!/usr/bin/env python3
"""Time CPython's struct on the cases of crates/netkit/benches/pack.rs.

usage: python3 bench/pack_cpython.py   -- prints JSON {case: nanoseconds per call}
(for iter_unpack_HHI_64MiB: nanoseconds per pass over 64 MiB, summing every field
of every record, as the Rust benches do), plus "version".

       python3 bench/pack_cpython.py --calls CASE N   -- runs CASE N times (for the
"_HHI" case: N passes over 1 MiB) and nothing else, for callgrind; bench/pack.sh
runs it at two values of N and divides the difference out, as it does for the
Rust cases.
"""
import json
import platform
import struct
import sys
import timeit

header = (
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00"
    + struct.pack("<IIIHH", 0xDEADBEEF, 1234, 5678, 8, 0)
    + b"name.txt"
)
st = struct.Struct("<IIIHH")
st_i = struct.Struct("!I")
hhi = struct.Struct("!HHI")
PATTERN = bytes((i * 31 + 7) % 256 for i in range(256))

STMTS = {
    "unpack_from_IIIHH": "st.unpack_from(header, 14)",
    "pack_fn_I": "struct.pack('!I', 20)",
    "struct_pack_I": "st_i.pack(20)",
    "iter_unpack_HHI": "sum(a + b + c for a, b, c in hhi.iter_unpack(big))",
}


def per_call(stmt, number=1_000_000, repeat=5):
    best = min(timeit.repeat(stmt, number=number, repeat=repeat, globals=globals()))
    return best / number * 1e9


if len(sys.argv) == 4 and sys.argv[1] == "--calls":
    case, n = sys.argv[2], int(sys.argv[3])
    big = PATTERN * (1 << 20 >> 8)
    exec(compile(f"for _ in range({n}):\n    {STMTS[case]}\n", case, "exec"))
    sys.exit(0)

results = {
    "unpack_from_IIIHH": per_call(STMTS["unpack_from_IIIHH"]),
    "unpack_from_IIIHH_module": per_call("struct.unpack_from('<IIIHH', header, 14)"),
    "pack_fn_I": per_call(STMTS["pack_fn_I"]),
    "struct_pack_I": per_call(STMTS["struct_pack_I"]),
}
big = PATTERN * (64 << 20 >> 8)
results["iter_unpack_HHI_64MiB"] = per_call(STMTS["iter_unpack_HHI"], number=1, repeat=3)
results["version"] = platform.python_version()
print(json.dumps(results))
