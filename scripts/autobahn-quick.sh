#!/usr/bin/env bash
# Autobahn|Testsuite quick set ('*,-12.*,-13.*': everything but the permessage-deflate cases)
# against ws-server's examples/echo, twice: echoing through the connection queue, then through
# the direct-write path (`echo PORT --direct`, Connection::send_prepared_now). Builds the
# example, starts it on a free port (port 0, read back from its log), runs scripts/autobahn.sh,
# stops the server by PID. Fails on any FAILED case.
#   scripts/autobahn-quick.sh [OUTDIR]     (default: a new temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${1:-$(mktemp -d /tmp/autobahn-quick.XXXXXX)}"
mkdir -p "$OUT"
cargo build --release --locked -q -p ws-server --example echo
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

PID=
trap '[ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }' EXIT

for MODE in queued direct; do
  FLAG=()
  [ "$MODE" = direct ] && FLAG=(--direct)
  LOG="$OUT/echo-$MODE.log"
  "$TARGET_DIR/release/examples/echo" 0 "${FLAG[@]}" >"$LOG" 2>&1 &
  PID=$!
  URL=""
  for _ in $(seq 100); do
    URL=$(sed -n 's/^echo: listening on \(ws:\/\/[0-9.:]*\)$/\1/p' "$LOG")
    [ -n "$URL" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; echo "autobahn-quick: echo exited" >&2; exit 2; }
    sleep 0.1
  done
  [ -n "$URL" ] || { echo "autobahn-quick: echo did not start" >&2; exit 2; }
  echo "autobahn-quick: $MODE echo on $URL"
  scripts/autobahn.sh "$URL" '*,-12.*,-13.*' "$OUT/report-$MODE"
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
done
