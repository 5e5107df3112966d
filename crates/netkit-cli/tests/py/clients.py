"""Python clients for the `netkit serve` tests, written the way the seeds write them:
socket, sendall, recv loops.  usage: clients.py COMMAND HOST PORT ARGS...

Every socket has a timeout, every thread is joined with a bound, and any failure
exits non-zero with a message on stderr.
"""
import socket, sys, threading, time

TIMEOUT = 60


def pattern(seed, size):
    block = bytes((seed * 7 + i) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


def connect(host, port):
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def recv_exactly(s, size, chunk=4096):
    got = bytearray()
    while len(got) < size:
        data = s.recv(min(chunk, size - len(got)))
        if not data:
            break
        got += data
    return bytes(got)


def recv_to_eof(s, chunk=4096):
    got = bytearray()
    while True:
        data = s.recv(chunk)
        if not data:
            return bytes(got)
        got += data


def echo_many(host, port, n, size):
    """n clients at once, each sendall()s `size` bytes and reads them back in small recvs."""
    errors = []
    start = threading.Barrier(n, timeout=TIMEOUT)

    def client(i):
        try:
            data = pattern(i, size)
            s = connect(host, port)
            try:
                start.wait()
            except threading.BrokenBarrierError:
                pass
            sender = threading.Thread(target=s.sendall, args=(data,), daemon=True)
            sender.start()
            got = recv_exactly(s, size, 4096)
            sender.join(TIMEOUT)
            s.close()
            if got != data:
                errors.append("client %d: got %d bytes, %s" % (i, len(got), "differ" if len(got) == size else "short"))
        except Exception as e:
            errors.append("client %d: %r" % (i, e))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.time() + 2 * TIMEOUT
    for t in threads:
        t.join(max(0.1, deadline - time.time()))
    if any(t.is_alive() for t in threads):
        errors.append("some clients did not finish")
    if errors:
        sys.exit("\n".join(errors[:10]))
    print("ok", n)


def half_close(host, port, size):
    """sendall, shutdown(SHUT_WR), then every byte comes back before EOF."""
    data = pattern(3, size)
    s = connect(host, port)
    sender = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)), daemon=True)
    sender.start()
    got = recv_to_eof(s)
    sender.join(TIMEOUT)
    s.close()
    if got != data:
        sys.exit("half-close: sent %d bytes, got %d back" % (size, len(got)))
    print("ok")


def idle(host, port):
    """Send nothing: the server closes the connection (EOF, not our timeout)."""
    s = connect(host, port)
    try:
        data = s.recv(1024)
    except ConnectionResetError:
        data = b""
    if data:
        sys.exit("idle: unexpected data %r" % data)
    print("closed")


def reset_others(host, port):
    """One client resets mid-message (SO_LINGER 0); five others echo on undisturbed."""
    errors = []
    stop = threading.Event()

    def good(i):
        try:
            s = connect(host, port)
            for k in range(50):
                msg = pattern(i * 100 + k, 1000)
                s.sendall(msg)
                if recv_exactly(s, len(msg)) != msg:
                    errors.append("client %d: echo %d differs" % (i, k))
                    return
                if k == 10:
                    stop.wait(TIMEOUT)
            s.close()
        except Exception as e:
            errors.append("client %d: %r" % (i, e))

    threads = [threading.Thread(target=good, args=(i,), daemon=True) for i in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    for _ in range(5):
        bad = connect(host, port)
        bad.sendall(pattern(9, 100000))
        bad.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        bad.close()
    stop.set()
    for t in threads:
        t.join(TIMEOUT)
    if any(t.is_alive() for t in threads):
        errors.append("some clients did not finish")
    if errors:
        sys.exit("\n".join(errors))
    print("ok")


def cycles(host, port, n):
    """n connect / one echo / close cycles, one after another."""
    for i in range(n):
        s = connect(host, port)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            sys.exit("cycle %d: no echo" % i)
        s.close()
    print("ok", n)


def max_line(host, port, limit):
    """A line over the limit closes that connection only."""
    ok = connect(host, port)
    ok.sendall(b"before\n")
    first = recv_exactly(ok, 7)
    bad = connect(host, port)
    try:
        bad.sendall(b"a" * (limit + 10) + b"\n")
        rest = recv_to_eof(bad)
    except (ConnectionResetError, BrokenPipeError):
        rest = b""
    if len(rest) > limit:
        sys.exit("max-line: the long line came back (%d bytes)" % len(rest))
    ok.sendall(b"after\n")
    second = recv_exactly(ok, 6)
    ok.close()
    print(first.decode().strip(), second.decode().strip(), "closed")


def main():
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    args = [int(a) for a in sys.argv[4:]]
    {
        "echo-many": echo_many,
        "half-close": half_close,
        "idle": idle,
        "reset-others": reset_others,
        "cycles": cycles,
        "max-line": max_line,
    }[cmd](host, port, *args)


main()
