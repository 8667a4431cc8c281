"""The stock `cent` 5.2.0 (PyPI) against wspush's HTTP API: publish, broadcast, presence,
history, info and batch. Driven by crates/wspush/tests/stock_api.rs, which watches a
browser on channel `news` receive what this publishes. Prints one JSON line of results."""
import json
import os
import sys

from cent import (BatchRequest, BroadcastRequest, CentApiResponseError, Client,
                  HistoryRequest, InfoRequest, PresenceRequest, PresenceStatsRequest,
                  PublishRequest, StreamPosition, CentUnauthorizedError)

client = Client(os.environ["WSPUSH_API_URL"], os.environ["WSPUSH_API_KEY"], timeout=10)
out = {}

r = client.publish(PublishRequest(channel="news", data={"from": "cent"}))
out["publish"] = [r.offset, r.epoch]

b = client.broadcast(BroadcastRequest(channels=["news", "other"], data={"n": 2}))
out["broadcast"] = [x.result.offset for x in b.responses if x.error is None]

p = client.presence(PresenceRequest(channel="news"))
out["presence"] = sorted(p.presence.keys())

h = client.history(HistoryRequest(channel="news", limit=10,
                                  since=StreamPosition(offset=0, epoch=""), reverse=False))
out["history"] = [[pub.offset, pub.data] for pub in h.publications]
out["top"] = [h.offset, h.epoch]

i = client.info(InfoRequest())
out["info"] = [n.uid != "" and n.name != "" for n in i.nodes]
out["num_clients"] = i.nodes[0].num_clients

bt = client.batch(BatchRequest(requests=[PublishRequest(channel="news", data="batched"),
                                         PresenceStatsRequest(channel="news")], parallel=False))
out["batch"] = [bt.replies[0].offset, bt.replies[1].num_clients]

try:
    client.history(HistoryRequest(channel="news", limit=1,
                                  since=StreamPosition(offset=1, epoch="no-such-epoch")))
    out["unrecoverable"] = None
except CentApiResponseError as e:
    out["unrecoverable"] = e.code

try:
    Client(os.environ["WSPUSH_API_URL"], "wrong", timeout=10).info(InfoRequest())
    out["wrong_key"] = "accepted"
except CentUnauthorizedError:
    out["wrong_key"] = "refused"

print(json.dumps(out))
sys.stdout.flush()
