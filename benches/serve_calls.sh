#!/usr/bin/env bash
# End-to-end throughput of the passive agent: HEP in, calls followed, CDRs
# made and stored. Generates a capture of CALLS calls (benches/gen, as
# side_by_side.sh does), starts `accurate serve --hep udp:127.0.0.1:P` on a
# fresh data directory with the e2e tariff plan (CDRs in SQLite in the data
# directory; CDR_DB=postgres://... for PostgreSQL), sends the capture with
# `accurate send-hep --as-fast --now` and polls until every call is in.
#
#   bash benches/serve_calls.sh                      # 20000 calls
#   CALLS=100000 LIMIT=600 bash benches/serve_calls.sh
#   CDR_DB=postgres://postgres@127.0.0.1:5432/test bash benches/serve_calls.sh
#
# Prints, from the first packet sent:
#   made    calls/s until GET /metrics' accurate_cdrs_total reached CALLS
#           (every call ended and turned into a CDR);
#   stored  calls/s until CDRsV1.GetCDRsCount reached CALLS (in the database).
# plus serve's CPU time and peak RSS, and what serve received. A serve that
# does not store CDRs from capture says "stored: none". The wait ends when
# every CDR is made and stored, or when neither count has moved for STALL
# seconds (default 10): over UDP a sender faster than serve loses datagrams
# in the socket buffer, and a call missing its BYE ends only at its timeout.
#
# PROTO=tcp sends HEP over TCP instead (no datagram loss); RATE=PPS sends
# at that many packets/s instead of as fast as possible. LIMIT (seconds,
# default 300) bounds the wait. Needs curl.
set -euo pipefail

CALLS=${CALLS:-20000}
LIMIT=${LIMIT:-300}
STALL=${STALL:-10}
PROTO=${PROTO:-udp}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=${WORK:-${TMPDIR:-/tmp}/accurate-serve-calls}
BIN=$TARGET/release/accurate

command -v curl >/dev/null 2>&1 || {
    echo "serve_calls: curl is missing (apt-get install curl)" >&2
    exit 1
}
mkdir -p "$WORK"
(cd "$ROOT" && cargo build --release --quiet --bin accurate --example gencap)
PCAP=$WORK/calls-$CALLS.pcap
if [ ! -s "$PCAP" ]; then
    "$TARGET/release/examples/gencap" "$PCAP" "$CALLS"
fi

DATA=$(mktemp -d "$WORK/data.XXXXXX")
ERR=$WORK/serve.err
DB_ARGS=()
if [ -n "${CDR_DB:-}" ]; then
    DB_ARGS=(--cdr-db "$CDR_DB")
fi
"$BIN" serve --hep "$PROTO:127.0.0.1:0" --data-dir "$DATA" \
    --tariffplan "$ROOT/tests/data/tariffplans/e2e" \
    --rpc-http 127.0.0.1:0 --rpc-tcp 127.0.0.1:0 "${DB_ARGS[@]}" 2>"$ERR" &
SERVE=$!
cleanup() {
    kill -TERM "$SERVE" 2>/dev/null || true
    wait "$SERVE" 2>/dev/null || true
    rm -rf "$DATA"
}
trap cleanup EXIT

# The bound addresses, from serve's `listening on ...` lines.
# Up to 60 s: the plan loads first, and a busy machine is slow.
for _ in $(seq 1 600); do
    grep -q '^listening on rpc-http:' "$ERR" 2>/dev/null && break
    kill -0 "$SERVE" 2>/dev/null || { cat "$ERR" >&2; exit 1; }
    sleep 0.1
done
HEP=$(sed -n "s/^listening on \($PROTO:.*\)$/\1/p" "$ERR" | head -1)
HTTP=$(sed -n 's/^listening on rpc-http:\(.*\)$/\1/p' "$ERR" | head -1)
[ -n "$HEP" ] && [ -n "$HTTP" ] || { echo "serve_calls: serve did not start" >&2; cat "$ERR" >&2; exit 1; }
# A reused PostgreSQL database may hold CDRs already: count from there.
stored() {
    "$BIN" console --server "http://$HTTP/jsonrpc" CDRsV1.GetCDRsCount '{}' 2>/dev/null |
        tr -dc '0-9' || true
}
metric() {
    # awk reads to the end: curl must not see a closed pipe (set -o pipefail).
    curl -s "http://$HTTP/metrics" | awk -v m="$1" '$1 == m && !n {print $2; n = 1}' || true
}
BASE=$(stored)
BASE=${BASE:-0}

now() { date +%s.%N; }
T0=$(now)
PACE=(--as-fast)
if [ -n "${RATE:-}" ]; then
    PACE=(--rate "$RATE")
fi
"$BIN" send-hep "${PACE[@]}" --now "$PCAP" --to "$HEP" 2>"$WORK/send.err"
T_SENT=$(now)

made=0 stored_n=0 t_made="" t_stored="" last_change=$(now) why=""
while :; do
    t=$(now)
    m=$(metric accurate_cdrs_total)
    m=${m:-0}
    s=$(stored)
    s=$(( ${s:-0} - BASE ))
    if [ "$s" != "$stored_n" ] || [ "$m" != "$made" ]; then
        stored_n=$s
        made=$m
        last_change=$t
    fi
    if [ -z "$t_made" ] && [ "$made" -ge "$CALLS" ]; then
        t_made=$t
    fi
    if [ -z "$t_stored" ] && [ "$stored_n" -ge "$CALLS" ]; then
        t_stored=$t
    fi
    [ -n "$t_made" ] && [ -n "$t_stored" ] && break
    if awk -v t="$t" -v t0="$T0" -v l="$LIMIT" 'BEGIN { exit !(t - t0 > l) }'; then
        why="timed out after ${LIMIT} s"
        break
    fi
    # Nothing moves: every CDR made is in, or calls whose packets were lost
    # wait for their timeouts (Timer C, max-duration), far beyond a bench.
    if awk -v t="$t" -v c="$last_change" -v s="$STALL" 'BEGIN { exit !(t - c > s) }'; then
        why="nothing moved for ${STALL} s"
        break
    fi
    sleep 0.1
done

# serve's CPU time (utime + stime, clock ticks) and peak RSS, before it stops.
TICKS=$(getconf CLK_TCK)
CPU=$(awk -v hz="$TICKS" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$SERVE/stat")
RSS=$(awk '/^VmHWM:/ {print int($2 / 1024)}' "/proc/$SERVE/status")
SIP_IN=$(metric accurate_capture_sip_messages_total)
SENT=$(awk '$1 == "send-hep:" && $2 == "packets:" {print $3}' "$WORK/send.err")

rate() { # rate LABEL T COUNT
    awk -v t="$2" -v t0="$T0" -v n="$3" -v l="$1" 'BEGIN {
        printf "%-7s %d calls in %.2f s: %.0f calls/s\n", l ":", n, t - t0, n / (t - t0) }'
}

echo "capture: $PCAP, $CALLS calls, $SENT SIP packets sent over $PROTO in $(awk -v a="$T_SENT" -v b="$T0" 'BEGIN {printf "%.2f", a - b}') s"
echo "serve received: ${SIP_IN:-?} SIP messages ($((SENT - ${SIP_IN:-0})) lost on the way); CDR database: ${CDR_DB:-SQLite in the data directory}"
if [ -n "$t_made" ]; then
    rate made "$t_made" "$CALLS"
else
    echo "made:   $made of $CALLS CDRs ($why)"
fi
if [ -n "$t_stored" ]; then
    rate stored "$t_stored" "$CALLS"
elif [ "$stored_n" -eq 0 ]; then
    echo "stored: none (this serve stores no CDRs from capture)"
else
    echo "stored: $stored_n of $CALLS CDRs ($why)"
fi
echo "serve: CPU ${CPU} s, peak RSS ${RSS} MiB"
if [ "$((SENT - ${SIP_IN:-0}))" -gt 0 ] && [ "$PROTO" = udp ]; then
    echo "note: datagrams were lost in serve's socket buffer: PROTO=tcp or RATE=PPS measure without loss"
fi
