"""Feeds chunk sequences to a real Twisted Int32StringReceiver and prints what happened.

Driven by crates/netkit/tests/twisted_line.rs. Each stdin line is one case:

    <max_length> <chunk hex>...   ("_" = empty chunk)

and each stdout line is the record of that case:

    <event> ... | closed=<0|1> | written=<hex>

with events S:<hex> (stringReceived), X:<n> (lengthLimitExceeded and its argument)
and T (a timer fired and resumed). The test protocol: a string PAUSE pauses (a timer
resumes it), other strings are sent back with sendString; the default
lengthLimitExceeded closes. The driver follows netkit's Script runner: no data after
the protocol closed, and pending timers fire after each chunk.
"""

import sys

try:
    from twisted.protocols.basic import Int32StringReceiver

    try:
        from twisted.internet.testing import StringTransport
    except ImportError:  # Twisted before 21.2
        from twisted.test.proto_helpers import StringTransport
except ImportError as e:
    print(f"twisted_int32.py: cannot import Twisted: {e}", file=sys.stderr)
    sys.exit(3)


class Rec(Int32StringReceiver):
    def __init__(self, max_length):
        self.MAX_LENGTH = max_length
        self.events = []
        self.timers = 0

    def stringReceived(self, string):
        self.events.append("S:" + string.hex())
        if string == b"PAUSE":
            self.pauseProducing()
            self.timers += 1
        else:
            self.sendString(string)

    def lengthLimitExceeded(self, length):
        self.events.append(f"X:{length}")
        Int32StringReceiver.lengthLimitExceeded(self, length)


def run(max_length, chunks):
    proto = Rec(max_length)
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
        max_length = int(fields[0])
        chunks = [b"" if c == "_" else bytes.fromhex(c) for c in fields[1:]]
        print(run(max_length, chunks))


if __name__ == "__main__":
    main()
