#!/usr/bin/env python3
"""Send files to `netkit serve receive` using nothing but socket and struct.

    transfer_client.py HOST PORT [--no-offer] NAME=LOCAL_FILE...

Each file is stored on the receiver as NAME (relative, '/'-separated). Prints one
line per file, "NAME STATUS MESSAGE", and exits 0 only if every file was stored.

The wire format, all in network byte order:

    header = struct.pack("!4sBBHQIqI", b"NKTF", 1, flags, len(path), size,
                         mode, mtime, zlib.crc32(data)) + path
    reply  = struct.unpack("!BBHQ", 12 bytes) -> kind, status, msg_len, value
             followed by msg_len bytes of UTF-8 message

After a header the receiver answers with an offer (kind 1, value = bytes it already
has) and the client sends the body from that offset; or with a result (kind 2) that
refuses the file. With flag 1 (no offer) the body follows the header at once. After
the body comes a result: status 0 means stored.
"""

import os
import socket
import struct
import sys
import zlib

HEADER = struct.Struct("!4sBBHQIqI")
REPLY = struct.Struct("!BBHQ")
MAGIC = b"NKTF"
VERSION = 1
NO_OFFER = 1
OFFER, RESULT = 1, 2


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("receiver closed the connection")
        buf += chunk
    return buf


def read_reply(sock):
    kind, status, msg_len, value = REPLY.unpack(recv_exact(sock, REPLY.size))
    message = recv_exact(sock, msg_len).decode("utf-8", "replace")
    return kind, status, value, message


def send_file(sock, name, data, mode, mtime, flags):
    path = name.encode("utf-8")
    crc = zlib.crc32(data) & 0xFFFFFFFF
    header = HEADER.pack(MAGIC, VERSION, flags, len(path), len(data), mode, mtime, crc)
    sock.sendall(header + path)
    if flags & NO_OFFER:
        sock.sendall(data)
    else:
        kind, status, value, message = read_reply(sock)
        if kind == RESULT:
            return status, message
        sock.sendall(data[value:])
    kind, status, value, message = read_reply(sock)
    return status, message


def main(argv):
    host, port, rest = argv[1], int(argv[2]), argv[3:]
    flags = 0
    if rest and rest[0] == "--no-offer":
        flags, rest = NO_OFFER, rest[1:]
    ok = True
    with socket.create_connection((host, port), timeout=30) as sock:
        for spec in rest:
            name, local = spec.split("=", 1)
            with open(local, "rb") as f:
                data = f.read()
            st = os.stat(local)
            status, message = send_file(
                sock, name, data, st.st_mode & 0o777, int(st.st_mtime), flags
            )
            print(name, status, message)
            ok = ok and status == 0
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
