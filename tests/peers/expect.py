#!/usr/bin/env python3
"""expect.py CAPTURE [--scenario NAME ...] > CAPTURE.expect.json

Expected results for a pcap/pcapng fixture, computed from tshark alone
(independently of AccuRate):

* raw SIP on the wire (HEP port 9060 excluded): tshark's SIP dissector, read
  as PDML so that several SIP messages in one TCP segment count separately;
* HEP copies (UDP or TCP port 9060; tshark 4.0 has no HEP dissector): the
  UDP payloads / the reassembled TCP byte stream, split into HEP packets here
  (HEPv3 length field, HEPv1/v2 header length byte).

Also lists every raw SIP message (`messages`: frame time, addresses, Call-ID,
start line) and every HEP copy (`hep_messages`: HEP version, the HEP header's
own timestamp (null for HEPv1, which has none) and addresses, the capture's
frame time, capture id, Call-ID, start line).

Per Call-ID: SIP messages on the wire, HEP copies, setup time (first INVITE),
answer time (first 200 to an INVITE without To tag), end time (first BYE),
duration_ns = end - answer (0 when never answered), final code (first final
response to the last INVITE without To tag, i.e. after a 407 retry the
retried INVITE's). Times: integer ns since the epoch and RFC 3339 UTC with
microseconds (the `accurate sniff --format json` `ts` format).
"""
import argparse
import collections
import datetime
import json
import os
import re
import socket
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

HEP_PORT = 9060


def tshark(*args):
    return subprocess.run(["tshark", *args], check=True, capture_output=True).stdout


def epoch_ns(s):
    """'1700000000.123456789' -> int ns, without going through float."""
    sec, _, frac = s.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def rfc3339_us(ns):
    t = datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (ns % 1_000_000_000 // 1000)


def fields(proto):
    out = collections.defaultdict(list)
    for f in proto.iter("field"):
        name = f.get("name")
        if name:
            out[name].append(f.get("show"))
    return out


def sip_messages(path):
    """One dict per SIP message on the wire (not HEP), in capture order."""
    pdml = tshark("-r", path, "-2", "-Y",
                  "sip && !(udp.port==%d) && !(tcp.port==%d)" % (HEP_PORT, HEP_PORT),
                  "-T", "pdml")
    msgs, frames = [], 0
    for pkt in ET.fromstring(pdml).iter("packet"):
        frames += 1
        ts = src = dst = transport = None
        sport = dport = None
        for proto in pkt.findall("proto"):
            name = proto.get("name")
            f = fields(proto)
            if name == "frame":
                ts = epoch_ns(f["frame.time_epoch"][0])
            elif name in ("ip", "ipv6"):
                src = f[name + ".src"][0]
                dst = f[name + ".dst"][0]
            elif name in ("udp", "tcp"):
                transport = name
                sport = f[name + ".srcport"][0]
                dport = f[name + ".dstport"][0]
            elif name == "sip":
                m = {
                    "ts_ns": ts,
                    "frame": int(pkt.find("proto[@name='geninfo']/field[@name='num']").get("show")),
                    "src": "%s:%s" % (src, sport),
                    "dst": "%s:%s" % (dst, dport),
                    "transport": transport,
                    "call_id": f["sip.Call-ID"][0],
                    "method": (f.get("sip.Method") or [None])[0],
                    "status": int(f["sip.Status-Code"][0]) if f.get("sip.Status-Code") else None,
                    "cseq_method": f["sip.CSeq.method"][0],
                    "cseq": int(f["sip.CSeq.seq"][0]),
                    "to_tag": (f.get("sip.to.tag") or [None])[0],
                }
                m["first_line"] = first_line(m)
                m["start_line"] = (f.get("sip.Request-Line") or f.get("sip.Status-Line"))[0]
                msgs.append(m)
    return msgs, frames


def first_line(m):
    if m["method"]:
        return m["method"]
    return "%d/%s" % (m["status"], m["cseq_method"])


def hep_packets(path):
    """[(ts_ns, raw HEP bytes)] from UDP datagrams / TCP streams to port 9060."""
    out = []
    udp = tshark("-r", path, "-Y", "udp.dstport==%d" % HEP_PORT, "-T", "fields",
                 "-e", "frame.time_epoch", "-e", "udp.payload")
    for line in udp.decode().splitlines():
        ts, payload = line.split("\t")
        out.append((epoch_ns(ts), bytes.fromhex(payload.replace(":", ""))))
    tcp = tshark("-r", path, "-Y", "tcp.dstport==%d && tcp.len>0" % HEP_PORT, "-T", "fields",
                 "-e", "frame.time_epoch", "-e", "tcp.stream", "-e", "tcp.payload",
                 "-o", "tcp.desegment_tcp_streams:FALSE")
    streams = collections.defaultdict(bytearray)
    for line in tcp.decode().splitlines():
        ts, stream, payload = line.split("\t")
        buf = streams[stream]
        buf += bytes.fromhex(payload.replace(":", ""))
        while True:
            n = hep_len(buf)
            if n is None or n > len(buf):
                break
            out.append((epoch_ns(ts), bytes(buf[:n])))
            del buf[:n]
    for stream, rest in streams.items():
        if rest:
            raise SystemExit("TCP stream %s: %d trailing bytes not a whole HEP packet" % (stream, len(rest)))
    return out


def hep_len(buf):
    if len(buf) >= 6 and buf[:4] == b"HEP3":
        return struct.unpack("!H", buf[4:6])[0]
    if len(buf) >= 2 and buf[0] in (1, 2):
        raise SystemExit("HEPv1/v2 over TCP has no total length; not supported")
    if len(buf) >= 6:
        raise SystemExit("not a HEP packet: %r" % bytes(buf[:8]))
    return None


def hep_decode(raw):
    """-> dict: version, ts_ns (None for HEPv1), src, dst, transport, capture_id, payload"""
    if raw[:4] == b"HEP3":
        total = struct.unpack("!H", raw[4:6])[0]
        off, c = 6, {}
        while off + 6 <= total:
            vendor, ctype, clen = struct.unpack("!HHH", raw[off:off + 6])
            if clen < 6:
                raise SystemExit("bad HEP3 chunk")
            if vendor == 0:
                c[ctype] = raw[off + 6:off + clen]
            off += clen
        u8 = lambda t: c[t][0]
        u16 = lambda t: struct.unpack("!H", c[t])[0]
        u32 = lambda t: struct.unpack("!I", c[t])[0]
        if 3 in c:
            sip, dip = socket.inet_ntop(socket.AF_INET, c[3]), socket.inet_ntop(socket.AF_INET, c[4])
        else:
            sip, dip = "[%s]" % socket.inet_ntop(socket.AF_INET6, c[5]), "[%s]" % socket.inet_ntop(socket.AF_INET6, c[6])
        return {
            "version": 3,
            "ts_ns": u32(9) * 1_000_000_000 + u32(10) * 1000,
            "src": "%s:%d" % (sip, u16(7)),
            "dst": "%s:%d" % (dip, u16(8)),
            "transport": IP_PROTO.get(u8(2), str(u8(2))),
            "capture_id": u32(12) if 12 in c else None,
            "node": c[19].decode() if 19 in c else None,
            "payload": c.get(15, b""),
        }
    if raw[0] in (1, 2):
        # version, header length (8 + addresses), family, proto, sport, dport,
        # src, dst, [v2: struct hep_timehdr as Kamailio copies it: tv_sec and
        # tv_usec little-endian, capture id host order, 2 bytes padding]
        v, hlen, family, proto = raw[0], raw[1], raw[2], raw[3]
        sport, dport = struct.unpack("!HH", raw[4:8])
        if family == socket.AF_INET:
            sip, dip, off = socket.inet_ntop(socket.AF_INET, raw[8:12]), socket.inet_ntop(socket.AF_INET, raw[12:16]), 16
        else:
            sip = "[%s]" % socket.inet_ntop(socket.AF_INET6, raw[8:24])
            dip = "[%s]" % socket.inet_ntop(socket.AF_INET6, raw[24:40])
            off = 40
        ts = cid = None
        if v == 2:
            sec, usec, cid = struct.unpack("<IIH", raw[off:off + 10])
            ts = sec * 1_000_000_000 + usec * 1000
        return {
            "version": v, "ts_ns": ts, "src": "%s:%d" % (sip, sport), "dst": "%s:%d" % (dip, dport),
            "transport": IP_PROTO.get(proto, str(proto)), "capture_id": cid, "node": None,
            "payload": raw[hlen + (12 if v == 2 else 0):],
        }
    raise SystemExit("unknown HEP packet %r" % raw[:8])


IP_PROTO = {17: "udp", 6: "tcp", 132: "sctp"}
CALL_ID_RE = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.I | re.M)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--calls", type=int, default=None)
    ap.add_argument("--talk-ms", type=int, default=None)
    ap.add_argument("--sip-transport", default=None)
    ap.add_argument("--hep-transport", default=None)
    ap.add_argument("--hep-version", type=int, default=None)
    a = ap.parse_args()

    msgs, frames = sip_messages(a.capture)
    heps = hep_packets(a.capture)
    hep_versions = collections.Counter()
    hep_per_call = collections.Counter()
    hep_list = []
    for frame_ts, raw in heps:
        h = hep_decode(raw)
        hep_versions[h["version"]] += 1
        payload = h.pop("payload")
        m = CALL_ID_RE.search(payload)
        cid = m.group(1).decode() if m else None
        hep_per_call[cid] += 1
        hep_list.append(dict(h, frame_ts_ns=frame_ts, call_id=cid,
                             start_line=payload.split(b"\r\n", 1)[0].decode("utf-8", "replace")))

    calls = collections.OrderedDict()
    for m in msgs:
        calls.setdefault(m["call_id"], []).append(m)
    out_calls = []
    for cid, ms in calls.items():
        initial = [m for m in ms if m["method"] == "INVITE" and not m["to_tag"]]
        setup = initial[0]["ts_ns"] if initial else None
        last_cseq = initial[-1]["cseq"] if initial else None
        final = next((m for m in ms if m["status"] and m["status"] >= 200
                      and m["cseq_method"] == "INVITE" and m["cseq"] == last_cseq), None)
        answer = next((m["ts_ns"] for m in ms if m["status"] == 200 and m["cseq_method"] == "INVITE"
                       and m["cseq"] == last_cseq), None)
        end = next((m["ts_ns"] for m in ms if m["method"] == "BYE"), None)
        duration = end - answer if (answer is not None and end is not None) else 0
        out_calls.append({
            "call_id": cid,
            "sip_messages": len(ms),
            "hep_messages": hep_per_call.get(cid, 0),
            "first_lines": dict(collections.Counter(m["first_line"] for m in ms)),
            "setup_ns": setup,
            "setup": rfc3339_us(setup) if setup is not None else None,
            "answer_ns": answer,
            "answer": rfc3339_us(answer) if answer is not None else None,
            "end_ns": end,
            "end": rfc3339_us(end) if end is not None else None,
            "duration_ns": duration,
            "final_code": final["status"] if final else None,
            "answered": answer is not None,
        })

    fmt = tshark("-r", a.capture, "-c", "1", "-T", "fields", "-e", "frame.encap_type")
    capinfos = subprocess.run(["capinfos", "-t", "-M", a.capture], capture_output=True, text=True).stdout
    ftype = re.search(r"File type:\s*(.*)", capinfos)
    doc = {
        "file": os.path.basename(a.capture),
        "file_type": ftype.group(1).strip() if ftype else None,
        "scenario": a.scenario,
        "generated_by": "tests/peers/expect.py (tshark %s)" % tshark("-v").decode().split()[2],
        "recorded": {"calls": a.calls, "talk_ms": a.talk_ms, "sip_transport": a.sip_transport,
                     "hep_transport": a.hep_transport, "hep_version": a.hep_version},
        "frames_total": int(tshark("-r", a.capture, "-T", "fields", "-e", "frame.number").decode().count("\n")),
        "encap_type": int(fmt.decode().strip() or 0),
        "sip_frames": frames,
        "sip_messages": len(msgs),
        "hep": {
            "port": HEP_PORT,
            "messages": len(heps),
            "versions": {str(k): v for k, v in sorted(hep_versions.items())},
            "first_ns": heps[0][0] if heps else None,
        },
        "calls": out_calls,
        "messages": [
            {k: m[k] for k in ("frame", "ts_ns", "src", "dst", "transport", "call_id", "start_line")}
            for m in msgs
        ],
        "hep_messages": hep_list,
    }
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
