"""Print zipfile.ZipFile(FILE).infolist() as JSON lines, after testzip() verifies the data.

usage: zip_entries.py FILE.zip
"""
import json
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    if bad is not None:
        sys.exit("bad entry %r" % bad)
    for i in z.infolist():
        print(json.dumps({
            "name": i.filename,
            "crc": i.CRC,
            "compress_size": i.compress_size,
            "file_size": i.file_size,
            "compress_type": i.compress_type,
            "flag_bits": i.flag_bits,
        }))
