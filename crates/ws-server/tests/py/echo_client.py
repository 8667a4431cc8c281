"""An independent WebSocket client (the Python `websockets` package) against an echo server.

usage: echo_client.py URL [CAFILE]
Sends text, binary, fragmented and compressed (permessage-deflate) messages and checks the
echoes, pings, then closes with code 4001. Exit status 0 on success; 3 when the package is
missing (run scripts/test-deps.sh).
"""

import asyncio
import ssl
import sys

try:
    from websockets.asyncio.client import connect
except ImportError:
    print("python package 'websockets' is missing: run scripts/test-deps.sh", file=sys.stderr)
    sys.exit(3)


def check(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r:.200}, want {want!r:.200}")


async def main(url, cafile):
    context = None
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
    opts = dict(proxy=None, max_size=16 * 2**20, ping_interval=None)
    if context:
        opts["ssl"] = context
    async with connect(url, compression="deflate", **opts) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        # websockets offers what browsers offer (`permessage-deflate; client_max_window_bits`);
        # the server asks it to reset its compressor per message, unasked (RFC 7692 §7.1.1.1).
        check(
            extensions,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "deflate negotiated",
        )

        await ws.send("hello ✓")
        check(await ws.recv(), "hello ✓", "text")

        await ws.send(bytes(range(256)))
        check(await ws.recv(), bytes(range(256)), "binary")

        big = "compressible " * 50_000
        await ws.send(big)
        check(await ws.recv(), big, "compressed text")

        await ws.send(["frag", "ment", "ed ✓"])
        check(await ws.recv(), "fragmented ✓", "fragmented text")
        await ws.send([b"\x00\x01", b"\x02"])
        check(await ws.recv(), b"\x00\x01\x02", "fragmented binary")

        pong = await ws.ping(b"py")
        await asyncio.wait_for(pong, 10)

        await ws.close(code=4001, reason="py bye")
        check(ws.close_code, 4001, "close code echoed")
        check(ws.close_reason, "", "close echo reason")

    async with connect(url, compression=None, **opts) as ws:
        check(ws.response.headers.get("Sec-WebSocket-Extensions"), None, "no deflate")
        await ws.send("plain")
        check(await ws.recv(), "plain", "uncompressed text")
        await ws.close(code=1000)
    print("ok")


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None), 60))
