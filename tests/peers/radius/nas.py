#!/usr/bin/env python3
"""A RADIUS NAS for tests/serve_radius.rs, written with pyrad.

    nas.py DICT dynauth SECRET
        Listens on an ephemeral UDP port for Disconnect-Requests (RFC 5176),
        prints "listening PORT", then one JSON line per request received
        (its attributes, and whether its Request Authenticator is right),
        answering each with a Disconnect-ACK.

    nas.py DICT send SERVER:PORT SECRET JSON
        Sends the packets JSON describes (a list of {"code": "auth"|"acct",
        "attrs": {...}, "copies": N, "message_authenticator": bool,
        "password": "...", "chap": "..."}) one after the other, each copy the
        very same bytes (same identifier and authenticator: a NAS's
        retransmission), and prints one JSON line per reply (or
        {"timeout": true}).
"""
import hashlib
import json
import os
import socket
import sys

from pyrad import dictionary, packet


def load(path):
    # pyrad resolves $INCLUDE relative to the working directory.
    os.chdir(os.path.dirname(os.path.abspath(path)))
    return dictionary.Dictionary(os.path.basename(path))


def reply_json(raw, req):
    rep = packet.Packet(packet=raw, dict=req.dict, secret=req.secret)
    attrs = {}
    for k in rep.keys():
        v = rep[k]
        attrs[str(k)] = [x.hex() if isinstance(x, bytes) else x for x in v]
    return {
        "code": rep.code,
        "id": rep.id,
        "verified": req.VerifyReply(rep, raw),
        "attrs": attrs,
    }


def send(d, server, secret, spec):
    host, port = server.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(float(os.environ.get("NAS_TIMEOUT", "3")))
    for i, p in enumerate(spec):
        attrs = p.get("attrs", {})
        if p["code"] == "acct":
            req = packet.AcctPacket(id=(i * 7 + 3) % 256, secret=secret.encode(), dict=d)
        else:
            req = packet.AuthPacket(id=(i * 7 + 3) % 256, secret=secret.encode(), dict=d,
                                    authenticator=packet.Packet.CreateAuthenticator())
        for k, v in attrs.items():
            req[k] = v
        if "password" in p:
            req["User-Password"] = req.PwCrypt(p["password"])
        if "chap" in p:
            ident = b"\x07"
            challenge = req.authenticator
            req["CHAP-Password"] = ident + hashlib.md5(ident + p["chap"].encode() + challenge).digest()
        if p.get("message_authenticator"):
            req.add_message_authenticator()
        raw = req.RequestPacket()
        for _ in range(p.get("copies", 1)):
            sock.sendto(raw, (host, int(port)))
            try:
                data, _ = sock.recvfrom(4096)
                print(json.dumps(reply_json(data, req)), flush=True)
            except socket.timeout:
                print(json.dumps({"timeout": True}), flush=True)


def dynauth(d, secret):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print("listening", sock.getsockname()[1], flush=True)
    while True:
        data, peer = sock.recvfrom(4096)
        req = packet.CoAPacket(packet=data, secret=secret.encode(), dict=d)
        ok = req.VerifyCoARequest()
        attrs = {str(k): req[k] for k in req.keys()}
        print(json.dumps({"code": req.code, "verified": ok, "attrs": attrs}), flush=True)
        rep = req.CreateReply()
        rep.code = packet.DisconnectACK
        sock.sendto(rep.ReplyPacket(), peer)


def main():
    d = load(sys.argv[1])
    if sys.argv[2] == "dynauth":
        dynauth(d, sys.argv[3])
    else:
        send(d, sys.argv[3], sys.argv[4], json.loads(sys.argv[5]))


if __name__ == "__main__":
    main()
