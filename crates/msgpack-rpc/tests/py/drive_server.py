"""An independent MessagePack-RPC peer: raw sockets and the `msgpack`
package only, driving the Rust server. Usage: drive_server.py HOST:PORT.
Exits 0 when every check passed."""
import socket
import sys

import msgpack

HOST, PORT = sys.argv[1].rsplit(":", 1)
PORT = int(PORT)


def connect():
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Peer:
    def __init__(self, raw=False):
        self.sock = connect()
        # raw=True reads strings as bytes, like a pre-2013 client.
        self.unpacker = msgpack.Unpacker(raw=raw, strict_map_key=False)

    def send(self, data):
        self.sock.sendall(data)

    def recv(self):
        while True:
            for msg in self.unpacker:
                return msg
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.unpacker.feed(chunk)

    def recv_bytes(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("server closed the connection")
            data += chunk
        return data

    def call(self, msgid, method, params, **pack):
        self.send(msgpack.packb([0, msgid, method, params], **pack))
        return self.recv()


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


def ruby_push_data():
    p = Peer()
    req = bytes.fromhex("94 00 00 a9 70757368 5f64617461 91 b1 7b2268656c6c6f223a22776f726c64227d")
    p.send(req)
    reply = p.recv_bytes(5)
    check(reply == bytes.fromhex("9401 00c0c0"), "Ruby push_data request answered by 94 01 00 c0 c0")
    # The same request again, one byte per write.
    for b in req:
        p.send(bytes([b]))
    check(p.recv_bytes(5) == bytes.fromhex("9401 00c0c0"), "request split into 1-byte writes")


def pipelined():
    p = Peer()
    n = 300
    batch = b"".join(msgpack.packb([0, i, "shuffle", [i]]) for i in range(n))
    # Split the batch at odd places, too.
    for k in range(0, len(batch), 777):
        p.send(batch[k:k + 777])
    got = {}
    order = []
    for _ in range(n):
        t, msgid, err, res = p.recv()
        check_quiet(t == 1 and err is None and res == msgid, f"reply {msgid}")
        got[msgid] = res
        order.append(msgid)
    check(sorted(got) == list(range(n)), f"{n} pipelined calls all answered, matched by msgid")
    check(order != sorted(order), "answers came out of order")


def check_quiet(cond, what):
    if not cond:
        raise AssertionError(what)


def old_raw_format():
    p = Peer(raw=True)
    long = "x" * 40
    reply = p.call(1, "echo", [long], use_bin_type=False)
    check(reply == [1, 1, None, long.encode()], "old raw format request (fixraw/raw16) answered")
    # A pre-2013 decoder has no str8: the 40-byte string must come as raw16.
    p.send(msgpack.packb([0, 2, "echo", [long]], use_bin_type=False))
    raw = p.recv_bytes(4 + 3 + 40)
    check(raw[4:7] == b"\xda\x00\x28", "40-byte string answered as str16 (da), never str8")
    for marker, method in [(b"\xda\x00\x04", b"echo"), (b"\xdb\x00\x00\x00\x04", b"echo")]:
        p.send(b"\x94\x00\x03" + marker + method + b"\x91\x01")
        check(p.recv() == [1, 3, None, 1], f"method name as {marker[:1].hex()} raw")


def bin_method_names():
    p = Peer()
    for i, pack in enumerate([b"\xc4\x04", b"\xc5\x00\x04", b"\xc6\x00\x00\x00\x04"]):
        p.send(b"\x94\x00" + bytes([i]) + pack + b"echo" + b"\x91\xa2hi")
        check(p.recv() == [1, i, None, "hi"], f"method name as bin ({pack[:1].hex()})")
    check(p.call(9, b"echo", [b"\x00\x01"], use_bin_type=True) == [1, 9, None, b"\x00\x01"], "bin param round-trips")


def invalid_utf8():
    p = Peer()
    p.send(b"\x94\x00\x05\xa4echo\x91\xa2\xff\xfe")
    check(p.recv_bytes(7) == bytes.fromhex("9401 05c0 a2 fffe"), "invalid UTF-8 str echoed byte for byte")


def errors():
    p = Peer()
    cases = [
        ("nope", [], "method `nope' is not accepted"),
        ("echo", [1, 2], "wrong number of arguments (given 2, expected 1)"),
        ("count", [], "wrong number of arguments (given 0, expected 1..3)"),
        ("fail", [], "boom"),
        ("panic", [], "kaboom"),
        ("panic_sync", [], "sync kaboom"),
    ]
    for i, (method, params, want) in enumerate(cases):
        reply = p.call(i, method, params)
        check(reply == [1, i, want, None], f"{method}: error {want!r} with nil result")


def notifications_never_answered():
    p = Peer()
    for method, params in [("nope", []), ("fail", []), ("echo", [1, 2]), ("panic", []), ("push_data", ["x"])]:
        p.send(msgpack.packb([2, method, params]))
    check(p.call(42, "echo", ["after"]) == [1, 42, None, "after"], "notifications (even failing) got no reply")


def server_notifications():
    listener, other = Peer(), Peer()
    check(listener.call(1, "listen", []) == [1, 1, None, None], "listen")
    check(other.call(1, "emit", ["hi"]) == [1, 1, None, 1], "emit to one listener")
    check(listener.recv() == [2, "event", ["hi"]], "listener received [2, 'event', ['hi']]")


def malformed_closes_only_that_connection():
    good = Peer()
    cases = [b"\xc1", b"\x93\x00\x00\x00", b"\xc0", b"\x94\x00\xff\xa1m\x90",
             b"\x94\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x00\xa1m\x90", b"\x94\x00\x00\x01\x90",
             b"\x94\x07\x00\xa1m\x90", b"\x94\x00\x00\xdb\xff\xff\xff\xff"]
    for data in cases:
        bad = Peer()
        bad.send(data)
        try:
            bad.recv()
            raise AssertionError(f"{data.hex()}: got a reply")
        except (EOFError, ConnectionResetError):
            pass
        check(good.call(7, "echo", [data.hex()]) == [1, 7, None, data.hex()],
              f"malformed {data.hex()} closed that connection; another still works")


for test in [ruby_push_data, pipelined, old_raw_format, bin_method_names, invalid_utf8, errors,
             notifications_never_answered, server_notifications, malformed_closes_only_that_connection]:
    test()
print("all checks passed")
