#!/usr/bin/env bash
# Builds side by side on one shape: for each round, each binary runs the shape once with a
# fresh server (the order rotates every round), then the runs are printed per point as
# (deliveries/s in millions, p99 ms, server CPU s per million deliveries, load average).
#
#   bench/ab.sh "--scenario a --pub-inflight 16" 3 /tmp/old/wspush target/release/wspush
#
# The generator and the server run at nice -10 (root), so other work on the machine
# disturbs them less; the file of JSON lines is kept in /tmp.
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$HERE/target/release/wspush-bench}
SHAPE="$1"; shift
ROUNDS="$1"; shift
OUT=$(mktemp /tmp/ab-XXXXXX.jsonl)
for _ in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    label=$(basename "$(dirname "$bin")")-$(basename "$bin")
    # shellcheck disable=SC2086 # SHAPE is a list of arguments
    nice -n -10 timeout 300 "$BENCH" run --scale 1 --pipelined 0 $SHAPE --label "$label" \
      --spawn-server "$bin" --json "$OUT" > /dev/null 2>&1 || echo "failed: $label"
  done
  set -- "${@:2}" "$1"
done
python3 - "$OUT" <<'PY'
import collections, json, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows[(d['point'], d['label'])].append((round(d['deliveries_per_sec'] / 1e6, 2),
        round(d['p99_ms']), round(d['server_cpu_per_m'], 2), d['loadavg']))
for key in sorted(rows):
    print(key, rows[key])
PY
echo "runs: $OUT"
