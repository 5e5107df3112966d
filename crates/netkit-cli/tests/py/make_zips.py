"""Write the ZIP archives that `netkit zipinfo` is tested on, with Python's zipfile.

usage: make_zips.py DIR   -- prints the names of the archives it wrote, one a line
"""
import io
import os
import sys
import zipfile

out = sys.argv[1]


def path(name):
    return os.path.join(out, name)


class Unseekable(io.RawIOBase):
    """A write-only stream without tell/seek: zipfile must use data descriptors."""

    def __init__(self, f):
        self.f = f

    def writable(self):
        return True

    def write(self, b):
        return self.f.write(b)

    def flush(self):
        self.f.flush()


text = b"".join(b"line %d of some fairly compressible text\n" % i for i in range(500))
written = []

# Stored, deflated, empty, directory, non-ASCII (UTF-8 flag), other methods.
with zipfile.ZipFile(path("basic.zip"), "w") as z:
    z.writestr(zipfile.ZipInfo("stored.txt", (2024, 1, 2, 3, 4, 6)), text[:1000])
    z.writestr("deflated.txt", text, compress_type=zipfile.ZIP_DEFLATED)
    z.writestr("empty", b"")
    z.writestr("dir/", b"")
    z.writestr("dir/café naïve ☃.txt", "snow\n".encode(), compress_type=zipfile.ZIP_DEFLATED)
    z.writestr("bz.txt", text, compress_type=zipfile.ZIP_BZIP2)
    z.writestr("xz.txt", text, compress_type=zipfile.ZIP_LZMA)
written.append("basic.zip")

# Streamed: every entry written through ZipFile.open(name, "w") to a non-seekable
# stream, so sizes and CRCs live in data descriptors (flag bit 3).
with open(path("streamed.zip"), "wb") as raw:
    with zipfile.ZipFile(Unseekable(raw), "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in [("a.txt", text), ("b.bin", bytes(range(256)) * 40), ("c/empty", b"")]:
            with z.open(name, "w") as w:
                w.write(data)
written.append("streamed.zip")

# An archive comment after the end record.
with zipfile.ZipFile(path("comment.zip"), "w") as z:
    z.comment = b"this archive has a comment " * 20
    z.writestr("x", b"hello")
written.append("comment.zip")

# A CP437 name (no UTF-8 flag): write a placeholder ASCII name, then patch its bytes.
# The second name holds every byte from 0x80 to 0xff.
high = b"high-" + bytes(range(0x80, 0x100)) + b".txt"
with zipfile.ZipFile(path("cp437.zip"), "w") as z:
    z.writestr("caf?-\x01.txt", b"cp437")
    z.writestr("H" * len(high), b"every high byte")
data = open(path("cp437.zip"), "rb").read()
with open(path("cp437.zip"), "wb") as f:
    f.write(data.replace(b"caf?-\x01.txt", b"caf\x82-\xe1.txt").replace(b"H" * len(high), high))
written.append("cp437.zip")

# Data prepended to the archive (a self-extractor's stub).
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("inside.txt", b"prepended")
with open(path("prepended.zip"), "wb") as f:
    f.write(b"#!/bin/sh\necho stub\nexit 0\n" * 10 + buf.getvalue())
written.append("prepended.zip")

# ZIP64: lower zipfile's limits so that small entries get ZIP64 extra fields and the
# archive a ZIP64 end record and locator; readers with normal limits still read it.
limit, count = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 100, 2
try:
    with zipfile.ZipFile(path("zip64.zip"), "w") as z:
        z.writestr("big1.txt", text)
        z.writestr("big2.txt", text[:5000], compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("small", b"tiny")
finally:
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = limit, count
written.append("zip64.zip")

# No entries at all.
with zipfile.ZipFile(path("empty.zip"), "w"):
    pass
written.append("empty.zip")

for name in written:
    print(name)
