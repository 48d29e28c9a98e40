#!/usr/bin/env python3
"""ctid integration test: a construct exactly as the original platform's
real client builds it (issue 12; docs/protocol.md, "Lenient forms").

The client omits "jsonrpc", sends play_repeat and max_ring_seconds as
strings, from_uri "", extra keys ("areaId", and "appid " with a trailing
space), a type 7 list, numbers as the content of types 1-3 and a type as a
string. The zh prompt pack the build made is copied into the test's
prompt_dir with the 3 low bits of every sample cleared, so sox's G.711
encoder and ctid's give the same bytes (as in test_spoken).

A  the client's construct, play_repeat "1", an object user_data: the
   reply is a result with the user_data echoed as given (an object); the INVITE's From is the configured default (from_uri "");
   the RTP payload is, twice and byte for byte: the type 7 list's two
   files, [1086.3, 3] as 一千零八十六点三元, ["notice.wav", "0"], [25, 2] as
   二十五, [110, 1, "yao=1"] as 幺幺零, ["02:00", 4] as 两点整,
   [0.05, 6] as 五分; the event is a normal end (null, sys, 200) with the
   same object; the CDR's last column is its compact JSON text (B's string
   user_data is its bytes, as before).
B  max_ring_seconds "1" (a string) against a callee that rings forever:
   "ring timeout", sys, 487, about a second after the ringing.
C  what stays refused: play_repeat "1.5", max_ring_seconds "x", a type
   "x", [1.5, 1], an absolute name outside every prompt_roots: -32602
   naming the param or item (in the message and in error.data.param, with
   data.ipsc_info.node_id), nothing dialled.

The type 7 list's second file is an absolute name under the configured
prompt_roots (/data/prd/... in the real client's deployment).
"""
import csv
import json
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, zh_pack_copy, check_construct_result, check_released,  # noqa: E402
                      check_one_stream, make_prompt, gateway,
                      g711_of, free_port, header)


t = Test("client_compat")
with t:
    zh = zh_pack_copy(t)
    notice = make_prompt(t.path("prompts", "notice.wav"), 0.47)
    root = t.path("data", "prd")
    os.makedirs(t.path("data", "prd", "p", "0", "tenant", "app"))
    other = make_prompt(t.path("data", "prd", "p", "0", "tenant", "app", "x.wav"), 0.31,
                        synth=("sine", "800"))

    def words(*names):
        return b"".join(g711_of(os.path.join(zh, n + ".wav")) for n in names)

    one_play = (g711_of(notice) + g711_of(other)
                # 1086.3 as type 3: 一千零八十六点三元
                + words("digit_1", "thousand", "digit_0", "digit_8", "ten",
                        "digit_6", "point", "digit_3", "yuan")
                + g711_of(notice)
                + words("digit_2", "ten", "digit_5")            # 25: 二十五
                + words("yao", "yao", "digit_0")               # 110: 幺幺零
                + words("liang", "oclock", "zheng")             # 两点整
                + words("digit_5", "fen"))                      # 0.05: 五分

    ports = {k: free_port("udp") for k in ("A", "B", "C")}
    d = t.ctid(gateways=[gateway("gw" + k, p) for k, p in ports.items()],
               conf={"prompt_roots": "/nonexistent-root, " + root,
                     "cdr_file": t.path("cdr.csv")})
    UD = {"order": 42, "tags": ["vip", "\u5f20"], "ok": True, "n": None}

    def cdr_user_data(res_id):
        try:
            with open(t.path("cdr.csv"), newline="") as f:
                rows = [r for r in csv.reader(f) if len(r) > 2 and r[-2] == res_id]
        except FileNotFoundError:
            rows = []
        return rows[-1][-1] if rows else None
    d.start()
    c = t.client(d.listen_port, "app")

    def client_params(to_uri, **over):
        params = {
            "from_uri": "",
            "to_uri": to_uri,
            "play_content": [
                ["notice.wav|" + other, 7, ""],
                [1086.3, 3, ""],
                ["notice.wav", "0", ""],
                [25, 2, ""],
                [110, 1, "yao=1"],
                ["02:00", 4, ""],
                [0.05, 6, ""],
            ],
            "play_repeat": "1",
            "max_ring_seconds": "45",
            "user_data": "order 42",
            "areaId": "0571",
            "appid ": "notify-app",
        }
        params.update(over)
        return params

    def as_the_client():
        sink = t.rtp_sink("A")
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["A"], rtp_sink_port=sink.port,
                    codec=8).start()
        to_uri = d.uri(ports["A"])
        reply = c.call("ext.notify_call.construct", client_params(to_uri, user_data=UD),
                       jsonrpc=False)
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, UD)
        if res_id is None:
            return
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, UD, None, "sys", cause=200, answered=True)
        t.check_eq(cdr_user_data(res_id),
                   json.dumps(UD, separators=(",", ":"), ensure_ascii=False),
                   "CDR user_data: the object's compact JSON text")
        sp.check_exit(t, "sipp received the daemon's BYE")
        invites = sp.received("INVITE")
        if t.check(len(invites) == 1, "one INVITE", "%d" % len(invites)):
            frm = header(invites[0], "From") or ""
            t.check("sip:ctid@" in frm, "from_uri \"\": the From is default_from",
                    frm)
        sink.wait_quiet(0.5, 5)
        check_one_stream(t, sink, one_play * 2, 8,
                         "RTP = (files, 1086.3 元, file, 25, 幺幺零, 两点整, 五分) x2",
                         rtp_range=(d.rtp_lo, d.rtp_hi))
    t.run("A: the real client's construct", as_the_client)

    def ring_string():
        sp = t.sipp("uas_ring_forever.xml", port=ports["B"]).start()
        to_uri = d.uri(ports["B"])
        t0 = time.time()
        reply = c.call("ext.notify_call.construct",
                       client_params(to_uri, max_ring_seconds="1", user_data="ring"),
                       jsonrpc=False)
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, "ring")
        if res_id is None:
            return
        ev = c.wait_event(res_id, timeout=15)
        elapsed = time.time() - t0
        check_released(t, ev, res_id, "ring", "ring timeout", "sys", cause=487,
                       answered=False)
        t.check_eq(cdr_user_data(res_id), "ring", "CDR user_data: a string's bytes")
        t.check(0.8 <= elapsed <= 4.0, "released about 1 s after ringing "
                "(max_ring_seconds \"1\")", "%.2f s" % elapsed)
        sp.check_exit(t, "the callee got CANCEL (and the 487 was ACKed)")
    t.run("B: max_ring_seconds \"1\"", ring_string)

    def still_refused():
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["C"]).start()
        events = len(c.events())
        to_uri = d.uri(ports["C"])
        cases = [
            (dict(play_repeat="1.5"), "invalid params: play_repeat: must be an integer"),
            (dict(max_ring_seconds="x"),
             "invalid params: max_ring_seconds: must be an integer"),
            (dict(play_repeat="99999999999999999999"),
             "invalid params: play_repeat: must be between 0 and 100"),
            (dict(play_content=[["notice.wav", "x"]]),
             "invalid params: play_content[0]: type must be an integer"),
            (dict(play_content=[[1.5, 1]]),
             "invalid params: play_content[0]: type 1: '.' is not a digit, * or #"),
            (dict(play_content=[[1.234, 6]]),
             "invalid params: play_content[0]: type 6: more than 2 decimals"),
            (dict(play_content=[["notice.wav|" + notice, 7, ""]]),
             "play_content: %s is outside the prompt roots" % notice),
        ]
        for over, message in cases:
            r = c.call("ext.notify_call.construct", client_params(to_uri, **over),
                       jsonrpc=False)
            err = (r or {}).get("error") or {}
            t.check(err.get("code") == -32602 and err.get("message") == message,
                    "%r refused: %s" % (over, message), repr(r))
            param = list(over)[0]
            t.check(err.get("data") == {"ipsc_info": {"node_id": d.node_id},
                                        "param": param},
                    "...its data names the node and %s" % param, repr(err.get("data")))
        time.sleep(0.5)
        t.check(len(c.events()) == events, "no event for refused constructs",
                repr(c.events()[events:]))
        t.check(not sp.received("INVITE"), "nothing was dialled")
    t.run("C: what stays refused", still_refused)

    t.section("shutdown")
    rc = d.stop()
    t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
