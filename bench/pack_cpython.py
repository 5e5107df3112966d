#!/usr/bin/env python3
"""Time CPython's struct on the cases of crates/netkit/benches/pack.rs.

usage: python3 bench/pack_cpython.py   -- prints JSON {case: nanoseconds per call}
(for iter_unpack_HHI_64MiB: nanoseconds per pass over 64 MiB, summing every field
of every record, as the Rust benches do), plus "version".
"""
import json
import platform
import struct
import timeit

header = (
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00"
    + struct.pack("<IIIHH", 0xDEADBEEF, 1234, 5678, 8, 0)
    + b"name.txt"
)
st = struct.Struct("<IIIHH")
st_i = struct.Struct("!I")


def per_call(stmt, number=1_000_000, repeat=5):
    best = min(timeit.repeat(stmt, number=number, repeat=repeat, globals=globals()))
    return best / number * 1e9


results = {
    "unpack_from_IIIHH": per_call("st.unpack_from(header, 14)"),
    "unpack_from_IIIHH_module": per_call("struct.unpack_from('<IIIHH', header, 14)"),
    "pack_fn_I": per_call("struct.pack('!I', 20)"),
    "struct_pack_I": per_call("st_i.pack(20)"),
}
big = bytes((i * 31 + 7) % 256 for i in range(256)) * (64 << 20 >> 8)
hhi = struct.Struct("!HHI")
results["iter_unpack_HHI_64MiB"] = per_call(
    "sum(a + b + c for a, b, c in hhi.iter_unpack(big))", number=1, repeat=3
)
results["version"] = platform.python_version()
print(json.dumps(results))
