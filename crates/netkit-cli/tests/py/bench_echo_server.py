"""Echo-style servers for netkit bench's tests, on Python's stdlib only.

Usage: bench_echo_server.py [--unix PATH] [--mode echo|corrupt|extra|silent]
                            [--backlog N] [--accept-delay SECONDS]

Listens on 127.0.0.1 port 0 (or the Unix socket PATH), prints the port (or PATH) on
one line of stdout once it accepts, and serves until killed. Modes:
  echo     send every byte back (socketserver.ThreadingTCPServer, a thread per client)
  corrupt  echo, but flip byte CORRUPT_AT of each connection's stream
  extra    echo, and send one byte nobody sent after the first chunk
  silent   read and discard, never answer
--backlog and --accept-delay make a server slow to accept, so that its listen queue
fills (a Unix connect then fails with EAGAIN until there is room).
"""

import argparse
import socketserver
import sys
import time

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


class SlowAccept:
    accept_delay = 0.0

    def get_request(self):
        time.sleep(self.accept_delay)
        return super().get_request()


class TCPServer(SlowAccept, socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512


class UnixServer(SlowAccept, socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 512


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--unix")
    parser.add_argument("--mode", choices=["echo", "corrupt", "extra", "silent"], default="echo")
    parser.add_argument("--backlog", type=int, default=512)
    parser.add_argument("--accept-delay", type=float, default=0.0)
    args = parser.parse_args()
    Echo.mode = args.mode
    for cls in (TCPServer, UnixServer):
        cls.request_queue_size = args.backlog
        cls.accept_delay = args.accept_delay
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
