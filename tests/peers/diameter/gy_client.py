#!/usr/bin/env python3
"""A Gy (RFC 4006 / 3GPP TS 32.299) client for AccuRate's Diameter agent
tests, built on python-diameter's message codec (`pip install
python-diameter`).

Usage: gy_client.py HOST:PORT

Reads one JSON command a line on stdin and writes one JSON result a line on
stdout. Each command may name its connection (`conn`, default `main`): one
process holds several peer connections. A reader thread answers what AccuRate sends on its own at once: a DWR with a DWA, an ASR with an ASA (2001), both remembered for the
`wait_dwr` and `wait_asr` commands. Commands (`op`):

  connect               open the TCP connection (again)
  cer                   CER (Auth-Application-Id 4); the CEA's fields
  dwr / dpr             DWR / DPR; the answer's Result-Code
  ccr                   a CCR; keys: session, type (1-4), number, account,
                        called, time / octets / units (requested),
                        used_time / used_octets / used_units, mscc (bool),
                        rating_group, imsi (the END_USER_IMSI id),
                        unknown_m (add an M-bit AVP of vendor 99999)
  raw_ccr_before_cer    a CCR on a connection without CER
  wait_asr              the next ASR's Session-Id (answered ASA 2001)
  wait_dwr              waits for AccuRate's DWR (answered DWA 2001)
  wait_dpr              the Disconnect-Cause of AccuRate's DPR (answered DPA)
  drop                  closes the connection without a DPR
"""
import json
import socket
import sys
import threading

from diameter.message import Message
from diameter.message.avp import Avp
from diameter.message.avp.grouped import (
    ImsInformation, MultipleServicesCreditControl, RequestedServiceUnit,
    ServiceInformation, SubscriptionId, UsedServiceUnit)
from diameter.message.commands import (
    AbortSessionAnswer, CapabilitiesExchangeRequest, CreditControlRequest,
    DeviceWatchdogAnswer, DeviceWatchdogRequest, DisconnectPeerAnswer,
    DisconnectPeerRequest)

ORIGIN_HOST = "gy-client.test"
ORIGIN_REALM = "test"
WAIT = 10.0


class Conn:
    """One connection; a reader thread answers AccuRate's own requests at
    once (so an idle client still answers watchdogs) and queues answers."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        self.sock.settimeout(None)
        self.hop = 0x1000
        self.cond = threading.Condition()
        self.answers = []
        self.asrs = []
        self.dwrs = 0
        self.dprs = []
        self.closed = False
        self.wlock = threading.Lock()
        threading.Thread(target=self.reader, daemon=True).start()

    def next_ids(self):
        self.hop += 1
        return self.hop, 0x7000000 + self.hop

    def send(self, msg):
        with self.wlock:
            self.sock.sendall(msg.as_bytes())

    def reader(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += chunk
            while len(buf) >= 4:
                length = int.from_bytes(buf[1:4], "big")
                if len(buf) < length:
                    break
                raw, buf = buf[:length], buf[length:]
                m = Message.from_bytes(raw)
                if m.header.is_request:
                    self.serve_request(m)
                else:
                    with self.cond:
                        self.answers.append(m)
                        self.cond.notify_all()

    def serve_request(self, msg):
        """Answers AccuRate's own requests."""
        if msg.header.command_code == 280:
            a = DeviceWatchdogAnswer()
            a.header.hop_by_hop_identifier = msg.header.hop_by_hop_identifier
            a.header.end_to_end_identifier = msg.header.end_to_end_identifier
            a.result_code = 2001
            a.origin_host = ORIGIN_HOST.encode()
            a.origin_realm = ORIGIN_REALM.encode()
            self.send(a)
            with self.cond:
                self.dwrs += 1
                self.cond.notify_all()
        elif msg.header.command_code == 282:
            a = DisconnectPeerAnswer()
            a.header.hop_by_hop_identifier = msg.header.hop_by_hop_identifier
            a.header.end_to_end_identifier = msg.header.end_to_end_identifier
            a.result_code = 2001
            a.origin_host = ORIGIN_HOST.encode()
            a.origin_realm = ORIGIN_REALM.encode()
            self.send(a)
            with self.cond:
                self.dprs.append(msg.disconnect_cause)
                self.cond.notify_all()
        elif msg.header.command_code == 274:
            a = AbortSessionAnswer()
            a.header.hop_by_hop_identifier = msg.header.hop_by_hop_identifier
            a.header.end_to_end_identifier = msg.header.end_to_end_identifier
            a.header.application_id = 4
            a.session_id = msg.session_id
            a.result_code = 2001
            a.origin_host = ORIGIN_HOST.encode()
            a.origin_realm = ORIGIN_REALM.encode()
            self.send(a)
            with self.cond:
                self.asrs.append({
                    "session": msg.session_id,
                    "auth_application_id": msg.auth_application_id,
                    "destination_host": msg.destination_host.decode() if msg.destination_host else None,
                })
                self.cond.notify_all()

    def request(self, msg):
        hop, e2e = self.next_ids()
        msg.header.hop_by_hop_identifier = hop
        msg.header.end_to_end_identifier = e2e
        self.send(msg)
        with self.cond:
            self.cond.wait_for(lambda: self.answers or self.closed, WAIT)
            a = self.answers.pop(0) if self.answers else None
        return a, hop, e2e

    def wait_for(self, what, seconds):
        with self.cond:
            return self.cond.wait_for(what, seconds)


def units(m, prefix=""):
    out = {}
    if m is None:
        return out
    for k in ("cc_time", "cc_total_octets", "cc_service_specific_units"):
        v = getattr(m, k, None)
        if v is not None:
            out[prefix + k] = v
    return out


def answer_fields(a, hop, e2e):
    if a is None:
        return {"error": "no answer"}
    out = {
        "command": a.header.command_code,
        "error_bit": bool(a.header.is_error),
        "ids_echoed": a.header.hop_by_hop_identifier == hop and a.header.end_to_end_identifier == e2e,
        "result_code": a.result_code,
    }
    for k in ("session_id", "cc_request_type", "cc_request_number", "auth_application_id",
              "vendor_id", "product_name", "validity_time"):
        v = getattr(a, k, None) if hasattr(a, k) else None
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        if v is not None:
            out[k] = v
    if hasattr(a, "origin_host") and a.origin_host is not None:
        out["origin_host"] = a.origin_host.decode()
    if hasattr(a, "host_ip_address") and a.host_ip_address is not None:
        out["host_ip_address"] = str(a.host_ip_address)
    if getattr(a, "granted_service_unit", None) is not None:
        out.update(units(a.granted_service_unit, "gsu_"))
    if getattr(a, "final_unit_indication", None) is not None:
        out["final_unit_action"] = a.final_unit_indication.final_unit_action
    msccs = getattr(a, "multiple_services_credit_control", None) or []
    if msccs:
        m = msccs[0]
        out["mscc_rating_group"] = m.rating_group
        out["mscc_validity_time"] = m.validity_time
        out.update(units(m.granted_service_unit, "mscc_gsu_"))
        if m.final_unit_indication is not None:
            out["mscc_final_unit_action"] = m.final_unit_indication.final_unit_action
    failed = getattr(a, "failed_avp", None)
    if isinstance(failed, list):
        failed = failed[0] if failed else None
    if failed is not None:
        out["failed_avp_codes"] = [x.code for x in failed.additional_avps]
    return out


def ccr(c, cmd):
    r = CreditControlRequest()
    r.header.application_id = 4
    r.session_id = cmd["session"]
    r.origin_host = ORIGIN_HOST.encode()
    r.origin_realm = ORIGIN_REALM.encode()
    r.destination_realm = b"accurate.test"
    r.auth_application_id = 4
    r.service_context_id = "32260@3gpp.org"
    r.cc_request_type = cmd["type"]
    r.cc_request_number = cmd.get("number", 0)
    r.subscription_id = [
        SubscriptionId(subscription_id_type=1, subscription_id_data=cmd.get("imsi", "262019999999999")),
        SubscriptionId(subscription_id_type=0, subscription_id_data=cmd["account"]),
    ]
    requested = RequestedServiceUnit(
        cc_time=cmd.get("time"), cc_total_octets=cmd.get("octets"),
        cc_service_specific_units=cmd.get("units"))
    has_req = any(cmd.get(k) is not None for k in ("time", "octets", "units"))
    used = UsedServiceUnit(
        cc_time=cmd.get("used_time"), cc_total_octets=cmd.get("used_octets"),
        cc_service_specific_units=cmd.get("used_units"))
    has_used = any(cmd.get(k) is not None for k in ("used_time", "used_octets", "used_units"))
    if cmd.get("mscc"):
        m = MultipleServicesCreditControl(rating_group=cmd.get("rating_group", 1))
        if has_req:
            m.requested_service_unit = requested
        if has_used:
            m.used_service_unit = [used]
        r.multiple_services_indicator = 1
        r.multiple_services_credit_control = [m]
    else:
        if has_req:
            r.requested_service_unit = requested
        if has_used:
            r.used_service_unit = [used]
    if cmd.get("called"):
        ims = ImsInformation(node_functionality=6, role_of_node=0,
                             calling_party_address=["tel:+" + cmd["account"]],
                             called_party_address=cmd["called"])
        r.service_information = ServiceInformation(ims_information=ims)
    if cmd.get("unknown_m"):
        # code 4242 of vendor 99999, flags V and M, 16 bytes: no dictionary has it
        raw = (4242).to_bytes(4, "big") + bytes([0xC0]) + (16).to_bytes(3, "big") \
            + (99999).to_bytes(4, "big") + b"what"
        r.append_avp(Avp.from_bytes(raw))
    a, hop, e2e = c.request(r)
    return answer_fields(a, hop, e2e)


def base_request(cls):
    r = cls()
    r.origin_host = ORIGIN_HOST.encode()
    r.origin_realm = ORIGIN_REALM.encode()
    return r


def main():
    addr = sys.argv[1]
    conns = {}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        name = cmd.get("conn", "main")
        c = conns.get(name)
        try:
            if op == "connect":
                conns[name] = Conn(addr)
                out = {"ok": True}
            elif op == "cer":
                r = base_request(CapabilitiesExchangeRequest)
                r.host_ip_address = "127.0.0.1"
                r.vendor_id = 0
                r.product_name = "gy_client.py"
                r.auth_application_id = [4]
                r.supported_vendor_id = [10415]
                a, hop, e2e = c.request(r)
                out = answer_fields(a, hop, e2e)
            elif op == "dwr":
                a, hop, e2e = c.request(base_request(DeviceWatchdogRequest))
                out = answer_fields(a, hop, e2e)
            elif op == "dpr":
                r = base_request(DisconnectPeerRequest)
                r.disconnect_cause = 0
                a, hop, e2e = c.request(r)
                out = answer_fields(a, hop, e2e)
                out["closed_after"] = c.wait_for(lambda: c.closed, 5.0)
            elif op == "ccr":
                out = ccr(c, cmd)
            elif op == "raw_ccr_before_cer":
                out = ccr(c, cmd)
                out["closed_after"] = c.wait_for(lambda: c.closed, 5.0)
            elif op == "wait_asr":
                ok = c.wait_for(lambda: bool(c.asrs), cmd.get("seconds", WAIT))
                out = c.asrs.pop(0) if ok else {"error": "no ASR"}
            elif op == "wait_dwr":
                seen = c.dwrs
                ok = c.wait_for(lambda: c.dwrs > seen, cmd.get("seconds", WAIT))
                out = {"answered_dwr": ok}
            elif op == "wait_dpr":
                ok = c.wait_for(lambda: bool(c.dprs), cmd.get("seconds", WAIT))
                out = {"disconnect_cause": c.dprs[0]} if ok else {"error": "no DPR"}
            elif op == "drop":
                c.sock.shutdown(socket.SHUT_RDWR)
                c.sock.close()
                out = {"ok": True}
            else:
                out = {"error": "unknown op " + op}
        except Exception as e:  # reported to the test, which fails on it
            out = {"error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
