#!/usr/bin/env python3
"""ctid integration test: requests inside an answered call other than hold
(docs/reliability.md, "Hardening (issue 10)", "In-dialog requests and SDP").

One call, scenario uas_in_dialog.xml, while a 3 s prompt plays:
A  UPDATE without SDP (a session refresh) gets 200.
B  REFER gets 405 with an Allow that lists only what ctid handles, and no
   NOTIFY follows (sipp fails on an unexpected request).
C  UPDATE offers ctid cannot accept (c=224.0.0.1, m=audio 70000, G.729
   only) get 488 and change nothing; so does a re-INVITE offering
   c=224.0.0.1 (ACKed).
D  a re-INVITE without SDP gets 200 with ctid's offer (sendrecv, PCMA,
   ctid's port); the ACK carries the answer.
E  an UPDATE moving the callee's RTP port gets 200 and RTP follows: the
   two sinks together hold the whole prompt, byte for byte, and the call
   ends with error null, sys, 200.
"""
import os
import re
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result,  # noqa: E402
                      check_released, check_rtp_stream, expected_payload,
                      make_prompt, gateway, free_port, header)


t = Test("in_dialog")
with t:
    prompt = t.path("prompts", "three.wav")
    make_prompt(prompt, 3.0)
    gw = free_port("udp")
    d = t.ctid(gateways=[gateway("gw", gw)])
    d.start()
    c = t.client(d.listen_port, "app")
    sink1, sink2 = t.rtp_sink("first"), t.rtp_sink("second")
    sp = t.sipp("uas_in_dialog.xml", port=gw, rtp_sink_port=sink1.port,
                codec=8, extra=["-key", "rtp_sink2_port",
                                str(sink2.port)]).start()
    reply = c.call("ext.notify_call.construct", {
        "to_uri": d.uri(gw), "play_content": "three.wav", "play_repeat": 0,
        "user_data": "dlg"})
    res_id, _ = check_construct_result(t, reply, d.node_id, d.uri(gw), "dlg")
    ev = c.wait_event(res_id, timeout=30) if res_id else None
    sp_ok = sp.check_exit(t, "every in-dialog request answered as expected, "
                          "no NOTIFY, BYE at the end")

    def refresh():
        t.check(len(sp.responses(200, "1 UPDATE")) == 1,
                "A: UPDATE without SDP answered 200")
    t.run("A: UPDATE refresh", refresh)

    def refer():
        r = sp.responses(405, "2 REFER")
        if t.check(len(r) == 1, "B: REFER answered 405"):
            allow = [m.strip().upper() for m in
                     (header(r[0], "Allow") or "").split(",")]
            t.check_eq(sorted(allow), sorted(["INVITE", "ACK", "BYE",
                                              "CANCEL", "OPTIONS",
                                              "UPDATE", "INFO"]),
                       "B: Allow lists only what ctid handles")
        t.check_eq(sp.received("NOTIFY"), [], "B: no NOTIFY sent")
        t.check("900premium" not in "".join(m for _, m in sp.messages()
                                            if _ == "recv"),
                "B: nothing sent towards the Refer-To target")
    t.run("B: REFER refused", refer)

    def bad_offers():
        for n, what in ((3, "c=224.0.0.1"), (4, "m=audio 70000"),
                        (5, "G.729 only")):
            t.check(len(sp.responses(488, "%d UPDATE" % n)) == 1,
                    "C: UPDATE offering %s answered 488" % what)
        t.check(len(sp.responses(488, "6 INVITE")) >= 1,
                "C: re-INVITE offering c=224.0.0.1 answered 488")
        log = d.log_text()
        for reason in ("multicast", "above 65535", "lacks PCMA"):
            t.check(re.search(r"%s: UPDATE refused with 488.*%s" % (
                re.escape(res_id or "?"), reason), log) is not None,
                "C: reason '%s' logged with res_id" % reason)
    t.run("C: unacceptable offers", bad_offers)

    def no_sdp_reinvite():
        r = sp.responses(200, "7 INVITE")
        if t.check(len(r) >= 1, "D: re-INVITE without SDP answered 200"):
            body = r[0]
            m = re.search(r"^m=audio (\d+) RTP/AVP ([0-9 ]+)$", body, re.M)
            t.check(m is not None and m.group(2).split() == ["8"],
                    "D: the 200 offers PCMA (the codec in use)",
                    body[-300:])
            t.check(re.search(r"^a=sendrecv$", body, re.M) is not None,
                    "D: the offer is sendrecv")
            inv = sp.received("INVITE")
            m0 = re.search(r"^m=audio (\d+)", inv[0], re.M) if inv else None
            t.check(m and m0 and m.group(1) == m0.group(1),
                    "D: same RTP port as the first offer")
    t.run("D: re-INVITE without SDP", no_sdp_reinvite)

    def redirect():
        check_released(t, ev, res_id, "dlg", None, "sys", cause=200,
                       answered=True, label="E: full play")
        sink1.wait_quiet()
        sink2.wait_quiet()
        a, b = sink1.snapshot(), sink2.snapshot()
        t.check(len(a) > 0 and len(b) > 0, "E: RTP at both ports "
                "(%d, then %d packets)" % (len(a), len(b)))
        if a and b:
            t.check(a[-1].at <= b[0].at + 0.05,
                    "E: the first port's stream ends when the second starts")
        check_rtp_stream(t, a + b, expected_payload(prompt, 8, 0), 8,
                         label="E: both ports together", pacing=False)
    t.run("E: RTP follows an UPDATE's new port", redirect)
    c.close()
    sink1.close()
    sink2.close()
