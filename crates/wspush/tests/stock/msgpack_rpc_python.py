"""A program using the stock msgpack-rpc-python 0.4.1 client, as users ran it since 2010.

It sends strings in the pre-2013 raw format (fixraw a0-bf, raw16 da), never str8.
Driven by ../stock_clients.rs; prints one JSON object per step on stdout.
Usage: python msgpack_rpc_python.py HOST PORT [seed]   (seed: only the push_data step)
"""
import json
import sys

import msgpackrpc
import msgpackrpc.error

# 40 bytes: str8 (d9 28) in the 2013 format, raw16 (da 00 28) in the old one.
LONG = "raw16 string from msgpack-rpc-python...."
assert len(LONG) == 40


def out(**step):
    print(json.dumps(step), flush=True)


def text(v):
    # The client's unpacker has no encoding: strings come back as bytes.
    return v.decode("utf-8") if isinstance(v, bytes) else v


client = msgpackrpc.Client(msgpackrpc.Address(sys.argv[1], int(sys.argv[2])), timeout=10)
out(step="push_data", result=client.call("push_data", '{"hello":"world"}'))
if sys.argv[3:] == ["seed"]:
    client.close()
    sys.exit(0)
out(step="push_long", result=client.call("push_data", LONG))
out(step="publish", result=client.call("publish", "news", "for news only"))
try:
    client.call("nope")
    out(step="nope", error=None)
except msgpackrpc.error.RPCError as e:
    out(step="nope", error=text(e.args[0]))
try:
    client.call("push_data")
    out(step="arity", error=None)
except msgpackrpc.error.RPCError as e:
    out(step="arity", error=text(e.args[0]))
client.notify("push_data", "sent as a notification")
# Answered after the notification was handled: the server runs one connection's calls in order.
conns = client.call("connections")
out(step="connections", ids=sorted(c[b"id"] for c in conns))
client.close()
