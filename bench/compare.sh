#!/usr/bin/env bash
# Side by side: Nchan (nginx + libnginx-mod-nchan from Debian) and wspush,
# the same load generator, scenarios a, b, d, e in one run; prints the ratios
# and writes a results file under bench/results/.
#
#   bench/compare.sh                       # everything (about 10 minutes on 2 cores)
#   SCENARIOS=a bench/compare.sh           # only scenario a
#   IDLE_CONNECTIONS=10000,50000 SCALE=0.5 OUT=/tmp/x.md bench/compare.sh
#
# Needs root for apt-get (only when nginx/nchan are missing) and an open-file
# hard limit above the largest idle point (50,000 by default; it is capped,
# with a note in the results, when the hard limit is lower).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCENARIOS=${SCENARIOS:-a,b,d,e}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000,50000}
SCALE=${SCALE:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
NCHAN_SO=/usr/lib/nginx/modules/ngx_nchan_module.so
NOTES=()

ulimit -n "$(ulimit -Hn)"
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ]; then
    capped=()
    for n in ${IDLE_CONNECTIONS//,/ }; do
        if [ "$n" -gt $((HARD - 1000)) ]; then
            c=$(( (HARD - 1000) / 1000 * 1000 ))
            NOTES+=("open-file hard limit is $HARD (ulimit -Hn; raising it needs CAP_SYS_RESOURCE): idle point $n capped to $c")
            n=$c
        fi
        capped+=("$n")
    done
    IDLE_CONNECTIONS=$(IFS=,; echo "${capped[*]}")
fi

if ! command -v nginx >/dev/null || [ ! -f "$NCHAN_SO" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx libnginx-mod-nchan
fi
(cd "$ROOT" && cargo build --release -p wspush -p wspush-bench)

TMP=$(mktemp -d /tmp/wspush-compare.XXXXXX)
NGINX_PID=
start_nchan() {
    local port prefix
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    prefix=$(mktemp -d "$TMP/nginx.XXXX")
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@SUB_PORT@|$port|g" -e "s|@NOFILE@|$HARD|g" \
        "$ROOT/bench/nchan/nginx.conf.template" > "$prefix/nginx.conf"
    nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
    for _ in $(seq 100); do [ -s "$prefix/nginx.pid" ] && break; sleep 0.1; done
    NGINX_PID=$(cat "$prefix/nginx.pid")
    NCHAN_PORT=$port
    echo "nchan: nginx master pid $NGINX_PID on 127.0.0.1:$port (prefix $prefix)" >&2
}
stop_nchan() {
    [ -n "$NGINX_PID" ] || return 0
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    NGINX_PID=
}
trap stop_nchan EXIT

status=0
run_nchan() {
    start_nchan
    "$BIN/wspush-bench" run --label nchan --scale "$SCALE" "$@" \
        --ws "127.0.0.1:$NCHAN_PORT" --sub-path '/sub/{channel}' \
        --http-publish "http://127.0.0.1:$NCHAN_PORT/pub/{channel}" \
        --server-pid "$NGINX_PID" --json "$TMP/nchan.jsonl" >/dev/null || status=1
    stop_nchan
}
run_wspush() {
    "$BIN/wspush-bench" run --label wspush --scale "$SCALE" "$@" \
        --spawn-server "$BIN/wspush" --json "$TMP/wspush.jsonl" >/dev/null || status=1
}

# The machine's own ceilings, with no server (see bench/src/calibrate.rs).
CALIBRATION=$("$BIN/wspush-bench" calibrate --sockets 5000 2>&1 >/dev/null | sed '/^$/d')

# Scenario d's floor: plain blocking writes from 2 threads (bench/src/floor.rs).
run_floor() {
    local port pid
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$BIN/wspush-bench" floor-server --listen "127.0.0.1:$port" --threads 2 >/dev/null &
    pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
        sleep 0.1
    done
    "$BIN/wspush-bench" run --label floor --scale "$SCALE" "$@" \
        --ws "127.0.0.1:$port" --sub-path /sub --http-publish "http://127.0.0.1:$port/pub" \
        --server-pid "$pid" --json "$TMP/floor.jsonl" >/dev/null || status=1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Throughput and latency: one server each for every scenario but e.
MAIN=$(echo "$SCENARIOS" | tr ',' '\n' | grep -v '^e$' | paste -sd, || true)
if [ -n "$MAIN" ]; then
    run_nchan --scenario "$MAIN"
    run_wspush --scenario "$MAIN"
fi
if echo "$SCENARIOS" | tr ',' '\n' | grep -qx d; then
    run_floor --scenario d
fi
# Idle memory: a fresh server per point, as memory freed by earlier points is
# reused and would hide the cost of new connections.
if echo "$SCENARIOS" | tr ',' '\n' | grep -qx e; then
    for n in ${IDLE_CONNECTIONS//,/ }; do
        run_nchan --scenario e --idle-connections "$n"
        run_wspush --scenario e --idle-connections "$n"
    done
fi

touch "$TMP/floor.jsonl"
TABLE=$("$BIN/wspush-bench" table "$TMP/wspush.jsonl" "$TMP/nchan.jsonl" "$TMP/floor.jsonl")
RATIOS=$("$BIN/wspush-bench" compare "$TMP/wspush.jsonl" "$TMP/nchan.jsonl")
OUT=${OUT:-$ROOT/bench/results/$(date +%F)-compare.md}
{
    echo "# wspush vs Nchan, $(date -u '+%F %H:%M UTC')"
    echo
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -r)"
    echo "- wspush ${WSPUSH_REV:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')}, $(nginx -v 2>&1 | sed 's/.*: //'), nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?')"
    echo "- load average at the start of each point is the last column: other work was running on the same cores"
    echo "- command: \`SCENARIOS=$SCENARIOS IDLE_CONNECTIONS=$IDLE_CONNECTIONS SCALE=$SCALE bench/compare.sh\`"
    echo "- columns: deliveries/s counts messages received by the generator; p50…max are publish→receive latency; RSS/conn is the server's RSS growth per connected idle subscriber (nginx: master + workers); srv CPU s/M is server user+system CPU seconds per million deliveries; gen cores is the generator's own CPU"
    for n in "${NOTES[@]}"; do echo "- $n"; done
    echo
    echo "$TABLE"
    echo
    echo "wspush ÷ Nchan:"
    echo
    echo "$RATIOS"
    echo
    echo "This machine's ceilings, with no server (\`wspush-bench calibrate\`); the floor rows above are"
    echo "\`wspush-bench floor-server\`: blocking writes from 2 threads, no event loop, the least a"
    echo "server can do per paced delivery here:"
    echo
    echo "$CALIBRATION"
    echo
    echo "Raw JSON lines:"
    echo
    echo '```'
    cat "$TMP/wspush.jsonl" "$TMP/nchan.jsonl" "$TMP/floor.jsonl"
    echo '```'
} > "$OUT"
cat "$OUT"
echo "results: $OUT" >&2
exit $status
