#!/usr/bin/env python3
"""Python echo servers for bench/echo.sh.

usage: echo_servers.py threading|asyncio|uvloop [HOST:PORT]

threading: socketserver.ThreadingTCPServer with a StreamRequestHandler that
           echoes each recv() (the socketserver docs' echo, made streaming);
asyncio:   asyncio.Protocol echo on the default event loop (the asyncio docs'
           EchoServerProtocol);
uvloop:    the same Protocol on uvloop.
Prints "listening on HOST:PORT" on stderr when ready.
"""
import asyncio
import socketserver
import sys


def parse(argv):
    host, _, port = (argv[2] if len(argv) > 2 else "127.0.0.1:0").rpartition(":")
    return host, int(port)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        while True:
            data = sock.recv(65536)
            if not data:
                return
            sock.sendall(data)


class Threading(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def run_threading(addr):
    with Threading(addr, Handler) as srv:
        print("listening on %s:%d" % srv.server_address[:2], file=sys.stderr, flush=True)
        srv.serve_forever()


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def serve(addr):
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(EchoProtocol, addr[0], addr[1], backlog=1024)
    host, port = srv.sockets[0].getsockname()[:2]
    print("listening on %s:%d" % (host, port), file=sys.stderr, flush=True)
    async with srv:
        await srv.serve_forever()


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    addr = parse(sys.argv)
    if kind == "threading":
        run_threading(addr)
    elif kind == "asyncio":
        asyncio.run(serve(addr))
    elif kind == "uvloop":
        import uvloop
        uvloop.run(serve(addr))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
