#!/usr/bin/env bash
# record-captures.sh - records the real-peer pcap fixtures in captures/.
#
# For each scenario: a private network namespace (its own loopback, so the
# fixed ports below never clash with anything else on the host), a HEP sink
# (socat) on 127.0.0.1:9060, tcpdump on lo, Kamailio (tests/peers/kamailio.cfg:
# stateful proxy, siptrace trace_mode=1 -> every SIP message it receives or
# sends mirrored as HEP) and a sipp UAC/UAS pair running the scenario XMLs of
# tests/peers/sipp/:
#
#   sipp UAC 127.0.0.1:5061 -> Kamailio 127.0.0.1:5060 -> sipp UAS 127.0.0.1:5062
#                              `-> HEP -> 127.0.0.1:9060 (socat sink)
#
# Writes captures/<name>.pcap (or .pcapng) with both SIP hops and the HEP
# copies, and captures/<name>.expect.json computed from tshark by
# tests/peers/expect.py (independently of AccuRate).
#
# Usage (root, Debian 12):  bash tests/peers/record-captures.sh [NAME...]
#   no NAME: all scenarios. Env: OUT=captures dir, INSTALL=0 to not apt-get,
#   KEEP=1 to keep the work dir (logs) in $WORK, EXPECT_ONLY=1 to only
#   recompute the .expect.json files of the existing captures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$ROOT/captures}
INSTALL=${INSTALL:-1}
WORK=${WORK:-$(mktemp -d /tmp/accurate-rec.XXXXXX)}
IP=127.0.0.1

log() { printf '[record] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, tcpdump)"

# ---------------------------------------------------------------- packages
need=()
command -v kamailio >/dev/null || need+=(kamailio)
command -v sipp     >/dev/null || need+=(sip-tester)     # Debian's name for SIPp
command -v tcpdump  >/dev/null || need+=(tcpdump)
command -v tshark   >/dev/null || need+=(tshark)
command -v editcap  >/dev/null || need+=(wireshark-common)
command -v socat    >/dev/null || need+=(socat)
command -v ip       >/dev/null || need+=(iproute2)
command -v python3  >/dev/null || need+=(python3)
if ((${#need[@]})); then
  [ "$INSTALL" = 1 ] || die "missing Debian packages: ${need[*]} (INSTALL=0)"
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
KAM_MODDIR=$(dirname "$(dpkg -L kamailio | grep '/siptrace\.so$' | head -1)")
[ -f "$KAM_MODDIR/siptrace.so" ] || die "siptrace.so not found (package kamailio)"

# ---------------------------------------------------------------- process control
NS=""
PIDS=()
stop_pid() {  # TERM (or $2), wait up to 5 s, then KILL
  local pid=$1 sig=${2:-TERM} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -"$sig" "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
teardown() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  PIDS=()
  if [ -n "$NS" ]; then
    # anything still running in our private namespace is ours (Kamailio workers...)
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    NS=""
  fi
}
cleanup() { teardown; [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Foreground only: in the background, a function runs in a subshell and $!
# would be the subshell, not the program. Background jobs use
# `ip netns exec "$NS" PROGRAM &` (ip execs the program: $! is its pid).
nsx() { ip netns exec "$NS" "$@"; }
wait_until() {  # wait_until SECONDS cmd...
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.05; done
}
bound() { nsx ss -Hln"$1" "sport = :$2" 2>/dev/null | grep -q .; }

# ---------------------------------------------------------------- one scenario
# record NAME UAC_XML UAS_XML CALLS LIMIT TALK_MS SERVICE [key=value...]
#   keys: sip=udp|tcp  hep=udp|tcp  hepv=1|2|3  format=pcap|pcapng
record() {
  local name=$1 uac=$2 uas=$3 calls=$4 limit=$5 talk=$6 service=$7; shift 7
  local sip=udp hep=udp hepv=3 format=pcap kv
  for kv in "$@"; do
    case "$kv" in
      sip=*) sip=${kv#sip=} ;; hep=*) hep=${kv#hep=} ;; hepv=*) hepv=${kv#hepv=} ;;
      format=*) format=${kv#format=} ;; *) die "bad option $kv" ;;
    esac
  done
  if [ "${EXPECT_ONLY:-0}" = 1 ]; then
    expect_json "$name" "$OUT/$name.$format" "$calls" "$talk" "$sip" "$hep" "$hepv"
    return
  fi
  local w=$WORK/$name
  rm -rf "$w"; mkdir -p "$w/run"
  NS=accurate-rec-$$-$name
  ip netns add "$NS"
  nsx ip link set lo up

  # HEP sink, so the mirrored packets are not answered with ICMP port unreachable
  if [ "$hep" = tcp ]; then
    ip netns exec "$NS" socat -u TCP-LISTEN:9060,bind=$IP,reuseaddr,fork OPEN:/dev/null >"$w/sink.log" 2>&1 &
    PIDS+=($!); wait_until 5 bound t 9060 || die "$name: socat did not bind tcp 9060"
  else
    ip netns exec "$NS" socat -u UDP-RECV:9060,bind=$IP OPEN:/dev/null >"$w/sink.log" 2>&1 &
    PIDS+=($!); wait_until 5 bound u 9060 || die "$name: socat did not bind udp 9060"
  fi

  ip netns exec "$NS" tcpdump -i lo -n -U --immediate-mode -Z root -s 0 -w "$w/raw.pcap" \
    "(udp or tcp) and (port 5060 or port 5061 or port 5062 or port 9060)" >"$w/tcpdump.log" 2>&1 &
  local tcpdump_pid=$!; PIDS+=($tcpdump_pid)
  wait_until 10 grep -q "listening on" "$w/tcpdump.log" || die "$name: tcpdump: $(cat "$w/tcpdump.log")"

  local kopt=(-A "CTL_SOCK=\"unix:$w/run/kamailio_ctl\"" -A "HEP_VERSION=$hepv")
  [ "$hep" = tcp ] && kopt+=(-A WITH_HEP_TCP)
  ip netns exec "$NS" kamailio -f "$HERE/kamailio.cfg" -L "$KAM_MODDIR" -Y "$w/run" -DD -E "${kopt[@]}" \
    >"$w/kamailio.log" 2>&1 &
  local kam_pid=$!; PIDS+=($kam_pid)
  wait_until 15 bound u 5060 || die "$name: kamailio did not start: $(tail -20 "$w/kamailio.log")"

  local topt=()
  [ "$sip" = tcp ] && topt=(-t t1)
  ip netns exec "$NS" sipp -sf "$HERE/sipp/$uas" -i $IP -p 5062 "${topt[@]}" -m "$calls" -d "$talk" \
    -nostdin -timeout 40 -trace_err -error_file "$w/uas_err.log" >"$w/uas.log" 2>&1 &
  local uas_pid=$!; PIDS+=($uas_pid)
  if [ "$sip" = tcp ]; then wait_until 10 bound t 5062; else wait_until 10 bound u 5062; fi \
    || die "$name: sipp uas did not start: $(tail "$w/uas.log")"

  log "$name: $calls call(s), talk ${talk}ms, SIP/$sip, HEPv$hepv/$hep -> $format"
  local rc=0
  nsx sipp -sf "$HERE/sipp/$uac" $IP:5060 -i $IP -p 5061 "${topt[@]}" -s "$service" \
    -m "$calls" -l "$limit" -r "$limit" -d "$talk" -nostdin -timeout 40 -timeout_error \
    -trace_err -error_file "$w/uac_err.log" >"$w/uac.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { tail -n 30 "$w/uac.log" "$w/uac_err.log" >&2 || true; die "$name: sipp uac rc=$rc"; }
  rc=0; wait "$uas_pid" || rc=$?
  [ "$rc" = 0 ] || { tail -n 30 "$w/uas.log" "$w/uas_err.log" >&2 || true; die "$name: sipp uas rc=$rc"; }

  sleep 0.5   # let the last HEP packets and retransmission timers drain
  stop_pid "$kam_pid"
  sleep 0.2
  stop_pid "$tcpdump_pid" INT
  teardown

  if grep -E ' (ERROR|CRITICAL|WARNING): ' "$w/kamailio.log" >&2; then
    die "$name: kamailio logged errors (see above)"
  fi

  local dst=$OUT/$name.$format
  if [ "$format" = pcapng ]; then
    editcap -F pcapng "$w/raw.pcap" "$dst"
  else
    cp "$w/raw.pcap" "$dst"
  fi
  expect_json "$name" "$dst" "$calls" "$talk" "$sip" "$hep" "$hepv"
}

# expect_json NAME CAPTURE CALLS TALK_MS SIP HEP HEPV: writes and checks NAME.expect.json
expect_json() {
  local name=$1 dst=$2
  python3 "$HERE/expect.py" "$dst" --scenario "$name" --calls "$3" --talk-ms "$4" \
    --sip-transport "$5" --hep-transport "$6" --hep-version "$7" >"$OUT/$name.expect.json"
  # every SIP message passes through Kamailio, which mirrors each one it
  # receives or sends: as many HEP copies as SIP messages on the wire
  python3 - "$OUT/$name.expect.json" "$(stat -c %s "$dst")" <<'PY' || die "$name: bad capture"
import json, sys
d = json.load(open(sys.argv[1]))
print("[record] %s: %s bytes, %d call(s), %d SIP messages, %d HEP; %s" % (
    d["file"], sys.argv[2], len(d["calls"]), d["sip_messages"], d["hep"]["messages"],
    ", ".join("%s final %s duration %.3fs" % (c["call_id"], c["final_code"], c["duration_ns"] / 1e9)
              for c in d["calls"])), file=sys.stderr)
# (HEP >= SIP: with the default trace_sl_acks=1, an ACK absorbed by sl (the
# one for the proxy's own 407) is mirrored twice)
sys.exit(0 if d["hep"]["messages"] >= d["sip_messages"] > 0 and len(d["calls"]) == d["recorded"]["calls"] else 1)
PY
}

# ---------------------------------------------------------------- scenarios
#       name                    UAC xml                      UAS xml                      calls limit talk_ms service   options
ALL=(
  "answered-caller-bye        answered-caller-bye-uac.xml  answered-uas.xml             2 2 2000 4930555001"
  "answered-callee-bye        answered-callee-bye-uac.xml  answered-callee-bye-uas.xml  1 1 1500 4930555002"
  "busy-486                   busy-486-uac.xml             busy-486-uas.xml             1 1 0    4930555003"
  "cancel-ringing             cancel-ringing-uac.xml       cancel-ringing-uas.xml       1 1 1000 4930555004"
  "notfound-404               notfound-404-uac.xml         notfound-404-uas.xml         1 1 0    4930555005"
  "reinvite                   reinvite-uac.xml             reinvite-uas.xml             1 1 1000 4930555006"
  "early-media-183            early-media-183-uac.xml      early-media-183-uas.xml      1 1 1500 4930555007"
  "auth-407                   auth-407-uac.xml             answered-uas.xml             1 1 1500 auth4930555008"
  "sip-tcp                    answered-caller-bye-uac.xml  answered-uas.xml             2 1 1000 4930555009 sip=tcp"
  "hep-tcp                    answered-caller-bye-uac.xml  answered-uas.xml             1 1 1000 4930555010 hep=tcp"
  "hepv2                      answered-caller-bye-uac.xml  answered-uas.xml             1 1 1000 4930555011 hepv=2"
  "hepv1                      answered-caller-bye-uac.xml  answered-uas.xml             1 1 1000 4930555012 hepv=1"
  "answered-pcapng            answered-caller-bye-uac.xml  answered-uas.xml             1 1 1200 4930555013 format=pcapng"
)

mkdir -p "$OUT"
want=("$@")
n=0
for line in "${ALL[@]}"; do
  # shellcheck disable=SC2086
  set -- $line
  if ((${#want[@]})); then
    hit=0; for x in "${want[@]}"; do [ "$x" = "$1" ] && hit=1; done
    [ "$hit" = 1 ] || continue
  fi
  record "$@"
  n=$((n + 1))
done
((n)) || die "no such scenario: ${want[*]}"
log "done: $n capture(s) in $OUT"
