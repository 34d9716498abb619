#!/usr/bin/env bash
# Installs what AccuRate builds and tests with on a fresh Debian 12 machine:
# libpcap-dev to build; Kamailio, sipp, tcpdump, tshark and sngrep for the
# real-peer tests and the side-by-side benchmarks. Idempotent; quiet when all
# is there. Needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
if [ "${ACCURATE_SETUP_MINIMAL:-0}" != 1 ]; then
  command -v kamailio >/dev/null || need+=(kamailio)
  # evapi (the Kamailio agent's real-peer test) and json
  dpkg -s kamailio-extra-modules >/dev/null 2>&1 || need+=(kamailio-extra-modules)
  dpkg -s kamailio-json-modules >/dev/null 2>&1 || need+=(kamailio-json-modules)
  command -v sipp >/dev/null || need+=(sip-tester)
  command -v tcpdump >/dev/null || need+=(tcpdump)
  command -v tshark >/dev/null || need+=(tshark)
  command -v sngrep >/dev/null || need+=(sngrep)
  command -v ss >/dev/null || need+=(iproute2)
  command -v ip >/dev/null || need+=(iproute2)
  # RADIUS: radclient and Debian's FreeRADIUS dictionaries (tests/serve_radius.rs)
  dpkg -s freeradius-utils freeradius-common >/dev/null 2>&1 || need+=(freeradius-utils freeradius-common)
fi
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # tshark asks whether non-root users may capture; the default (no) is fine.
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# pyrad: the RADIUS NAS of tests/serve_radius.rs (tests/peers/radius/nas.py)
[ "${ACCURATE_SETUP_MINIMAL:-0}" = 1 ] || python3 -c 'import pyrad' 2>/dev/null || python3 -m pip install --quiet pyrad
# python-diameter: the Gy client of tests/serve_diameter.rs (pip; Debian's own pip needs --break-system-packages)
[ "${ACCURATE_SETUP_MINIMAL:-0}" = 1 ] || python3 -c 'import diameter.message' 2>/dev/null || python3 -m pip install -q python-diameter 2>/dev/null || python3 -m pip install -q --break-system-packages python-diameter
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (rustup) first" >&2; exit 1; }
