// A program using the stock npm client msgpack-rpc-lite (on msgpack-lite, 2013 format: str8).
// Driven by ../stock_clients.rs; prints one JSON object per step on stdout.
// Usage: node msgpack_rpc_lite.js HOST PORT
"use strict";
const rpc = require("msgpack-rpc-lite");

// 40 bytes: str8 (d9 28) in the 2013 format.
const LONG = "str8 string from msgpack-rpc-lite ......";
const out = (step) => console.log(JSON.stringify(step));

async function main() {
  const client = rpc.createClient(Number(process.argv[3]), process.argv[2]);
  // request() resolves to [result, msgid] and rejects with the error value.
  const call = async (method, ...params) => (await client.request(method, ...params))[0];
  const error = (method, ...params) => call(method, ...params).then(() => null, (e) => String(e));

  out({ step: "push_data", result: await call("push_data", '{"hello":"world"}') });
  out({ step: "push_long", result: await call("push_data", LONG) });
  out({ step: "publish", result: await call("publish", "news", "for news only") });
  out({ step: "nope", error: await error("nope") });
  out({ step: "arity", error: await error("push_data") });
  await client.notify("push_data", "sent as a notification");
  const conns = await call("connections");
  out({ step: "connections", ids: conns.map((c) => c.id).sort((a, b) => a - b) });

  // A two-way conversation: this client emits server notifications (no msgid) as "data:undefined".
  const echoed = new Promise((resolve, reject) => {
    client.on("data:undefined", (m) => {
      if (m.method !== "on_message") return;
      const [conn, data] = m.params;
      call("send", conn, "echo: " + data).then(resolve, reject);
    });
  });
  out({ step: "listen", result: await call("listen") });
  out({ step: "echo", result: await echoed });
  client.close();
}

main().catch((e) => {
  out({ step: "failed", error: String((e && e.stack) || e) });
  process.exit(1);
});
