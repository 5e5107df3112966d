"""CPython's answer for `netkit pack` / `netkit unpack` cases.

Reads JSON lines [FMT, [VALUE literal, ...]] on stdin; prints JSON lines
{"hex": packed hex, "tuple": repr(struct.unpack(FMT, packed))} or {"error": message}.
Literals are evaluated with ast.literal_eval; inf, -inf and nan mean float(...).
"""
import ast
import json
import struct
import sys

SPECIAL = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan"), "-nan": -float("nan")}

for line in sys.stdin:
    fmt, lits = json.loads(line)
    try:
        vals = [SPECIAL[l] if l in SPECIAL else ast.literal_eval(l) for l in lits]
        packed = struct.pack(fmt, *vals)
        print(json.dumps({"hex": packed.hex(), "tuple": repr(struct.unpack(fmt, packed))}))
    except Exception as e:  # struct.error, OverflowError, ValueError...
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
