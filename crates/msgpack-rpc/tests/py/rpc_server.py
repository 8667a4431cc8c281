"""A tiny MessagePack-RPC server on raw sockets and the `msgpack` package,
for driving the Rust client. Prints its port, serves one connection at a
time, exits when stdin closes.

Methods:
  echo(x)        -> x, written one byte per write
  hold(x)        -> x, held back until flush() is called
  flush()        -> number held; the held replies follow in reverse order
  old_echo(x)    -> x, encoded in the pre-2013 raw format
  err()          -> error "bad" (a string), result nil
  notify_me(x)   -> sends notification [2, "note", [x]] first, then replies true
  hang_up()      -> closes the connection without replying
"""
import socket
import sys
import threading

import msgpack


def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    unpacker = msgpack.Unpacker(raw=False)
    held = []
    while True:
        data = conn.recv(65536)
        if not data:
            return
        unpacker.feed(data)
        for msg in unpacker:
            kind = msg[0]
            if kind == 2:
                continue
            _, msgid, method, params = msg
            if method == "echo":
                for b in msgpack.packb([1, msgid, None, params[0]]):
                    conn.sendall(bytes([b]))
            elif method == "hold":
                held.append((msgid, params[0]))
            elif method == "flush":
                out = msgpack.packb([1, msgid, None, len(held)])
                for hid, x in reversed(held):
                    out += msgpack.packb([1, hid, None, x])
                held.clear()
                conn.sendall(out)
            elif method == "old_echo":
                conn.sendall(msgpack.packb([1, msgid, None, params[0]], use_bin_type=False))
            elif method == "err":
                conn.sendall(msgpack.packb([1, msgid, "bad", None]))
            elif method == "notify_me":
                conn.sendall(msgpack.packb([2, "note", [params[0]]]) + msgpack.packb([1, msgid, None, True]))
            elif method == "hang_up":
                conn.close()
                return
            else:
                conn.sendall(msgpack.packb([1, msgid, f"method `{method}' is not accepted", None]))


def main():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    print(srv.getsockname()[1], flush=True)

    def accept_loop():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    sys.stdin.read()


main()
