#!/usr/bin/env python3
"""ctid integration test: failover along the to_uri list (issue 13,
"Routing"; docs/protocol.md, "Failover").

Each call has two (or three) to_uri entries, each a configured gateway.

A  503: the first entry (sipp) answers 503, the second (sipp) answers 200
   and the prompt plays there: the RTP reaches the second's sink, the
   second INVITE has a new Call-ID, the event is the final attempt's with
   `attempts` [{first, 503}, {second, 200}], the metric and the log line.
B  Timer B: the first entry swallows the INVITE (never answers); when our
   stack gives up (3/4 of dial_timeout) the call moves to the second.
C  a dead port: nothing listens at the first entry (ICMP port
   unreachable); the call moves on at once.
D  486 from the first entry ends the call: "call rejected", no failover,
   nothing reaches the second, no `attempts` in the event.
E  running out: 503 and then a dead port: the last failure is reported
   ("dial error"), with both attempts.
F  408, 500, 502, 504 from the first entry (sipp: uas_service_unavailable.xml
   with the code changed), each
   in its own call: the call moves on and plays at the second entry, the
   event's attempts [{first, code}, {second, 200}], the failover counted.
"""
import csv
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (HOST, Test, check_construct_result,  # noqa: E402
                      check_released, check_one_stream, expected_payload,
                      make_prompt, gateway, free_port, header, http_get)

DIAL_TIMEOUT = 4   # Timer B = 3 s

t = Test("failover")
with t:
    make_prompt(t.path("prompts", "short.wav"), 0.5)
    FAIL_CODES = {408: "Request Timeout", 500: "Server Internal Error",
                  502: "Bad Gateway", 504: "Server Time-out"}
    names = ["a503", "a_ok", "b_silent", "b_ok", "c_dead", "c_ok",
             "d486", "d_second", "e503", "e_dead"]
    for code in FAIL_CODES:
        names += ["f%d" % code, "f%d_ok" % code]
    port = {n: free_port("udp") for n in names}
    # B's first entry: a socket that reads every INVITE and answers none
    silent = t.add_cleanup(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    silent.bind((HOST, 0))
    port["b_silent"] = silent.getsockname()[1]
    # D's second entry: a socket that must receive nothing
    second = t.add_cleanup(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    second.bind((HOST, 0))
    port["d_second"] = second.getsockname()[1]
    mport = free_port("tcp")
    cdr_path = t.path("cdr.csv")
    d = t.ctid(gateways=[gateway("gw_" + n, port[n]) for n in names],
               conf={"dial_timeout": DIAL_TIMEOUT, "cdr_file": cdr_path,
                     "metrics_listen": "%s:%d" % (HOST, mport)})
    d.start()
    c = t.client(d.listen_port, "app")
    expected = expected_payload(t.path("prompts", "short.wav"), 8, 1)

    def call(entries, ud, timeout=30):
        uris = [d.uri(port[n]) for n in entries]
        t0 = time.time()
        reply = c.call("ext.notify_call.construct", {
            "to_uri": uris, "play_content": "short.wav", "user_data": ud})
        res_id, _ = check_construct_result(t, reply, d.node_id, uris[0], ud,
                                           label=ud)
        ev = c.wait_event(res_id, timeout=timeout) if res_id else None
        return ev, res_id, time.time() - t0

    def check_attempts(ev, want, label):
        """want: [(entry name, status or a tuple of statuses)]."""
        got = (ev or {}).get("params", {}).get("attempts")
        if not t.check(isinstance(got, list) and len(got) == len(want),
                       "%s: attempts has %d entries" % (label, len(want)),
                       repr(got)):
            return
        for i, (name, status) in enumerate(want):
            a = got[i]
            t.check_eq(a.get("to_uri"), d.uri(port[name]),
                       "%s: attempts[%d].to_uri" % (label, i))
            t.check_eq(a.get("gateway"), "gw_" + name,
                       "%s: attempts[%d].gateway" % (label, i))
            if isinstance(status, tuple):
                t.check_in(a.get("status"), status,
                           "%s: attempts[%d].status" % (label, i))
            else:
                t.check_eq(a.get("status"), status,
                           "%s: attempts[%d].status" % (label, i))
        keys = list(ev["params"].keys())
        t.check(keys.index("attempts") == keys.index("cause") + 1 and
                keys[-1] in ("attempts", "seq"),
                "%s: attempts after cause, before seq" % label, repr(keys))

    def answered_second(label, first, second, first_status, ud):
        """A call whose first entry fails and whose second (sipp) answers
        and hears the prompt."""
        sink = t.rtp_sink(ud)
        sp = t.sipp("uas_answer_wait_bye.xml", port=port[second],
                    rtp_sink_port=sink.port, codec=8).start()
        ev, res_id, took = call([first, second], ud)
        check_released(t, ev, res_id, ud, None, "sys", cause=200,
                       answered=True, label=label)
        check_attempts(ev, [(first, first_status), (second, 200)], label)
        sp.check_exit(t, "%s: the second entry got the INVITE and BYE" % label)
        sink.wait_quiet()
        check_one_stream(t, sink, expected, 8, "%s: RTP at the second entry"
                         % label)
        return sp, took, res_id

    def a_503():
        sp1 = t.sipp("uas_service_unavailable.xml", port=port["a503"]).start()
        sp2, _, res_id = answered_second("A", "a503", "a_ok", 503, "a")
        sp1.check_exit(t, "A: the first entry's 503 was ACKed")
        inv1 = sp1.received("INVITE")
        inv2 = sp2.received("INVITE")
        if t.check(len(inv1) == 1 and len(inv2) == 1, "A: one INVITE each"):
            t.check(header(inv1[0], "Call-ID") != header(inv2[0], "Call-ID"),
                    "A: the second INVITE has a new Call-ID",
                    header(inv2[0], "Call-ID"))
            t.check(re.search(r"^m=audio (\d+)", inv1[0], re.M).group(1) ==
                    re.search(r"^m=audio (\d+)", inv2[0], re.M).group(1),
                    "A: the same RTP port offered in both")
            # the CDR (columns of docs/operations.md): the final attempt's
            # Call-ID (4th) and callee (6th); res_id is the 17th
            with open(cdr_path, newline="") as f:
                rows = [r for r in csv.reader(f) if r[16] == res_id]
            if t.check(len(rows) == 1, "A: one CDR line"):
                t.check_eq(rows[0][3], header(inv2[0], "Call-ID"),
                           "A: the CDR's Call-ID is the second INVITE's")
                t.check_eq(rows[0][5], d.uri(port["a_ok"]),
                           "A: the CDR's callee is the entry that answered")
        log = d.log_text()
        t.check(re.search(r": 503 from gw_a503 \(127\.0\.0\.1:%d\); trying "
                          r"to_uri\[1\] 127\.0\.0\.1:%d"
                          % (port["a503"], port["a_ok"]), log),
                "A: the failover is logged")
        _, _, body = http_get(mport, "/metrics")
        t.check('ctid_gateway_failovers_total{gateway="gw_a503"} 1' in body,
                "A: ctid_gateway_failovers_total counts it",
                "\n".join(ln for ln in body.splitlines()
                          if "failovers" in ln))
        t.check('ctid_gateway_failovers_total{gateway="gw_a_ok"} 0' in body,
                "A: not at the gateway that answered")
    t.run("A: 503, then answered at the second entry", a_503)

    def b_timer_b():
        _, took, _ = answered_second("B", "b_silent", "b_ok", 408, "b")
        t.check(0.75 * DIAL_TIMEOUT - 0.5 <= took <= DIAL_TIMEOUT + 3,
                "B: moved on at Timer B (3/4 of dial_timeout; %.2f s)" % took)
        silent.settimeout(0.1)
        got = b""
        try:
            got = silent.recv(65536)
        except OSError:
            pass
        t.check(got.startswith(b"INVITE "), "B: the first entry got the INVITE")
    t.run("B: no response (Timer B), then the second entry", b_timer_b)

    def c_dead():
        _, took, _ = answered_second("C", "c_dead", "c_ok", (503,), "c")
        t.check(took < 0.75 * DIAL_TIMEOUT,
                "C: moved on before Timer B (%.2f s)" % took)
    t.run("C: a dead port (ICMP), then the second entry", c_dead)

    def d_486():
        sp = t.sipp("uas_busy.xml", port=port["d486"]).start()
        ev, res_id, _ = call(["d486", "d_second"], "d")
        check_released(t, ev, res_id, "d", "call rejected", "usr", cause=486,
                       answered=False, label="D")
        t.check("attempts" not in (ev or {}).get("params", {}),
                "D: no attempts in the event", repr(ev))
        sp.check_exit(t, "D: the 486 was ACKed")
        second.settimeout(0.5)
        got = None
        try:
            got = second.recv(65536)
        except OSError:
            pass
        t.check(got is None, "D: nothing reached the second entry", repr(got))
    t.run("D: 486 ends the call, no failover", d_486)

    def e_runs_out():
        sp = t.sipp("uas_service_unavailable.xml", port=port["e503"]).start()
        ev, res_id, _ = call(["e503", "e_dead"], "e")
        check_released(t, ev, res_id, "e", "dial error", "sys", cause=503,
                       answered=False, label="E")
        check_attempts(ev, [("e503", 503), ("e_dead", 503)], "E")
        sp.check_exit(t, "E: the 503 was ACKed")
    t.run("E: every entry fails: the last failure is reported", e_runs_out)

    def f_codes():
        for code, reason in sorted(FAIL_CODES.items()):
            first, label = "f%d" % code, "F %d" % code
            # sipp checks a response's code when it loads the scenario,
            # so no -key: uas_service_unavailable.xml with the code put in
            with open(os.path.join(t.sipp_dir,
                                   "uas_service_unavailable.xml")) as f:
                xml = f.read()
            want = "SIP/2.0 503 Service Unavailable"
            t.check(want in xml, "F: harness: the scenario's 503 line")
            scen = t.path("uas_fail_%d.xml" % code)
            with open(scen, "w") as f:
                f.write(xml.replace(want, "SIP/2.0 %d %s" % (code, reason)))
            sp1 = t.sipp(scen, port=port[first]).start()
            answered_second(label, first, first + "_ok", code,
                            "f%d" % code)
            sp1.check_exit(t, "%s: the first entry's %d was ACKed"
                           % (label, code))
            t.check(re.search(r": %d from gw_%s \(127\.0\.0\.1:%d\); trying "
                              r"to_uri\[1\] " % (code, first, port[first]),
                              d.log_text()),
                    "%s: the failover is logged" % label)
            _, _, body = http_get(mport, "/metrics")
            t.check('ctid_gateway_failovers_total{gateway="gw_%s"} 1'
                    % first in body,
                    "%s: ctid_gateway_failovers_total counts it" % label)
    t.run("F: 408, 500, 502, 504 move the call on", f_codes)
    c.close()
