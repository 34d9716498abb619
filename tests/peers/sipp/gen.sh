#!/usr/bin/env bash
# gen.sh - writes the sipp scenario XMLs of tests/peers/sipp/ (UAC and UAS
# side of each fixture scenario). The XMLs are committed; re-run this after
# editing it:  bash tests/peers/sipp/gen.sh
#
# Topology: sipp UAC 127.0.0.1:5061 -> Kamailio 127.0.0.1:5060 -> sipp UAS
# 127.0.0.1:5062. The UAC follows Record-Route ([routes], [next_url]); the UAS
# sends its own in-dialog requests (BYE) through Kamailio with the route set.
#
# The UAC sides are written twice: here with the caller 4971112345 (the
# captures), and in ../e2e/sipp/ with the caller from the first field of
# sipp's -inf file ([field0]: the e2e test's accounts 1001-1003).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
OUTDIR=.
CALLER=4971112345
AUTH_USER=$CALLER   # (sipp cannot nest [field0] in [authentication])

SDP_A='      v=0
      o=alice 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 0 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000'
SDP_A2='      v=0
      o=alice 53655765 2353687638 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000'
SDP_B='      v=0
      o=bob 2890844527 2890844527 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000'

body() { # $1 sdp text or empty
  if [ -n "$1" ]; then
    printf '      Content-Type: application/sdp\n      Content-Length: [len]\n\n%s\n' "$1"
  else
    printf '      Content-Length: 0\n'
  fi
}

# initial INVITE from the UAC: $1 CSeq number, $2 extra header lines (or empty)
invite() {
  cat <<EOF
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Alice" <sip:$CALLER@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: $1 INVITE
      Contact: <sip:$CALLER@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      User-Agent: accurate-peers sipp UAC
$2$(body "$SDP_A")

    ]]>
  </send>

EOF
}

# in-dialog request from the UAC along the route set: $1 method, $2 CSeq, $3 sdp or empty
uac_req() {
  local retr=' retrans="500"'
  [ "$1" = ACK ] && retr=''
  cat <<EOF
  <send$retr>
    <![CDATA[

      $1 [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Alice" <sip:$CALLER@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: $2 $1
      Contact: <sip:$CALLER@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      User-Agent: accurate-peers sipp UAC
$(body "${3:-}")

    ]]>
  </send>

EOF
}

# ACK for a negative final response: hop by hop, same Via branch as the INVITE
uac_ack_neg() { # $1 CSeq
  cat <<EOF
  <send>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "Alice" <sip:$CALLER@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: $1 ACK
      Max-Forwards: 70
      User-Agent: accurate-peers sipp UAC
      Content-Length: 0

    ]]>
  </send>

EOF
}

# CANCEL of the pending INVITE (Via copied from the last provisional response)
uac_cancel() {
  cat <<EOF
  <send retrans="500">
    <![CDATA[

      CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "Alice" <sip:$CALLER@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      User-Agent: accurate-peers sipp UAC
      Content-Length: 0

    ]]>
  </send>

EOF
}

# response of the UAS to the last request: $1 code, $2 reason, $3 sdp or empty,
# $4 To: "tag" adds our tag, "keep" copies the request's To (in-dialog requests)
uas_resp() {
  local to='[last_To:];tag=[pid]SIPpTag01[call_number]'
  [ "$4" = keep ] && to='[last_To:]'
  cat <<EOF
  <send>
    <![CDATA[

      SIP/2.0 $1 $2
      [last_Via:]
      [last_From:]
      $to
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      User-Agent: accurate-peers sipp UAS
$(body "${3:-}")

    ]]>
  </send>

EOF
}

# 487 to the INVITE after a CANCEL: Via/From/To/CSeq saved from the INVITE
# (the INVITE came through Kamailio: exactly two Via headers)
uas_487() {
  cat <<'EOF'
  <send>
    <![CDATA[

      SIP/2.0 487 Request Terminated
      Via:[$inv_via1]
      Via:[$inv_via2]
      From:[$inv_from]
      To:[$inv_to];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq:[$inv_cseq]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      User-Agent: accurate-peers sipp UAS
      Content-Length: 0

    ]]>
  </send>

EOF
}

# BYE from the UAS (callee hangs up), through Kamailio along the route set
uas_bye() {
  cat <<'EOF'
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From:[$inv_to_val];tag=[pid]SIPpTag01[call_number]
      To:[$inv_from_val]
      [last_Call-ID:]
      CSeq: 1 BYE
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      User-Agent: accurate-peers sipp UAS
      Content-Length: 0

    ]]>
  </send>

EOF
}

# UAC's 200 to the callee's BYE
uac_resp_bye() {
  cat <<EOF
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:$CALLER@[local_ip]:[local_port];transport=[transport]>
      User-Agent: accurate-peers sipp UAC
      Content-Length: 0

    ]]>
  </send>

EOF
}

recv() { printf '  <recv %s="%s"%s/>\n\n' "$1" "$2" "${3:-}"; }
pause() { printf '  <pause milliseconds="%s"/>\n\n' "$1"; }
# the UAS's first recv: INVITE, keeps the route set and saves the headers a
# 487 or a BYE needs later
uas_recv_invite() { # $1: "" | cancel (save headers for the 487) | bye (for the callee's BYE)
  local act=""
  case "${1:-}" in
    cancel) act='      <ereg regexp=".*" search_in="hdr" header="Via:" occurrence="1" check_it="true" assign_to="inv_via1"/>
      <ereg regexp=".*" search_in="hdr" header="Via:" occurrence="2" check_it="true" assign_to="inv_via2"/>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="inv_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="inv_to"/>
      <ereg regexp=".*" search_in="hdr" header="CSeq:" check_it="true" assign_to="inv_cseq"/>' ;;
    bye) act='      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="inv_from_val"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="inv_to_val"/>' ;;
  esac
  if [ -n "$act" ]; then
    printf '  <recv request="INVITE" crlf="true" rrs="true">\n    <action>\n%s\n    </action>\n  </recv>\n\n' "$act"
  else
    printf '  <recv request="INVITE" crlf="true" rrs="true"/>\n\n'
  fi
}

scenario() { # $1 file, $2 description; body on stdin
  {
    printf '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
    printf '<!-- generated by tests/peers/sipp/gen.sh, do not edit -->\n'
    printf '<!-- %s -->\n<scenario name="%s">\n\n' "$2" "$1"
    cat
    printf '  <ResponseTimeRepartition value="100, 500, 1000"/>\n  <CallLengthRepartition value="1000, 5000, 10000"/>\n</scenario>\n'
  } >"$OUTDIR/$1.xml"
}

# ------------------------------------------------------------------ UAC sides
uac_sides() {
# caller talks $TALK_MS (sipp -d, default below) then hangs up
scenario answered-caller-bye-uac "answered call, caller hangs up after the call length (-d, ms)" <<EOF
$(invite 1 "")
$(recv response 100 ' optional="true"')
$(recv response 180 ' optional="true"')
$(recv response 200 ' rtd="true" rrs="true"')
$(uac_req ACK 1)
  <pause/>

$(uac_req BYE 2)
$(recv response 200 ' crlf="true"')
EOF

scenario answered-callee-bye-uac "answered call, callee hangs up (UAS sends BYE)" <<EOF
$(invite 1 "")
$(recv response 100 ' optional="true"')
$(recv response 180 ' optional="true"')
$(recv response 200 ' rtd="true" rrs="true"')
$(uac_req ACK 1)
$(recv request BYE ' timeout="20000"')
$(uac_resp_bye)
EOF

scenario busy-486-uac "callee busy: 486, ACK" <<EOF
$(invite 1 "")
$(recv response 100 ' optional="true"')
$(recv response 180 ' optional="true"')
$(recv response 486 ' rtd="true"')
$(uac_ack_neg 1)
EOF

scenario notfound-404-uac "number not found: 404, ACK" <<EOF
$(invite 1 "")
$(recv response 100 ' optional="true"')
$(recv response 404 ' rtd="true"')
$(uac_ack_neg 1)
EOF

# (the 200 to the CANCEL and the 487 come from different Kamailio processes:
# under load the 487 may come first)
scenario cancel-ringing-uac "caller cancels while ringing: CANCEL, 200 (CANCEL), 487, ACK" <<EOF
$(invite 1 "")
$(recv response 100 ' optional="true"')
$(recv response 180)
  <pause/>

$(uac_cancel)
$(recv response 200 ' optional="true"')
$(recv response 487 ' rtd="true"')
$(uac_ack_neg 1)
EOF

scenario reinvite-uac "answered call, re-INVITE (hold-like SDP change) mid-call, caller hangs up" <<EOF
$(invite 1 "")
$(recv response 100 ' optional="true"')
$(recv response 180 ' optional="true"')
$(recv response 200 ' rtd="true" rrs="true"')
$(uac_req ACK 1)
  <pause/>

$(uac_req INVITE 2 "$SDP_A2")
$(recv response 100 ' optional="true"')
$(recv response 200)
$(uac_req ACK 2)
  <pause/>

$(uac_req BYE 3)
$(recv response 200 ' crlf="true"')
EOF

scenario early-media-183-uac "183 Session Progress with SDP (early media), then 200, caller hangs up" <<EOF
$(invite 1 "")
$(recv response 100 ' optional="true"')
$(recv response 183)
$(recv response 200 ' rtd="true" rrs="true"')
$(uac_req ACK 1)
  <pause/>

$(uac_req BYE 2)
$(recv response 200 ' crlf="true"')
EOF

scenario auth-407-uac "407 from the proxy, ACK, new INVITE with credentials (same Call-ID, CSeq 2), answered, caller hangs up" <<EOF
$(invite 1 "")
$(recv response 407 ' auth="true"')
$(uac_ack_neg 1)
$(invite 2 "      [authentication username=$AUTH_USER password=secret]
")
$(recv response 100 ' optional="true"')
$(recv response 180 ' optional="true"')
$(recv response 200 ' rtd="true" rrs="true"')
$(uac_req ACK 2)
  <pause/>

$(uac_req BYE 3)
$(recv response 200 ' crlf="true"')
EOF

}
uac_sides
mkdir -p ../e2e/sipp
OUTDIR=../e2e/sipp CALLER='[field0]' AUTH_USER=e2e uac_sides

# ------------------------------------------------------------------ UAS sides
scenario answered-uas "UAS: ring 300 ms, answer, wait for the caller's BYE (also serves auth-407)" <<EOF
$(uas_recv_invite)
$(uas_resp 180 Ringing "" tag)
$(pause 300)
$(uas_resp 200 OK "$SDP_B" tag)
$(recv request ACK ' rtd="true" crlf="true"')
$(recv request BYE)
$(uas_resp 200 OK "" keep)
EOF

scenario answered-callee-bye-uas "UAS: ring 300 ms, answer, hang up after the call length (-d, ms)" <<EOF
$(uas_recv_invite bye)
$(uas_resp 180 Ringing "" tag)
$(pause 300)
$(uas_resp 200 OK "$SDP_B" tag)
$(recv request ACK ' rtd="true" crlf="true"')
  <pause/>

$(uas_bye)
$(recv response 200)
EOF

scenario busy-486-uas "UAS: ring 500 ms, 486 Busy Here" <<EOF
$(uas_recv_invite)
$(uas_resp 180 Ringing "" tag)
$(pause 500)
$(uas_resp 486 "Busy Here" "" tag)
$(recv request ACK)
EOF

scenario notfound-404-uas "UAS: 404 Not Found at once" <<EOF
$(uas_recv_invite)
$(uas_resp 404 "Not Found" "" tag)
$(recv request ACK)
EOF

scenario cancel-ringing-uas "UAS: ring until CANCEL, 200 to the CANCEL, 487 to the INVITE" <<EOF
$(uas_recv_invite cancel)
$(uas_resp 180 Ringing "" tag)
$(recv request CANCEL)
$(uas_resp 200 OK "" tag)
$(uas_487)
$(recv request ACK)
EOF

scenario reinvite-uas "UAS: answer, accept a re-INVITE, wait for BYE" <<EOF
$(uas_recv_invite)
$(uas_resp 180 Ringing "" tag)
$(pause 300)
$(uas_resp 200 OK "$SDP_B" tag)
$(recv request ACK ' rtd="true" crlf="true"')
$(recv request INVITE)
$(uas_resp 200 OK "$SDP_B" keep)
$(recv request ACK)
$(recv request BYE)
$(uas_resp 200 OK "" keep)
EOF

scenario early-media-183-uas "UAS: 183 with SDP, answer after 1 s, wait for BYE" <<EOF
$(uas_recv_invite)
$(uas_resp 183 "Session Progress" "$SDP_B" tag)
$(pause 1000)
$(uas_resp 200 OK "$SDP_B" tag)
$(recv request ACK ' rtd="true" crlf="true"')
$(recv request BYE)
$(uas_resp 200 OK "" keep)
EOF

echo "wrote $(ls ./*.xml ../e2e/sipp/*.xml | wc -l) scenarios"
