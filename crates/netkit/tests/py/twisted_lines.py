"""Feeds chunk sequences to a real Twisted LineReceiver and prints what happened.

Driven by crates/netkit/tests/twisted_line.rs. Each stdin line is one case:

    <delimiter hex> <max_length> <keep_open 0|1> <chunk hex>...   ("_" = empty chunk)

and each stdout line is the record of that case:

    <event> ... | closed=<0|1> | written=<hex>

with events L:<hex> (lineReceived), R:<hex> (rawDataReceived, the part used),
X:<hex> (lineLengthExceeded and its argument) and T (a timer fired and resumed).

The test protocol: a line CLOSE closes, PAUSE pauses (a timer resumes it), "RAW n"
switches to raw mode for n bytes and hands the rest back with setLineMode(extra),
"PUSH <hex>" hands those bytes back with setLineMode(extra) from lineReceived;
other lines are echoed with sendLine. The driver follows netkit's Script runner: no
data after the protocol closed, and pending timers fire after each chunk.
"""

import sys

try:
    from twisted.protocols.basic import LineReceiver

    try:
        from twisted.internet.testing import StringTransport
    except ImportError:  # Twisted before 21.2
        from twisted.test.proto_helpers import StringTransport
except ImportError as e:
    print(f"twisted_lines.py: cannot import Twisted: {e}", file=sys.stderr)
    sys.exit(3)


class Rec(LineReceiver):
    def __init__(self, delimiter, max_length, keep_open):
        self.delimiter = delimiter
        self.MAX_LENGTH = max_length
        self.keep_open = keep_open
        self.events = []
        self.raw_left = 0
        self.timers = 0

    def lineReceived(self, line):
        self.events.append("L:" + line.hex())
        if line == b"CLOSE":
            self.transport.loseConnection()
        elif line == b"PAUSE":
            self.pauseProducing()
            self.timers += 1
        elif line.startswith(b"PUSH "):
            self.setLineMode(bytes.fromhex(line[5:].decode()))
        elif line.startswith(b"RAW "):
            self.raw_left = int(line[4:])
            self.setRawMode()
        else:
            self.sendLine(line)

    def rawDataReceived(self, data):
        n = min(self.raw_left, len(data))
        self.events.append("R:" + data[:n].hex())
        self.raw_left -= n
        if self.raw_left == 0:
            self.setLineMode(data[n:])

    def lineLengthExceeded(self, line):
        self.events.append("X:" + line.hex())
        if not self.keep_open:
            self.transport.loseConnection()


def run(delimiter, max_length, keep_open, chunks):
    proto = Rec(delimiter, max_length, keep_open)
    transport = StringTransport()
    proto.makeConnection(transport)
    for chunk in chunks:
        if transport.disconnecting:
            break
        proto.dataReceived(chunk)
        due, proto.timers = proto.timers, 0
        for _ in range(due):
            if transport.disconnecting:
                break
            proto.events.append("T")
            proto.resumeProducing()
    closed = 1 if transport.disconnecting else 0
    return " ".join(proto.events + ["|", f"closed={closed}", "|", "written=" + transport.value().hex()])


def main():
    for raw in sys.stdin:
        fields = raw.split()
        if not fields:
            continue
        delimiter = bytes.fromhex(fields[0])
        max_length = int(fields[1])
        keep_open = fields[2] == "1"
        chunks = [b"" if c == "_" else bytes.fromhex(c) for c in fields[3:]]
        print(run(delimiter, max_length, keep_open, chunks))


if __name__ == "__main__":
    main()
