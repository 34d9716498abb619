#!/usr/bin/env bash
# The passive agent in one go: `accurate serve` listens for HEP on the
# embedded default store, `accurate send-hep --now` sends it the shipped
# captures as a Kamailio siptrace would, and the calls come out as rated,
# stored CDRs, printed as a table. Exits non-zero when the number of CDRs
# stored differs from the number of calls `accurate replay` finds in the
# same captures.
#
#   bash scripts/demo.sh
#   BIN=target/debug/accurate WAIT=120 bash scripts/demo.sh
#
# BIN: the accurate binary (default: the release build, built or brought
# up to date first). WAIT: seconds to wait for the CDRs (default 60). Needs python3
# for the table.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN_GIVEN=${BIN:-}
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/accurate}
WAIT=${WAIT:-60}
PLAN=examples/tariffplan
CONFIG=examples/captures.toml
CAPTURES=(captures/*.pcap captures/*.pcapng)

command -v python3 >/dev/null 2>&1 || {
    echo "demo: python3 is missing (apt-get install python3)" >&2
    exit 1
}
if [ -z "${BIN_GIVEN:-}" ] && [ "$BIN" = "${CARGO_TARGET_DIR:-$ROOT/target}/release/accurate" ]; then
    # The release build, brought up to date (quick when it is).
    cargo build --release --quiet --bin accurate
fi

# What replay finds in the same captures: the number to reach.
EXPECT=$("$BIN" replay -c "$CONFIG" --tariffplan "$PLAN" --no-progress --format json \
    "${CAPTURES[@]}" 2>&1 >/dev/null | awk '$1 == "replay:" && $2 == "calls:" {print $3}')
echo "demo: accurate replay finds $EXPECT calls in ${#CAPTURES[@]} captures"

DATA=$(mktemp -d "${TMPDIR:-/tmp}/accurate-demo.XXXXXX")
ERR=$DATA/serve.err
"$BIN" -c "$CONFIG" serve --hep udp:127.0.0.1:0 --data-dir "$DATA/data" \
    --tariffplan "$PLAN" --rpc-http 127.0.0.1:0 --rpc-tcp 127.0.0.1:0 2>"$ERR" &
SERVE=$!
cleanup() {
    kill -TERM "$SERVE" 2>/dev/null || true
    wait "$SERVE" 2>/dev/null || true
    rm -rf "$DATA"
}
trap cleanup EXIT

# Up to 60 s: the plan loads first, and a busy machine is slow.
for _ in $(seq 1 600); do
    grep -q '^listening on rpc-http:' "$ERR" 2>/dev/null && break
    kill -0 "$SERVE" 2>/dev/null || { cat "$ERR" >&2; exit 1; }
    sleep 0.1
done
HEP=$(sed -n 's/^listening on \(udp:.*\)$/\1/p' "$ERR" | head -1)
HTTP=$(sed -n 's/^listening on rpc-http:\(.*\)$/\1/p' "$ERR" | head -1)
[ -n "$HEP" ] && [ -n "$HTTP" ] || { echo "demo: serve did not start" >&2; cat "$ERR" >&2; exit 1; }
echo "demo: accurate serve listens on $HEP (HEP) and http://$HTTP/jsonrpc"

# Each capture at its own pace, stamped now, all at once: a few seconds in
# all, and every call keeps its real timing.
pids=()
for f in "${CAPTURES[@]}"; do
    "$BIN" send-hep --now "$f" --to "$HEP" 2>"$DATA/send-$(basename "$f").err" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || { echo "demo: send-hep failed" >&2; cat "$DATA"/send-*.err >&2; exit 1; }
done
echo "demo: sent $(cat "$DATA"/send-*.err | awk '$2 == "packets:" {n += $3} END {print n}') HEP packets"

console() {
    "$BIN" console --server "http://$HTTP/jsonrpc" "$@"
}
count=0
end=$((SECONDS + WAIT))
while [ "$SECONDS" -lt "$end" ]; do
    count=$(console CDRsV1.GetCDRsCount '{}' 2>/dev/null | tr -dc '0-9' || true)
    count=${count:-0}
    [ "$count" -ge "$EXPECT" ] && break
    sleep 0.5
done
made=$(curl -s "http://$HTTP/metrics" 2>/dev/null | awk '$1 == "accurate_cdrs_total" {print $2}' || true)
echo "demo: $count CDRs stored (${made:-?} made), $EXPECT expected"

if [ "$count" -gt 0 ]; then
    console CDRsV1.GetCDRs '{}' | python3 -c '
import json, sys
reply = json.load(sys.stdin, parse_float=str)  # costs keep their exact digits
cdrs = reply.get("result", reply) if isinstance(reply, dict) else reply
cols = ["OriginID", "Account", "Destination", "SetupTime", "AnswerTime", "Usage", "Cost"]
rows = []
for c in cdrs:
    r = dict(c)
    r["Usage"] = "%.3fs" % (int(r.get("Usage") or 0) / 1e9)
    rows.append([str(r.get(k, "")) for k in cols])
width = [max(len(x) for x in col) for col in zip(cols, *rows)]
line = lambda v: "  ".join(s.ljust(w) for s, w in zip(v, width)).rstrip()
print(line(cols))
print(line(["-" * w for w in width]))
for r in sorted(rows, key=lambda r: r[3]):
    print(line(r))
'
fi
if [ "$count" != "$EXPECT" ]; then
    echo "demo: FAILED: $count CDRs stored, $EXPECT calls in the captures" >&2
    exit 1
fi
echo "demo: ok"
