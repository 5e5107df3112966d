"""Echo-style servers for netkit bench's tests, on Python's stdlib only.

Usage: bench_echo_server.py [--unix PATH] [--mode echo|corrupt|extra|silent]

Listens on 127.0.0.1 port 0 (or the Unix socket PATH), prints the port (or PATH) on
one line of stdout once it accepts, and serves until killed. Modes:
  echo     send every byte back (socketserver.ThreadingTCPServer, a thread per client)
  corrupt  echo, but flip byte CORRUPT_AT of each connection's stream
  extra    echo, and send one byte nobody sent after the first chunk
  silent   read and discard, never answer
"""

import argparse
import socketserver
import sys

CORRUPT_AT = 100


class Echo(socketserver.BaseRequestHandler):
    mode = "echo"

    def handle(self):
        offset = 0
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            if self.mode == "silent":
                continue
            if self.mode == "corrupt" and offset <= CORRUPT_AT < offset + len(data):
                i = CORRUPT_AT - offset
                data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
            if self.mode == "extra" and offset == 0:
                data += b"!"
            offset += len(data)
            try:
                self.request.sendall(data)
            except OSError:
                return


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512


class UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 512


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--unix")
    parser.add_argument("--mode", choices=["echo", "corrupt", "extra", "silent"], default="echo")
    args = parser.parse_args()
    Echo.mode = args.mode
    if args.unix:
        server = UnixServer(args.unix, Echo)
        print(args.unix, flush=True)
    else:
        server = TCPServer(("127.0.0.1", 0), Echo)
        print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
