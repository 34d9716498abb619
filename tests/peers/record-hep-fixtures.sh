#!/usr/bin/env bash
# record-hep-fixtures.sh - records the real HEP packets in tests/data/hep/.
#
# For each HEP version (1, 2, 3): a private network namespace (its own
# loopback, so the fixed ports never clash with anything on the host), a
# HEP sink (socat) on 127.0.0.1:9060, tcpdump on lo, Kamailio
# (tests/peers/kamailio.cfg with -A HEP_VERSION=N: stateful proxy, siptrace
# trace_mode=1, capture id 2001) and one call from sipp's built-in UAC
# scenario (R-URI user 1000) to its built-in UAS:
#
#   sipp UAC 127.0.0.1:5061 -> Kamailio 127.0.0.1:5060 -> sipp UAS 127.0.0.1:5062
#                              `-> HEP vN -> 127.0.0.1:9060 (socat sink)
#
# From the tcpdump capture it writes the UDP payload of three HEP datagrams
# as kamailio-vN-1.hep (the INVITE Kamailio received from the UAC),
# kamailio-vN-2.hep (the 100 it answered with) and kamailio-vN-3.hep (the
# INVITE it relayed to the UAS), and prints the capture time of each: the
# tests in capture/tests/hep_real.rs check the HEP times against them,
# so update those times (and tests/data/hep/README.md) after a new
# recording.
#
# Usage (root, Debian 12):  bash tests/peers/record-hep-fixtures.sh [VERSION...]
#   no VERSION: 1 2 3. Env: OUT=output dir (default tests/data/hep),
#   INSTALL=0 to not apt-get, KEEP=1 to keep the work dir (logs) in $WORK.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$ROOT/tests/data/hep}
INSTALL=${INSTALL:-1}
WORK=${WORK:-$(mktemp -d /tmp/accurate-hep.XXXXXX)}
IP=127.0.0.1

log() { printf '[hep-fixtures] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, tcpdump)"

# ---------------------------------------------------------------- packages
need=()
command -v kamailio >/dev/null || need+=(kamailio)
command -v sipp     >/dev/null || need+=(sip-tester)     # Debian's name for SIPp
command -v tcpdump  >/dev/null || need+=(tcpdump)
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

nsx() { ip netns exec "$NS" "$@"; }
wait_until() {  # wait_until SECONDS cmd...
  local end=$(( $(date +%s) + $1 )); shift
  until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.05; done
}
bound() { nsx ss -Hln"$1" "sport = :$2" 2>/dev/null | grep -q .; }

# ---------------------------------------------------------------- one version
record() {
  local v=$1 w=$WORK/v$1
  rm -rf "$w"; mkdir -p "$w/run"
  NS=accurate-hep-$$-v$v
  ip netns add "$NS"
  nsx ip link set lo up

  # HEP sink, so the mirrored packets are not answered with ICMP port unreachable
  ip netns exec "$NS" socat -u UDP-RECV:9060,bind=$IP OPEN:/dev/null >"$w/sink.log" 2>&1 &
  PIDS+=($!); wait_until 5 bound u 9060 || die "v$v: socat did not bind udp 9060"

  ip netns exec "$NS" tcpdump -i lo -n -U --immediate-mode -Z root -s 0 -w "$w/raw.pcap" \
    "udp and (port 5060 or port 5061 or port 5062 or port 9060)" >"$w/tcpdump.log" 2>&1 &
  local tcpdump_pid=$!; PIDS+=($tcpdump_pid)
  wait_until 10 grep -q "listening on" "$w/tcpdump.log" || die "v$v: tcpdump: $(cat "$w/tcpdump.log")"

  ip netns exec "$NS" kamailio -f "$HERE/kamailio.cfg" -L "$KAM_MODDIR" -Y "$w/run" -DD -E \
    -A "CTL_SOCK=\"unix:$w/run/kamailio_ctl\"" -A "HEP_VERSION=$v" -A "HEP_CAPTURE_ID=2001" \
    >"$w/kamailio.log" 2>&1 &
  local kam_pid=$!; PIDS+=($kam_pid)
  wait_until 15 bound u 5060 || die "v$v: kamailio did not start: $(tail -20 "$w/kamailio.log")"

  # sipp's built-in UAS ends each call with a pause of a few seconds: it is
  # stopped once the UAC is done instead of waited for.
  ip netns exec "$NS" sipp -sn uas -i $IP -p 5062 -m 1 -nostdin -timeout 30 >"$w/uas.log" 2>&1 &
  local uas_pid=$!; PIDS+=($uas_pid)
  wait_until 10 bound u 5062 || die "v$v: sipp uas did not start: $(tail "$w/uas.log")"

  log "v$v: one call through Kamailio, HEPv$v over UDP"
  local rc=0
  nsx sipp -sn uac $IP:5060 -i $IP -p 5061 -s 1000 -m 1 -d 500 -nostdin -timeout 30 \
    -timeout_error >"$w/uac.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { tail -n 30 "$w/uac.log" >&2 || true; die "v$v: sipp uac rc=$rc"; }

  sleep 0.5   # let the last HEP packets drain
  stop_pid "$kam_pid"
  sleep 0.2
  stop_pid "$tcpdump_pid" INT
  teardown

  # (receive_fd EOF: a TCP worker noticing the main process stop, at shutdown)
  if grep -E ' (ERROR|CRITICAL): ' "$w/kamailio.log" | grep -v 'receive_fd(): EOF on' >&2; then
    die "v$v: kamailio logged errors (see above)"
  fi
  python3 - "$w/raw.pcap" "$v" "$OUT" <<'PY' || die "v$v: the three packets are not in the capture"
"""Picks the three HEP datagrams out of a classic pcap (Ethernet on lo)."""
import os, struct, sys

path, version, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(path, "rb").read()
magic = struct.unpack("<I", data[:4])[0]
if magic not in (0xA1B2C3D4, 0xA1B23C4D):
    sys.exit("not a little-endian classic pcap")
nano = magic == 0xA1B23C4D
if struct.unpack("<I", data[20:24])[0] != 1:
    sys.exit("link type is not Ethernet")

def hep_addr(buf):
    """(src port, dst port, SIP payload) of a HEP v1/v2/v3 packet."""
    if buf[:4] == b"HEP3":
        total, off, chunks = struct.unpack("!H", buf[4:6])[0], 6, {}
        while off + 6 <= total:
            _vendor, ctype, clen = struct.unpack("!HHH", buf[off:off + 6])
            chunks[ctype] = buf[off + 6:off + clen]
            off += clen
        return (struct.unpack("!H", chunks[7])[0], struct.unpack("!H", chunks[8])[0], chunks[15])
    if buf[0] not in (1, 2):
        raise ValueError("not HEP")
    # v1/v2: version, header length (16 for IPv4), family, protocol, ports
    # (network order), addresses; v2 then has a 12-byte time header.
    sport, dport = struct.unpack("!HH", buf[4:8])
    return (sport, dport, buf[buf[1] + (12 if buf[0] == 2 else 0):])

wanted = [  # (file suffix, src port, dst port, start of the SIP message)
    (1, 5061, 5060, b"INVITE "),
    (2, 5060, 5061, b"SIP/2.0 100 "),
    (3, 5060, 5062, b"INVITE "),
]
found = {}
off = 24
while off + 16 <= len(data):
    sec, frac, incl, _orig = struct.unpack("<IIII", data[off:off + 16])
    frame = data[off + 16:off + 16 + incl]
    off += 16 + incl
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 17:
        continue
    udp = ip[ihl:]
    if struct.unpack("!H", udp[2:4])[0] != 9060:
        continue
    payload = udp[8:]
    try:
        sport, dport, sip = hep_addr(payload)
    except (ValueError, KeyError, IndexError, struct.error):
        continue
    for n, sp, dp, start in wanted:
        if n not in found and (sport, dport) == (sp, dp) and sip.startswith(start):
            found[n] = (sec, frac, payload)
if len(found) != 3:
    sys.exit("found %s of 3" % sorted(found))
for n in sorted(found):
    sec, frac, payload = found[n]
    name = os.path.join(out, "kamailio-v%d-%d.hep" % (version, n))
    with open(name, "wb") as f:
        f.write(payload)
    stamp = "%d.%09d" % (sec, frac) if nano else "%d.%06d" % (sec, frac)
    print("[hep-fixtures] %s: %d bytes, captured at %s" % (name, len(payload), stamp), file=sys.stderr)
PY
}

versions=("$@")
((${#versions[@]})) || versions=(1 2 3)
mkdir -p "$OUT"
for v in "${versions[@]}"; do
  case "$v" in 1|2|3) record "$v" ;; *) die "no such HEP version: $v" ;; esac
done
log "done: HEP v${versions[*]} in $OUT"
