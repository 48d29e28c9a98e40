#!/usr/bin/env python3
"""ctid integration test: RFC 4028 session timers (docs/reliability.md,
"Hardening (issue 10)", "In-dialog requests and SDP").

The daemon runs with min_se = 1 so a gateway may ask for a 4 s session.
A  the gateway answers Session-Expires: 4;refresher=uac: ctid refreshes
   (UPDATE, since the gateway allows it) before expiry; the gateway answers
   the second refresh 481: the dialog is over (RFC 5057; nua ends it with
   no BYE) and ctid reports "play error", sys, cause 481 -- not a full
   play -- and stops the prompt.
B  likewise with 408 for the failed refresh.
C  likewise with 500: the dialog outlives the failure, so ctid sends BYE
   (RFC 4028 section 10); "play error", sys, cause 500.
D  the gateway answers Session-Expires: 4;refresher=uas and never
   refreshes: ctid ends the call with BYE before the session expires,
   "play error", sys, cause 408.
E  a gateway that does not allow UPDATE gets the refresh as a re-INVITE
   (ctid's SDP, its o= session id); the call plays in full: error null.
F  kill -9 after a refresh and a callee's UPDATE moving its Contact,
   restart: crash recovery's BYE carries a CSeq above the refresh's (a BYE
   below it would be refused by the gateway, RFC 3261 12.2.2, and the call
   left open) and goes to the new Contact.
"""
import os
import re
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, construct,  # noqa: E402
                      check_released, make_prompt, gateway, free_port,
                      header)

t = Test("session_timer")
with t:
    make_prompt(t.path("prompts", "long.wav"), 15.0)
    ports = {k: free_port("udp") for k in ("f481", "f408", "f500",
                                           "expire", "reinvite", "crash")}
    d = t.ctid(gateways=[gateway("gw_" + k, p) for k, p in ports.items()],
               conf={"min_se": 1})
    d.start()
    c = t.client(d.listen_port, "app")
    sink = t.rtp_sink()

    def call(key):
        res_id = construct(t, c, d, d.uri(ports[key]), "long.wav", label=key,
                           play_repeat=0, user_data=key)
        return res_id, c.wait_event(res_id, timeout=40) if res_id else None

    def failed_refresh(key, status):
        def run():
            sp = t.sipp("uas_session_refresh_%d.xml" % status,
                        port=ports[key], rtp_sink_port=sink.port,
                        extra=["-key", "se", "4", "-key", "se_refresher",
                               "uac"]).start()
            res_id, ev = call(key)
            check_released(t, ev, res_id, key, "play error", "sys",
                           cause=status, answered=True,
                           label="%s: failed refresh" % key)
            if ev is not None:
                p = ev["params"]
                t.check(p["end_time"] - p["answer_time"] <= 10,
                        "%s: ended long before the 15 s prompt" % key)
            sp.check_exit(t, "%s: two refreshes, then %s" % (
                key, "BYE" if status == 500 else "no BYE"))
            t.check_eq(len(sp.received("BYE")), 1 if status == 500 else 0,
                       "%s: BYEs after the failed refresh" % key)
            ups = sp.received("UPDATE")
            t.check(len(ups) == 2, "%s: ctid refreshed by UPDATE" % key,
                    "%d UPDATEs" % len(ups))
            t.check(all(header(u, "Session-Expires") for u in ups),
                    "%s: the refreshes carry Session-Expires" % key)
            inv = sp.received("INVITE")
            t.check(inv and "timer" in (header(inv[0], "Supported") or ""),
                    "%s: the INVITE says Supported: timer" % key)
        return run

    t.run("A: refresh answered 481", failed_refresh("f481", 481))
    t.run("B: refresh answered 408", failed_refresh("f408", 408))
    t.run("C: refresh answered 500", failed_refresh("f500", 500))

    def expire():
        sp = t.sipp("uas_session_expire.xml", port=ports["expire"],
                    rtp_sink_port=sink.port,
                    extra=["-key", "se", "4", "-key", "se_refresher",
                           "uas"]).start()
        res_id, ev = call("expire")
        check_released(t, ev, res_id, "expire", "play error", "sys",
                       cause=408, answered=True, label="D: session expired")
        if ev is not None:
            p = ev["params"]
            t.check(p["end_time"] - p["answer_time"] <= 10,
                    "D: ended long before the 15 s prompt")
        sp.check_exit(t, "D: BYE from ctid when the session expired")
    t.run("D: callee never refreshes", expire)

    def reinvite_refresh():
        make_prompt(t.path("prompts", "four.wav"), 4.0)
        sp = t.sipp("uas_session_reinvite.xml", port=ports["reinvite"],
                    rtp_sink_port=sink.port,
                    extra=["-key", "se", "4", "-key", "se_refresher",
                           "uac"]).start()
        res_id = construct(t, c, d, d.uri(ports["reinvite"]), "four.wav", label="E",
                           play_repeat=0, user_data="reinvite")
        ev = c.wait_event(res_id, timeout=30) if res_id else None
        check_released(t, ev, res_id, "reinvite", None, "sys", cause=200,
                       answered=True, label="E: full play")
        sp.check_exit(t, "E: one re-INVITE refresh, then BYE at the end")
        inv = sp.received("INVITE")
        if t.check(len(inv) == 2, "E: the refresh is a re-INVITE",
                   "%d INVITEs" % len(inv)):
            o = [re.search(r"^o=\S+ (\d+) (\d+) ", m, re.M) for m in inv]
            t.check(all(o) and o[0].group(1) == o[1].group(1),
                    "E: the refresh carries ctid's SDP, same o= session")
            t.check(header(inv[1], "Session-Expires") is not None,
                    "E: the refresh carries Session-Expires")
        log = d.log_text()
        t.check(re.search(r"%s: session refreshed \(re-INVITE 200\)"
                          % re.escape(res_id or "?"), log) is not None,
                "E: the refresh logged with res_id")
        t.check(not re.search(r"%s: answered in Answered"
                              % re.escape(res_id or "?"), log),
                "E: the refresh's 200 is not taken for a second answer")
    t.run("E: callee without UPDATE: refresh by re-INVITE", reinvite_refresh)

    def crash_after_refresh():
        c2 = t.client(d.listen_port, "crash")
        sp = t.sipp("uas_session_refresh_crash.xml", port=ports["crash"],
                    rtp_sink_port=sink.port,
                    extra=["-key", "se", "4", "-key", "se_refresher",
                           "uac"]).start()
        res_id = construct(t, c2, d, d.uri(ports["crash"]), "long.wav", label="F",
                           play_repeat=0, user_data="crash")
        deadline = time.time() + 15
        while time.time() < deadline and not re.search(
                r"%s: session refreshed" % re.escape(res_id or "?"),
                d.log_text()):
            time.sleep(0.1)
        t.check(re.search(r"%s: session refreshed" % re.escape(res_id or "?"),
                          d.log_text()) is not None, "F: refreshed")
        deadline = time.time() + 10
        while time.time() < deadline and not re.search(
                r"%s: UPDATE without SDP" % re.escape(res_id or "?"),
                d.log_text()):
            time.sleep(0.1)
        time.sleep(0.3)
        d.proc.kill()
        d.proc.wait()
        c2.close()
        d.start()
        sp.check_exit(t, "F: the restarted daemon's BYE ended the call")
        ups = sp.received("UPDATE")
        byes = sp.received("BYE")

        def seq(m):
            return int(re.search(r"^CSeq:\s*(\d+)", m, re.M | re.I).group(1))
        if t.check(ups and byes, "F: an UPDATE and a BYE seen"):
            t.check(seq(byes[0]) > seq(ups[-1]), "F: the BYE's CSeq (%d) is "
                    "above the refresh's (%d)" % (seq(byes[0]), seq(ups[-1])))
            t.check(byes[0].startswith("BYE sip:moved@"),
                    "F: the BYE goes to the callee's new Contact",
                    byes[0].splitlines()[0])
    t.run("F: crash after a refresh", crash_after_refresh)
    c.close()
    sink.close()
