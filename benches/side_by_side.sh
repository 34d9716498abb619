#!/usr/bin/env bash
# Replay throughput side by side: `accurate replay`, tshark's SIP statistics
# and sngrep, each reading the same large generated capture, pinned to one
# core. Prints a markdown table: wall time, CPU time, SIP packets/s, peak RSS,
# and what each tool found (a sanity check that all three read everything).
#
#   bash benches/side_by_side.sh                 # 200000 calls (1.4M SIP packets)
#   CALLS=50000 CORE=0 LIMIT=600 bash benches/side_by_side.sh
#
# LIMIT (seconds, default 1800) stops a tool that takes longer; its row then
# says so (tshark's SIP statistics grow worse than linearly with calls).
#
# Needs tshark, sngrep and GNU time (Debian packages tshark, sngrep, time).
# The capture comes from examples/gencap.rs (benches/gen): overlapping calls
# INVITE, 100, 180, 200, ACK, BYE, 200 at 200 calls/s, Ethernet/IPv4/UDP.
set -euo pipefail

CALLS=${CALLS:-200000}
CORE=${CORE:-1}
LIMIT=${LIMIT:-1800}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=${WORK:-${TMPDIR:-/tmp}/accurate-side-by-side}
mkdir -p "$WORK"

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "side_by_side: $1 is missing (apt-get install $2)" >&2
        exit 1
    }
}
need tshark tshark
need sngrep sngrep
need taskset util-linux
[ -x /usr/bin/time ] || { echo "side_by_side: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

(cd "$ROOT" && cargo build --release --quiet --bin accurate --example gencap)
PCAP=$WORK/calls-$CALLS.pcap
if [ ! -s "$PCAP" ]; then
    "$TARGET/release/examples/gencap" "$PCAP" "$CALLS"
fi
SIP=$((CALLS * 7))
# Every tool reads the file from the page cache.
cat "$PCAP" >/dev/null
SIZE=$(stat -c %s "$PCAP")

# measure NAME CMD...: runs CMD on one core under GNU time; stdout and stderr
# go to $WORK/NAME.out and $WORK/NAME.err. Prints one table row.
measure() {
    local name=$1
    shift
    local rc=0
    /usr/bin/time -v -o "$WORK/$name.time" timeout "$LIMIT" taskset -c "$CORE" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
    if [ "$rc" = 124 ]; then
        echo "| $name | > $LIMIT (stopped) | | < $((SIP / LIMIT)) | | did not finish |"
        echo "$LIMIT" >"$WORK/$name.wall"
        return
    fi
    local wall cpu rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0
        for (i = 1; i <= n; i++) s = s * 60 + p[i]
        print s }' "$WORK/$name.time")
    cpu=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {print u + s}' "$WORK/$name.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print int($2 / 1024)}' "$WORK/$name.time")
    local found
    found=$(found_"$name")
    awk -v n="$name" -v w="$wall" -v c="$cpu" -v r="$rss" -v sip="$SIP" -v f="$found" 'BEGIN {
        printf "| %s | %.2f | %.2f | %.0f | %d | %s |\n", n, w, c, sip / w, r, f }'
    echo "$wall" >"$WORK/$name.wall"
}

found_accurate() {
    echo "$(awk '$1 == "replay:" && $2 == "calls:" {print $3}' "$WORK/accurate.err") CDRs"
}
found_tshark() {
    # sip,stat counts messages, and requests by method.
    echo "$(awk -F': ' '/Number of SIP messages/ {print $2; exit}' "$WORK/tshark.out") SIP messages"
}
found_sngrep() {
    echo "$(tr '\r' '\n' <"$WORK/sngrep.out" | awk -F': ' '/Dialog count/ {n = $2} END {print n}') dialogs"
}

echo "capture: $PCAP, $CALLS calls, $SIP SIP packets, $((SIZE / 1048576)) MiB; one core (taskset -c $CORE) of $(nproc)"
echo
echo "| tool | wall s | CPU s | SIP packets/s | peak RSS MiB | found |"
echo "|---|---|---|---|---|---|"
measure accurate "$TARGET/release/accurate" replay --no-progress --format json "$PCAP"
measure tshark tshark -r "$PCAP" -Y sip -q -z sip,stat
# -N: no interface, read the file and exit; -l: keep every dialog
# (the default limit is 20000).
measure sngrep sngrep -N -I "$PCAP" -l $((CALLS * 2))
echo
awk -v a="$(cat "$WORK/accurate.wall")" -v t="$(cat "$WORK/tshark.wall")" \
    -v s="$(cat "$WORK/sngrep.wall")" 'BEGIN {
    printf "accurate replay is %.1fx tshark and %.1fx sngrep (wall time)\n", t / a, s / a }'
