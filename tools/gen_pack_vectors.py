#!/usr/bin/env python3
"""Generate CPython `struct` test vectors for netkit::pack.

usage: python3 tools/gen_pack_vectors.py > crates/netkit/tests/data/pack_vectors.jsonl

Runs CPython's own `struct` module over edge cases and seeded random cases and
prints one JSON object per line:

    {"op": "pack",        "fmt": F, "values": [V...],                          "expect": E}
    {"op": "calcsize",    "fmt": F,                                            "expect": E}
    {"op": "unpack",      "fmt": F, "buf": HEX,                                "expect": E}
    {"op": "unpack_from", "fmt": F, "buf": HEX, "offset": N,                   "expect": E}
    {"op": "pack_into",   "fmt": F, "buf": HEX, "offset": N, "values": [V...], "expect": E}
    {"op": "iter_unpack", "fmt": F, "buf": HEX,                                "expect": E}

A value V is a tagged pair: ["int", "DECIMAL"], ["float", "16 hex digits of the
IEEE-754 double bits"], ["bool", true|false], ["bytes", HEX].

E is "error" when CPython raises, otherwise:
  pack, pack_into -> {"bytes": HEX}   (pack_into: the whole buffer afterwards)
  calcsize        -> {"size": N}
  unpack(_from)   -> {"values": [V...], "repr": [Python repr of each value]}
  iter_unpack     -> {"records": [[V...], ...]}

The output is deterministic (fixed seed); the native ('@') cases describe the
machine it runs on (the committed file was made on x86_64 Linux, CPython 3.11).
"""

import json
import math
import random
import struct
import sys

SEED = 20261122
I128_MIN = -(2**127)
I128_MAX = 2**127 - 1

PREFIXES = ["", "@", "=", "<", ">", "!"]
INT_CODES = "bBhHiIlLqQ"
NATIVE_ONLY = "nNP"
FLOAT_CODES = "efd"
ALL_CODES = "xcbB?hHiIlLqQnNefdspP"


def enc(v):
    """Encode one Python value as a tagged JSON pair."""
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, int):
        return ["int", str(v)]
    if isinstance(v, float):
        return ["float", struct.pack(">d", v).hex()]
    if isinstance(v, (bytes, bytearray)):
        return ["bytes", bytes(v).hex()]
    raise TypeError(type(v))


def representable(values):
    """Only values the Rust `Value` enum can hold (ints within i128)."""
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            if not I128_MIN <= v <= I128_MAX:
                return False
    return True


class Out:
    def __init__(self):
        self.seen = set()
        self.n = 0

    def emit(self, rec):
        line = json.dumps(rec, sort_keys=True, ensure_ascii=False)
        if line in self.seen:
            return
        self.seen.add(line)
        sys.stdout.write(line + "\n")
        self.n += 1

    def calcsize(self, fmt):
        try:
            e = {"size": struct.calcsize(fmt)}
        except Exception:
            e = "error"
        self.emit({"op": "calcsize", "fmt": fmt, "expect": e})

    def pack(self, fmt, values):
        if not representable(values):
            return None
        try:
            b = struct.pack(fmt, *values)
            e = {"bytes": b.hex()}
        except Exception:
            b = None
            e = "error"
        self.emit({"op": "pack", "fmt": fmt, "values": [enc(v) for v in values], "expect": e})
        return b

    @staticmethod
    def unpacked(vals):
        return {"values": [enc(v) for v in vals], "repr": [repr(v) for v in vals]}

    def unpack(self, fmt, buf):
        try:
            e = self.unpacked(struct.unpack(fmt, buf))
        except Exception:
            e = "error"
        self.emit({"op": "unpack", "fmt": fmt, "buf": buf.hex(), "expect": e})

    def unpack_from(self, fmt, buf, offset):
        try:
            e = self.unpacked(struct.unpack_from(fmt, buf, offset))
        except Exception:
            e = "error"
        self.emit({"op": "unpack_from", "fmt": fmt, "buf": buf.hex(), "offset": offset, "expect": e})

    def pack_into(self, fmt, buf, offset, values):
        if not representable(values):
            return
        b = bytearray(buf)
        try:
            struct.pack_into(fmt, b, offset, *values)
            e = {"bytes": b.hex()}
        except Exception:
            e = "error"
        self.emit(
            {
                "op": "pack_into",
                "fmt": fmt,
                "buf": bytes(buf).hex(),
                "offset": offset,
                "values": [enc(v) for v in values],
                "expect": e,
            }
        )

    def iter_unpack(self, fmt, buf):
        try:
            e = {"records": [[enc(v) for v in t] for t in struct.iter_unpack(fmt, buf)]}
        except Exception:
            e = "error"
        self.emit({"op": "iter_unpack", "fmt": fmt, "buf": buf.hex(), "expect": e})


def int_bounds(prefix, code):
    size = struct.calcsize(prefix + code)
    if code in "BHILQN" or (code == "P"):
        return 0, 2 ** (8 * size) - 1
    return -(2 ** (8 * size - 1)), 2 ** (8 * size - 1) - 1


SPECIAL_FLOATS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    1.5,
    0.1,
    1e-300,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1e300,
    -1e300,
    1.7976931348623157e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    -float("nan"),
    65504.0,
    65519.99,
    65520.0,
    -65520.0,
    6.1e-5,
    6e-8,
    5.960464477539063e-08,
    2.9802322387695312e-08,
    2.980232238769532e-08,
    1e-8,
    3.4028234663852886e38,
    3.4028235677973366e38,
    3.402823567797337e38,
    3.5e38,
    -3.5e38,
    1.401298464324817e-45,
    7e-46,
    1e-46,
    1.17549435e-38,
    16777217.0,
    2049.0,
    2051.0,
    1e16,
    1.5e-7,
    123456789.125,
    math.pi,
    -math.e,
]


def value_for(code, rnd, prefix):
    """A random, mostly valid value for one code."""
    if code in "bBhHiIlLqQnNP":
        lo, hi = int_bounds(prefix or "@", code)
        r = rnd.random()
        if r < 0.1:
            return rnd.choice([lo - 1, hi + 1])
        if r < 0.3:
            return rnd.choice([lo, hi, 0, 1, -1 if lo < 0 else 0])
        return rnd.randint(lo, hi)
    if code in "efd":
        r = rnd.random()
        if r < 0.3:
            return rnd.choice(SPECIAL_FLOATS)
        if r < 0.4:
            return rnd.randint(-100000, 100000)
        if r < 0.7:
            return struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        return rnd.uniform(-1e6, 1e6)
    if code == "?":
        return rnd.choice([True, False, 0, 1, 2, -1, 0.0, 0.5, b"", b"x"])
    if code == "c":
        return bytes([rnd.randrange(256)])
    raise ValueError(code)


def random_format(rnd):
    prefix = rnd.choice(PREFIXES)
    codes = ALL_CODES if prefix in ("", "@") else ALL_CODES.replace("n", "").replace("N", "").replace("P", "")
    parts = []
    for _ in range(rnd.randint(0, 6)):
        c = rnd.choice(codes)
        count = ""
        r = rnd.random()
        if r < 0.3:
            count = str(rnd.randint(0, 5))
        elif r < 0.35 and c in "sp":
            count = str(rnd.randint(0, 300))
        ws = rnd.choice(["", "", "", " ", "\t", "\n "])
        parts.append(ws + count + c)
    return prefix, prefix + "".join(parts)


def items(fmt):
    """The (code, count) items of a valid format, for building values."""
    out = []
    i = 1 if fmt[:1] in "@=<>!" else 0
    count = ""
    while i < len(fmt):
        ch = fmt[i]
        if ch.isdigit():
            count += ch
        elif ch.isspace():
            pass
        else:
            out.append((ch, int(count) if count else 1))
            count = ""
        i += 1
    return out


def values_for(fmt, prefix, rnd):
    vals = []
    for code, count in items(fmt):
        if code == "x":
            continue
        if code in "sp":
            n = rnd.choice([0, count, max(0, count - 1), count + 1, rnd.randint(0, count + 3)])
            if count >= 255 and rnd.random() < 0.5:
                n = count
            vals.append(bytes(rnd.randrange(256) for _ in range(n)))
        else:
            for _ in range(count):
                vals.append(value_for(code, rnd, prefix))
    return vals


def edge_cases(o):
    # calcsize / Struct() over every prefix and code, with repeat counts.
    for p in PREFIXES:
        for c in ALL_CODES:
            for n in ["", "0", "1", "2", "3", "7", "10"]:
                o.calcsize(p + n + c)
            o.calcsize(p + "b" + c)
            o.calcsize(p + c + "b")
            o.calcsize(p + "c" + c + "0" + c)
            o.calcsize(p + "3" + c + "0l")
    # Bad formats.
    bad = [
        "z", "3", "<3", "i3", "<<i", " <i", "<i<", "3 i", "-1i", "i!", "Z", "y", "%", "é",
        "<n", ">N", "!P", "=n", "\x00", "i\x00", "1.5i", "99999999999999999999i",
        "9223372036854775807s", "9223372036854775807x", "4611686018427387904i",
        "2305843009213693952q", "@9223372036854775807s", "@1q9223372036854775800s",
        "<1000000000s", "<1000000000p", "", " ", "\t\n", "<", "@", "!", "< ", "2 s", "i i",
        " i ", "\ti\n", "s", "0s", "0p", "p", "255p", "256p", "4xi", "4x 4i", "e", "?", "!?",
    ]
    for f in bad:
        o.calcsize(f)
    # Integer range boundaries for every int code and prefix.
    for p in PREFIXES:
        codes = INT_CODES + (NATIVE_ONLY if p in ("", "@") else "")
        for c in codes:
            lo, hi = int_bounds(p or "@", c)
            for v in [lo - 1, lo, lo + 1, -1, 0, 1, hi - 1, hi, hi + 1, hi * 2 + 1, -(hi + 1) * 2]:
                b = o.pack(p + c, [v])
                if b is not None:
                    o.unpack(p + c, b)
            # Wrong types for ints.
            for v in [1.0, 0.0, float("nan"), b"", b"\x01", True, False]:
                o.pack(p + c, [v])
            # Wrong argument counts.
            o.pack(p + c, [])
            o.pack(p + c, [1, 2])
            o.pack(p + "2" + c, [1])
            # Unpack of every byte pattern edge.
            size = struct.calcsize(p + c)
            for fill in [0x00, 0xFF, 0x7F, 0x80, 0x01]:
                o.unpack(p + c, bytes([fill]) * size)
            o.unpack(p + c, bytes(range(1, size + 1)))
            o.unpack(p + c, bytes(size - 1))
            o.unpack(p + c, bytes(size + 1))
    # Floats: overflow, nan, inf, -0.0, rounding, ints and bools for floats.
    for p in PREFIXES:
        for c in FLOAT_CODES:
            for v in SPECIAL_FLOATS:
                b = o.pack(p + c, [v])
                if b is not None:
                    o.unpack(p + c, b)
            for v in [0, 1, -1, 3, 65504, 65520, 2**24 + 1, 2**53 + 1, 2**64, 2**100, -(2**127),
                      True, False, b"", b"1"]:
                o.pack(p + c, [v])
            size = struct.calcsize(p + c)
            for pat in [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x01"]:
                o.unpack(p + c, pat * size)
            # Infinities, NaNs, subnormals as raw bytes.
            raws = {
                2: ["7c00", "fc00", "7e00", "fe00", "7c01", "0001", "8001", "03ff", "3c00", "7bff"],
                4: ["7f800000", "ff800000", "7fc00000", "ffc00000", "7f800001", "00000001",
                    "80000001", "007fffff", "3f800000", "7f7fffff"],
                8: ["7ff0000000000000", "fff0000000000000", "7ff8000000000000", "fff8000000000000",
                    "7ff0000000000001", "0000000000000001", "8000000000000001",
                    "000fffffffffffff", "3ff0000000000000", "7fefffffffffffff"],
            }[size]
            for r in raws:
                b = bytes.fromhex(r)
                o.unpack(p + c, b)
                o.unpack(p + c, b[::-1])
    # Bools.
    for p in ["", "<", ">"]:
        for v in [True, False, 0, 1, 2, -1, 2**100, 0.0, -0.0, 0.5, float("nan"), b"", b"\x00", b"ab"]:
            o.pack(p + "?", [v])
        for byte in [0, 1, 2, 0x80, 0xFF]:
            o.unpack(p + "?", bytes([byte]))
        o.unpack(p + "3?", bytes([0, 1, 0xFE]))
    # c, s, p: truncation, padding, wrong types.
    for p in ["", "<", "!"]:
        for v in [b"", b"a", b"ab", b"\x00", b"\xff", 1, True, 1.0]:
            o.pack(p + "c", [v])
            o.pack(p + "s", [v])
            o.pack(p + "p", [v])
        for n in [0, 1, 2, 3, 5, 254, 255, 256, 257, 300]:
            for ln in sorted({0, 1, max(0, n - 1), n, n + 1, n + 10}):
                data = bytes((i * 7 + 1) % 256 for i in range(ln))
                b = o.pack("%s%ds" % (p, n), [data])
                if b is not None:
                    o.unpack("%s%ds" % (p, n), b)
                b = o.pack("%s%dp" % (p, n), [data])
                if b is not None:
                    o.unpack("%s%dp" % (p, n), b)
        # 'p' whose length byte exceeds the field.
        for n in [1, 2, 4, 300]:
            for first in [0, 1, 3, 200, 255]:
                o.unpack("%s%dp" % (p, n), bytes([first]) + bytes(i % 256 for i in range(n - 1)))
        o.pack(p + "3c", [b"a", b"b", b"c"])
        o.pack(p + "3c", [b"abc"])
        o.unpack(p + "3c", b"abc")
        o.pack(p + "2s2p2c", [b"ab", b"c", b"d", b"e"])
    # Native alignment and padding.
    for f in ["@bi", "@bq", "@bd", "@be", "@bf", "@hq", "@ci", "@?P", "@bnN", "@b0i", "@b0q", "@3s0d",
              "@ib", "=bi", "<bq", "@bP", "@xxi", "@i0c", "@b0n", "@?0e", "@b0?"]:
        o.calcsize(f)
        size = struct.calcsize(f)
        buf = bytes(range(size))
        o.unpack(f, buf)
    for f, vals in [
        ("@bi", [1, 2]),
        ("@bq", [-1, -2]),
        ("@bd", [1, 2.5]),
        ("@hq", [3, 4]),
        ("@ci", [b"z", 7]),
        ("@bnN", [1, -5, 5]),
        ("@P", [0]),
        ("@P", [2**64 - 1]),
        ("@P", [-1]),
        ("@P", [2**64]),
        ("@P", [-(2**63)]),
        ("@P", [-(2**63) - 1]),
        ("@b0l", [3]),
    ]:
        b = o.pack(f, vals)
        if b is not None:
            o.unpack(f, b)
    # Whitespace and multi-code formats.
    for f, vals in [
        ("< i h", [1, 2]),
        ("<\ti\nh\r\x0b\x0c", [1, 2]),
        (">  3B ", [1, 2, 3]),
        ("!IIIHH", [1, 2, 3, 4, 5]),
        ("<IIIHH", [0xDEADBEEF, 10, 20, 8, 0]),
        ("!I", [20]),
        ("<0i", []),
        ("<0s", [b""]),
        ("<0p", [b""]),
        ("<0c", []),
        ("<3x", []),
        ("<x", [1]),
        ("", []),
        ("<", []),
        ("<1000s", [b"x"]),
    ]:
        b = o.pack(f, vals)
        if b is not None:
            o.unpack(f, b)
    # unpack_from / pack_into offsets, including negative ones.
    for f in ["<I", "!HH", "<b", "<0s", "<3s", "<d", "@bi", "<", "<2x"]:
        size = struct.calcsize(f)
        for blen in [0, size - 1, size, size + 1, size + 5, 16]:
            if blen < 0:
                continue
            buf = bytes((i * 37 + 11) % 256 for i in range(blen))
            for off in [0, 1, 2, blen - size, blen - size + 1, -1, -size, -size - 1, -blen, -blen - 1,
                        blen, blen + 1, -(2**40), 2**40]:
                o.unpack_from(f, buf, off)
                vals = values_for(f, f[0], random.Random(blen * 100 + off % 97))
                o.pack_into(f, buf, off, vals)
        o.pack_into(f, bytes(16), 0, [])
    # iter_unpack.
    for f in ["<I", "!HHI", "<b", "<0s", "", "<x", "<?", "<e", "<3s", "<2p"]:
        size = struct.calcsize(f)
        for n in [0, 1, 2, 3, size - 1, size + 1, size * 3, size * 3 + 1]:
            if n < 0:
                continue
            o.iter_unpack(f, bytes((i * 13 + 5) % 256 for i in range(n)))
    for f in ["z", "<q1"]:
        o.iter_unpack(f, b"")
    o.unpack("z", b"")
    o.pack("z", [])
    o.unpack_from("z", b"", 0)
    o.pack_into("z", b"", 0, [])


def random_cases(o, rnd, count):
    for _ in range(count):
        prefix, fmt = random_format(rnd)
        o.calcsize(fmt)
        try:
            size = struct.calcsize(fmt)
        except struct.error:
            continue
        vals = values_for(fmt, prefix, rnd)
        b = o.pack(fmt, vals)
        if b is not None:
            o.unpack(fmt, b)
        buf = bytes(rnd.randrange(256) for _ in range(size + rnd.choice([0, 0, 0, 1, 3, -1])) if size >= 0)
        if rnd.random() < 0.2:
            buf = bytes(rnd.randrange(256) for _ in range(size + rnd.randint(-2, 2)) if size >= 0)
        o.unpack(fmt, buf)
        big = bytes(rnd.randrange(256) for _ in range(size + rnd.randint(0, 8)))
        off = rnd.randint(-len(big) - 2, len(big) + 2)
        o.unpack_from(fmt, big, off)
        o.pack_into(fmt, big, off, vals)
        if size > 0 and rnd.random() < 0.3:
            k = rnd.randint(0, 4)
            o.iter_unpack(fmt, bytes(rnd.randrange(256) for _ in range(size * k + rnd.choice([0, 0, 1]))))


def main():
    rnd = random.Random(SEED)
    o = Out()
    edge_cases(o)
    random_cases(o, rnd, 1500)
    print("wrote %d vectors" % o.n, file=sys.stderr)


if __name__ == "__main__":
    main()
