#!/usr/bin/env bash
# Side by side: Nchan (nginx + libnginx-mod-nchan from Debian), wspush and the
# floor server, the same load generator, scenarios a, b, d, e in one run; writes
# a results file under bench/results/.
#
# The publisher is the seed's: one call at a time (`--pub-inflight 1`: the next
# publish goes when the reply to the last has come; for Nchan and the floor, one
# HTTP POST at a time). wspush runs scenarios a, b, c and f again pipelined
# (PIPELINED calls in flight). Beside them: `wspush-bench calibrate` (this
# machine's ceilings, including the loopback round trip that bounds a
# one-at-a-time publisher) and the floor server on scenarios a and d.
#
#   bench/compare.sh                       # everything (about 12 minutes on 2 cores)
#   SCENARIOS=a bench/compare.sh           # only scenario a
#   IDLE_CONNECTIONS=10000,50000 SCALE=0.5 OUT=/tmp/x.md bench/compare.sh
#   SCENARIOS=e IDLE_CONNECTIONS=10000 IDLE_SHAPES=idle,chrome-msg,wss,wss-chrome-msg bench/compare.sh
#                                          # memory per connection as browsers connect
#   WSPUSH_BIN_B=/tmp/old/wspush NCHAN=0 ROUNDS=2 SCENARIOS=a,f bench/compare.sh
#                                          # two builds, alternating, no Nchan
#
# Settings (environment):
#   SCENARIOS         letters, comma-separated (a,b,d,e)
#   IDLE_SHAPES       how scenario e's clients connect, comma-separated (idle): idle (no
#                     extension offered), chrome (Chrome's exact permessage-deflate offer),
#                     chrome-msg (that, and one 160-byte message each, compressed when
#                     agreed), msg, wss, wss-chrome-msg (TLS with a certificate generated
#                     here by openssl; Nchan gets nginx's `listen … ssl`)
#   PIPELINED         wspush's second shape on a, b, c, f: calls in flight (16; 0: none)
#   WSPUSH_BIN        the wspush binary ($CARGO_TARGET_DIR/release/wspush, built here)
#   WSPUSH_BIN_B      a second wspush binary: on every scenario and shape it runs next to
#                     WSPUSH_BIN (A B, then B A in the next round …), each run with a
#                     fresh server; its rows are labelled LABEL_B
#   LABEL_A, LABEL_B  their labels in the results (wspush, wspush-b)
#   ROUNDS            runs of each build per scenario and shape (1; 2 or more with
#                     WSPUSH_BIN_B, so the order of the builds alternates)
#   NCHAN             0: leave Nchan out (no nginx needed) (1)
#   HTTP_PUB          1: scenario a (of SCENARIOS) again publishing over HTTP, with 1 and 16
#                     keep-alive connections (one POST in flight each): wspush's /pub as
#                     LABEL_A-pub, its JSON API (/api/publish, /api/push_data) as LABEL_A-api,
#                     beside Nchan's POST with 16 connections too (1)
#   SSE               1: scenarios a and d (of SCENARIOS) again with EventSource subscribers
#                     (`--transport sse`): wspush's /sse as LABEL_A-sse, Nchan's same location
#                     with `Accept: text/event-stream` as nchan-sse, one publish in flight;
#                     and the ratios of issue 14's targets. 0: none (1)
#   FLOOR_SCENARIOS   scenarios the floor server runs, of SCENARIOS (a,d)
#   MAX_SUBSCRIBERS   cap every point's connections (for a quick check; no cap)
#   RUN_TIMEOUT       seconds one `wspush-bench run` may take before it is stopped (900)
#   DEADLINE          seconds after which no further run starts; skipped runs are
#                     listed in the results (3600)
#   KEEP_TMP          1: keep the temp dir (JSON lines, nginx prefix and logs)
#
# Needs root for apt-get (only when nginx/nchan are missing) and an open-file
# hard limit above the largest idle point (50,000 by default; it is capped,
# with a note in the results, when the hard limit is lower).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCENARIOS=${SCENARIOS:-a,b,d,e}
IDLE_SHAPES=${IDLE_SHAPES:-idle}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000,50000}
SCALE=${SCALE:-1}
PIPELINED=${PIPELINED:-16}
LABEL_A=${LABEL_A:-wspush}
LABEL_B=${LABEL_B:-wspush-b}
WSPUSH_BIN_B=${WSPUSH_BIN_B:-}
ROUNDS=${ROUNDS:-1}
NCHAN=${NCHAN:-1}
SSE=${SSE:-1}
HTTP_PUB=${HTTP_PUB:-1}
FLOOR_SCENARIOS=${FLOOR_SCENARIOS:-a,d}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
DEADLINE=${DEADLINE:-3600}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
WSPUSH_BIN=${WSPUSH_BIN:-$BIN/wspush}
NCHAN_SO=/usr/lib/nginx/modules/ngx_nchan_module.so
NOTES=()
if [ -n "$WSPUSH_BIN_B" ] && [ ! -x "$WSPUSH_BIN_B" ]; then
    echo "WSPUSH_BIN_B=$WSPUSH_BIN_B is not an executable" >&2
    exit 2
fi
if [ "$LABEL_A" = "$LABEL_B" ]; then
    echo "LABEL_A and LABEL_B must differ (each build's results go to LABEL.jsonl)" >&2
    exit 2
fi
# has LIST LETTER: whether the comma-separated LIST holds LETTER.
has() { echo "$1" | tr ',' '\n' | grep -qx "$2"; }

ulimit -n "$(ulimit -Hn)"
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ] && has "$SCENARIOS" e; then
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

if [ "$NCHAN" != 0 ] && { ! command -v nginx >/dev/null || [ ! -f "$NCHAN_SO" ]; }; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx libnginx-mod-nchan
fi
(cd "$ROOT" && cargo build --release -p wspush -p wspush-bench)

TMP=$(mktemp -d /tmp/wspush-compare.XXXXXX)
NGINX_PID=
# start_nchan [tls]: with "tls", the subscriber port is `listen … ssl` with the generated
# certificate (see make_cert).
start_nchan() {
    local port prefix ssl="" ssl_conf=""
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    prefix=$(mktemp -d "$TMP/nginx.XXXX")
    if [ "${1:-}" = tls ]; then
        ssl=ssl
        ssl_conf="ssl_certificate $TMP/tls/cert.pem; ssl_certificate_key $TMP/tls/key.pem;"
    fi
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@SUB_PORT@|$port|g" -e "s|@NOFILE@|$HARD|g" \
        -e "s|@SSL@|$ssl|g" -e "s|@SSL_CONF@|$ssl_conf|g" \
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
# The JSON lines end up in the results file; KEEP_TMP=1 keeps nginx's logs and prefix too.
cleanup() {
    stop_nchan
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT

status=0
START=$SECONDS
# One `wspush-bench run`, bounded by RUN_TIMEOUT (SIGTERM stops it and its
# spawned server; SIGKILL 10 s later), none once DEADLINE has passed.
bench_run() {
    if (( SECONDS - START > DEADLINE )); then
        NOTES+=("skipped after DEADLINE=${DEADLINE}s: run $*")
        return 0
    fi
    local rc=0
    timeout -k 10 "$RUN_TIMEOUT" "$BIN/wspush-bench" run --scale "$SCALE" --pipelined 0 \
        ${MAX_SUBSCRIBERS:+--max-subscribers "$MAX_SUBSCRIBERS"} "$@" >/dev/null || rc=$?
    if [ "$rc" != 0 ]; then
        status=1
        NOTES+=("failed (exit $rc; 124: RUN_TIMEOUT): run $*")
    fi
}
# run_nchan [--tls] [--label LABEL] ARGS…: results in $TMP/LABEL.jsonl (nchan).
run_nchan() {
    local label=nchan
    if [ "${1:-}" = --tls ]; then
        shift
        start_nchan tls
    else
        start_nchan
    fi
    if [ "${1:-}" = --label ]; then
        label=$2
        shift 2
    fi
    bench_run --label "$label" "$@" \
        --ws "127.0.0.1:$NCHAN_PORT" --sub-path '/sub/{channel}' \
        --http-publish "http://127.0.0.1:$NCHAN_PORT/pub/{channel}" \
        --server-pid "$NGINX_PID" --json "$TMP/$label.jsonl"
    stop_nchan
}
# run_wspush LABEL BINARY ARGS…: a fresh server for this run.
run_wspush() {
    local label=$1 bin=$2
    shift 2
    bench_run --label "$label" "$@" --spawn-server "$bin" --json "$TMP/$label.jsonl"
}
# Both builds ROUNDS times, alternating: A B, then B A, … so that a drift of the
# machine (or whatever a run leaves behind) falls on both alike.
run_builds() {
    local round
    for round in $(seq "$ROUNDS"); do
        if [ -z "$WSPUSH_BIN_B" ]; then
            run_wspush "$LABEL_A" "$WSPUSH_BIN" "$@"
        elif [ $((round % 2)) = 1 ]; then
            run_wspush "$LABEL_A" "$WSPUSH_BIN" "$@"
            run_wspush "$LABEL_B" "$WSPUSH_BIN_B" "$@"
        else
            run_wspush "$LABEL_B" "$WSPUSH_BIN_B" "$@"
            run_wspush "$LABEL_A" "$WSPUSH_BIN" "$@"
        fi
    done
}
# Calls in flight of each publisher shape scenario $1 runs with on wspush.
shapes_of() {
    case $1 in
        a|b|c|f) [ "$PIPELINED" -gt 1 ] && echo "1 $PIPELINED" || echo 1 ;;
        *) echo 1 ;;
    esac
}

# The machine's own ceilings, with no server (see bench/src/calibrate.rs).
CALIBRATION=$("$BIN/wspush-bench" calibrate --sockets 5000 2>&1 >/dev/null | sed '/^$/d')

# The floor: plain blocking writes from 2 threads, one POST at a time (bench/src/floor.rs).
run_floor() {
    local port pid
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Its own session, as the servers it stands beside (see bench/src/server.rs).
    setsid "$BIN/wspush-bench" floor-server --listen "127.0.0.1:$port" --threads 2 >/dev/null &
    pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
        sleep 0.1
    done
    bench_run --label floor "$@" \
        --ws "127.0.0.1:$port" --sub-path /sub --http-publish "http://127.0.0.1:$port/pub" \
        --server-pid "$pid" --json "$TMP/floor.jsonl"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Throughput and latency: Nchan on one server for every scenario but e, one POST
# at a time; wspush on a fresh server per scenario and shape.
MAIN=$(echo "$SCENARIOS" | tr ',' '\n' | grep -v '^e$' | paste -sd, || true)
if [ -n "$MAIN" ] && [ "$NCHAN" != 0 ]; then
    run_nchan --scenario "$MAIN"
fi
for letter in ${MAIN//,/ }; do
    for n in $(shapes_of "$letter"); do
        run_builds --scenario "$letter" --pub-inflight "$n"
    done
done
# EventSource subscribers (issue 14) on the points its targets name: scenario a (max rate,
# one publish in flight) and d (paced), beside the WebSocket rows above.
SSE_SCENARIOS=$(echo a,d | tr ',' '\n' | while read -r l; do has "$MAIN" "$l" && echo "$l"; done | paste -sd, || true)
if [ "$SSE" != 0 ] && [ -n "$SSE_SCENARIOS" ]; then
    [ "$NCHAN" = 0 ] || run_nchan --label nchan-sse --scenario "$SSE_SCENARIOS" --transport sse
    run_wspush "$LABEL_A-sse" "$WSPUSH_BIN" --scenario "$SSE_SCENARIOS" --pub-inflight 1 \
        --transport sse
fi
# Programs publishing over HTTP (issue 14): wspush's /pub and JSON API against Nchan's POST,
# with 1 and 16 keep-alive connections.
if [ "$HTTP_PUB" != 0 ] && has "$MAIN" a; then
    for k in 1 16; do
        [ "$k" = 1 ] || [ "$NCHAN" = 0 ] || run_nchan --scenario a --publishers "$k"
        run_wspush "$LABEL_A-pub" "$WSPUSH_BIN" --scenario a --pub-inflight 1 --publishers "$k" \
            --api-publish '/pub{/channel}'
        run_wspush "$LABEL_A-api" "$WSPUSH_BIN" --scenario a --pub-inflight 1 --publishers "$k" \
            --api-publish /api
    done
fi
FLOOR=$(echo "$FLOOR_SCENARIOS" | tr ',' '\n' | while read -r l; do has "$MAIN" "$l" && echo "$l"; done | paste -sd, || true)
if [ -n "$FLOOR" ]; then
    run_floor --scenario "$FLOOR"
fi
# A self-signed P-256 certificate for 127.0.0.1 (what the wss:// shapes connect to); not a CA
# certificate, which webpki refuses as a server's own (CaUsedAsEndEntity).
make_cert() {
    [ -f "$TMP/tls/cert.pem" ] && return 0
    mkdir -p "$TMP/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
        -keyout "$TMP/tls/key.pem" -out "$TMP/tls/cert.pem" 2>/dev/null
}
# The generator's flags for an idle shape (see IDLE_SHAPES).
shape_flags() {
    local part
    for part in ${1//-/ }; do
        case $part in
            idle) ;;
            chrome) echo --chrome-offer ;;
            msg) echo --first-message ;;
            wss) echo --tls-ca "$TMP/tls/cert.pem" ;;
            *) echo "unknown idle shape part $part in $1" >&2; exit 2 ;;
        esac
    done
}
# Idle memory: a fresh server per point, as memory freed by earlier points is
# reused and would hide the cost of new connections.
if has "$SCENARIOS" e; then
    for shape in ${IDLE_SHAPES//,/ }; do
        # shellcheck disable=SC2207
        flags=($(shape_flags "$shape"))
        nchan_tls=() wspush_tls=()
        if has "${shape//-/,}" wss; then
            make_cert
            nchan_tls=(--tls)
            wspush_tls=(--server-arg --tls-cert --server-arg "$TMP/tls/cert.pem"
                        --server-arg --tls-key --server-arg "$TMP/tls/key.pem")
        fi
        for n in ${IDLE_CONNECTIONS//,/ }; do
            [ "$NCHAN" = 0 ] || run_nchan "${nchan_tls[@]}" --scenario e --idle-connections "$n" "${flags[@]}"
            run_builds --scenario e --idle-connections "$n" "${flags[@]}" "${wspush_tls[@]}"
        done
    done
fi

A=$TMP/$LABEL_A.jsonl
B=$TMP/$LABEL_B.jsonl
A_SSE=$TMP/$LABEL_A-sse.jsonl
A_PUB=$TMP/$LABEL_A-pub.jsonl
A_API=$TMP/$LABEL_A-api.jsonl
touch "$A" "$TMP/nchan.jsonl" "$TMP/floor.jsonl" "$A_SSE" "$TMP/nchan-sse.jsonl" "$A_PUB" "$A_API"
FILES=("$A")
[ -z "$WSPUSH_BIN_B" ] || { touch "$B"; FILES+=("$B"); }
FILES+=("$TMP/nchan.jsonl" "$TMP/floor.jsonl")
[ "$SSE" = 0 ] || FILES+=("$A_SSE" "$TMP/nchan-sse.jsonl")
[ "$HTTP_PUB" = 0 ] || FILES+=("$A_PUB" "$A_API")
SIDE=$("$BIN/wspush-bench" side "${FILES[@]}")
TABLE=$("$BIN/wspush-bench" table "${FILES[@]}")
SHAPES=$("$BIN/wspush-bench" shapes "${FILES[@]}")
RATIOS=$("$BIN/wspush-bench" compare "$A" "$TMP/nchan.jsonl")
[ -z "$WSPUSH_BIN_B" ] || AB=$("$BIN/wspush-bench" compare "$B" "$A")
if [ "$HTTP_PUB" != 0 ]; then
    PUB_NCHAN=$("$BIN/wspush-bench" compare "$A_PUB" "$TMP/nchan.jsonl")
    API_NCHAN=$("$BIN/wspush-bench" compare "$A_API" "$TMP/nchan.jsonl")
fi
if [ "$SSE" != 0 ]; then
    SSE_WS=$("$BIN/wspush-bench" compare "$A_SSE" "$A")
    SSE_NCHAN=$("$BIN/wspush-bench" compare "$A_SSE" "$TMP/nchan-sse.jsonl")
fi
id_of() { echo "$1 (sha256 $(sha256sum "$1" | cut -c1-12))"; }
OUT=${OUT:-$ROOT/bench/results/$(date +%F)-compare.md}
{
    echo "# wspush vs Nchan, $(date -u '+%F %H:%M UTC')"
    echo
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -r)"
    echo "- wspush ${WSPUSH_REV:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')}: $LABEL_A = $(id_of "$WSPUSH_BIN")"
    [ -z "$WSPUSH_BIN_B" ] || echo "- $LABEL_B = $(id_of "$WSPUSH_BIN_B"), run next to $LABEL_A on every scenario and shape ($ROUNDS round(s), order alternating by round), a fresh server each run"
    [ "$NCHAN" = 0 ] || echo "- $(nginx -v 2>&1 | sed 's/.*: //'), nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?')"
    echo "- publisher: call/1 is one call (or HTTP POST) at a time, as the seed's synchronous client; call/$PIPELINED is $PIPELINED in flight on one connection; Nchan and the floor run call/1 only"
    echo "- load average at the start of each point is the last column: other work was running on the same cores"
    echo "- command: \`SCENARIOS=$SCENARIOS IDLE_CONNECTIONS=$IDLE_CONNECTIONS IDLE_SHAPES=$IDLE_SHAPES SCALE=$SCALE PIPELINED=$PIPELINED ROUNDS=$ROUNDS NCHAN=$NCHAN SSE=$SSE HTTP_PUB=$HTTP_PUB${WSPUSH_BIN_B:+ WSPUSH_BIN_B=$WSPUSH_BIN_B}${MAX_SUBSCRIBERS:+ MAX_SUBSCRIBERS=$MAX_SUBSCRIBERS} bench/compare.sh\` ($((SECONDS - START)) s)"
    echo "- columns: deliveries/s counts messages received by the generator; p50…max are publish→receive latency; RSS/conn is the server's RSS growth per connected idle subscriber (nginx: master + workers); srv CPU s/M is server user+system CPU seconds per million deliveries; gen cores is the generator's own CPU"
    for n in "${NOTES[@]}"; do echo "- $n"; done
    echo
    echo "Side by side (deliveries/s and p99; the floor is \`wspush-bench floor-server\`: blocking"
    echo "writes from 2 threads, no event loop, no coalescing, one POST at a time):"
    echo
    echo "$SIDE"
    echo
    echo "This machine's ceilings, with no server (\`wspush-bench calibrate\`): the round trip bounds"
    echo "any one-at-a-time publisher, the write cost any paced fan-out:"
    echo
    echo "$CALIBRATION"
    echo
    if [ "$NCHAN" != 0 ]; then
        echo "$LABEL_A ÷ Nchan, the same publisher (one at a time):"
        echo
        echo "$RATIOS"
        echo
    fi
    if [ "$HTTP_PUB" != 0 ] && [ "$NCHAN" != 0 ]; then
        echo "$LABEL_A publishing over HTTP ÷ Nchan's POST, 1 and 16 keep-alive connections (target: publishes/s ≥ 3, i.e. deliveries/s at the same subscribers):"
        echo
        echo "/pub (raw body):"
        echo
        echo "$PUB_NCHAN"
        echo
        echo "/api/publish (JSON):"
        echo
        echo "$API_NCHAN"
        echo
    fi
    if [ "$SSE" != 0 ]; then
        echo "$LABEL_A SSE ÷ $LABEL_A WebSocket, the same publisher (target: a-10k-64B deliveries/s ≥ 0.8):"
        echo
        echo "$SSE_WS"
        echo
        if [ "$NCHAN" != 0 ]; then
            echo "$LABEL_A SSE ÷ Nchan EventSource (targets: a-10k-64B deliveries/s ≥ 5; paced d p99 ÷ ≤ 1):"
            echo
            echo "$SSE_NCHAN"
            echo
        fi
    fi
    if [ -n "$WSPUSH_BIN_B" ]; then
        echo "$LABEL_B ÷ $LABEL_A, shape by shape (round k with round k):"
        echo
        echo "$AB"
        echo
    fi
    echo "Each publisher shape against one call at a time:"
    echo
    echo "$SHAPES"
    echo
    echo "$TABLE"
    echo
    echo "Raw JSON lines:"
    echo
    echo '```'
    cat "${FILES[@]}"
    echo '```'
} > "$OUT"
cat "$OUT"
echo "results: $OUT" >&2
exit $status
