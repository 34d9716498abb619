#!/usr/bin/env bash
# Replay throughput side by side: `accurate replay`, tshark's SIP statistics
# and sngrep, each reading the same generated capture, one case per call
# count. Prints a markdown table per case (wall time, CPU time, SIP
# packets/s, peak RSS, what each tool found: a sanity check that all read
# everything) and the ratios of wall times (accurate vs tshark, vs sngrep).
#
#   bash benches/side_by_side.sh                 # CALLS="20000 200000"
#   CALLS=20000 LIMIT=600 bash benches/side_by_side.sh
#
# How each tool runs: none is pinned to a core; each gets the whole
# machine, one after the other, the file read from the page cache.
#   accurate replay --no-progress --format json FILE   (its default: 2
#       threads when there are 2 cores; the `accurate 1 thread` row adds
#       `--threads 1`)
#   tshark -r FILE -q -z sip,stat
#   sngrep -I FILE -N -c
# stdout and stderr of each go to files in $WORK.
#
# LIMIT (seconds, default 1800) stops a tool that takes longer; its row then
# says "> LIMIT" and the ratio against it is a lower bound (tshark's SIP
# statistics grow worse than linearly with the number of calls).
#
# Needs tshark, sngrep and GNU time (Debian packages tshark, sngrep, time).
# The capture comes from examples/gencap.rs (benches/gen): overlapping calls
# INVITE, 100, 180, 200, ACK, BYE, 200 at 200 calls/s, Ethernet/IPv4/UDP.
# SKIP="tshark" (a space-separated list of row names) leaves tools out.
set -euo pipefail

CALLS=${CALLS:-20000 200000}
LIMIT=${LIMIT:-1800}
SKIP=${SKIP:-}
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
[ -x /usr/bin/time ] || { echo "side_by_side: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

(cd "$ROOT" && cargo build --release --quiet --bin accurate --example gencap)

# measure NAME CMD...: runs CMD under GNU time (stopped after LIMIT s);
# stdout and stderr go to $WORK/NAME.out and $WORK/NAME.err. Prints one
# table row and leaves the wall time in $WORK/NAME.wall ("> LIMIT" if
# stopped).
measure() {
    local name=$1
    shift
    local label=${name//_/ }
    case " $SKIP " in *" $name "*)
        echo "| $label | not run | | | | |"
        echo "skipped" >"$WORK/$name.wall"
        return ;;
    esac
    local rc=0
    /usr/bin/time -v -o "$WORK/$name.time" timeout "$LIMIT" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
    if [ "$rc" = 124 ]; then
        echo "| $label | > $LIMIT (stopped) | | < $((SIP / LIMIT)) | | did not finish |"
        echo "> $LIMIT" >"$WORK/$name.wall"
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
    found=$(found_"${name%%_*}" "$name")
    awk -v n="$label" -v w="$wall" -v c="$cpu" -v r="$rss" -v sip="$SIP" -v f="$found" 'BEGIN {
        printf "| %s | %.2f | %.2f | %.0f | %d | %s |\n", n, w, c, sip / (w > 0 ? w : 0.01), r, f }'
    echo "$wall" >"$WORK/$name.wall"
}

found_accurate() {
    echo "$(awk '$1 == "replay:" && $2 == "calls:" {print $3}' "$WORK/$1.err") CDRs"
}
found_tshark() {
    # sip,stat counts messages, and requests by method.
    echo "$(awk -F': ' '/Number of SIP messages/ {print $2; exit}' "$WORK/$1.out") SIP messages"
}
found_sngrep() {
    echo "$(tr '\r' '\n' <"$WORK/$1.out" | awk -F': ' '/Dialog count/ {n = $2} END {print n}') dialogs"
}

# ratio PEER: "Nx" (">= Nx" when the peer was stopped at LIMIT).
ratio() {
    local a p
    a=$(cat "$WORK/accurate.wall")
    p=$(cat "$WORK/$1.wall")
    case "$p" in
        skipped) echo "not run" ;;
        ">"*) awk -v a="$a" -v p="${p#> }" 'BEGIN { printf ">= %.1fx (stopped at LIMIT)", p / a }' ;;
        *) awk -v a="$a" -v p="$p" 'BEGIN { printf "%.1fx", p / a }' ;;
    esac
}

echo "machine: $(nproc) cores; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
for calls in $CALLS; do
    PCAP=$WORK/calls-$calls.pcap
    if [ ! -s "$PCAP" ]; then
        "$TARGET/release/examples/gencap" "$PCAP" "$calls"
    fi
    SIP=$((calls * 7))
    # Every tool reads the file from the page cache.
    cat "$PCAP" >/dev/null
    SIZE=$(stat -c %s "$PCAP")
    echo
    echo "capture: $PCAP, $calls calls, $SIP SIP packets, $((SIZE / 1048576)) MiB"
    echo
    echo "| tool | wall s | CPU s | SIP packets/s | peak RSS MiB | found |"
    echo "|---|---|---|---|---|---|"
    measure accurate "$TARGET/release/accurate" replay --no-progress --format json "$PCAP"
    measure accurate_1_thread "$TARGET/release/accurate" replay --no-progress --threads 1 --format json "$PCAP"
    measure tshark tshark -r "$PCAP" -q -z sip,stat
    measure sngrep sngrep -I "$PCAP" -N -c
    echo
    echo "$calls calls: accurate replay is $(ratio tshark) tshark and $(ratio sngrep) sngrep (wall time); load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
done
