#!/usr/bin/env python3
"""ctid integration test: shutdown and reload (docs/reliability.md,
"Shutdown and reload").

A  SIGTERM during 3 calls (2 s prompt), shutdown_grace 20: a construct
   after the signal gets 503 at once; the calls play to the end (error
   null, full play); ctid exits 0 soon after the last event, well before
   the grace period; the events are in the journal (since replay after a
   restart).
B  SIGTERM during 3 calls of a 30 s prompt, shutdown_grace 2: after about
   2 s every call ends with error "shutdown", the callee gets BYE, exit 0.
C  SIGHUP reload: max_calls lowered to 1 (the second concurrent construct
   gets 503), a gateway added (its to_uri is accepted) and one removed
   (refused), rtp_ports changed (logged as needing a restart, not
   applied), every change logged; then a broken file: logged, the old
   configuration stays, the daemon keeps serving.
D  A callee that rings and then never answers the CANCEL (no 200, no 487:
   a proxy whose trunk died): the call ends at max_ring_seconds 3, then
   SIGTERM. ctid's INVITE transaction is still open when the SIP stop
   grace (5 s) is over: ctid drops it, the stack shuts down and is freed
   ("sip: stack shut down" logged, no LeakSanitizer report under ASan),
   exit 0 within the grace and a little.
E  A 401 to a gateway without credentials: the call fails with 401 and a
   stop right after is clean (exit 0, nothing left open at the stop).
"""
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      make_prompt, gateway, free_port, check_result)

t = Test("shutdown")
with t:
    make_prompt(t.path("prompts", "two.wav"), 2.0)
    make_prompt(t.path("prompts", "long.wav"), 30.0)
    make_prompt(t.path("prompts", "short.wav"), 0.2)

    def start_calls(d, c, port, prompt, n, label):
        ids = []
        for i in range(n):
            reply = c.call("ext.notify_call.construct", {
                "to_uri": d.uri(port), "play_content": prompt,
                "play_repeat": 0, "user_data": "%s-%d" % (label, i)})
            res_id, _ = check_construct_result(t, reply, d.node_id,
                                               d.uri(port), "%s-%d" % (label, i))
            if res_id:
                ids.append(res_id)
        deadline = time.time() + 10
        while time.time() < deadline and \
                d.log_text().count(": answered; playing") < n:
            time.sleep(0.05)
        return ids

    def sigterm_during_calls(label, grace, prompt):
        """A daemon with shutdown_grace `grace`, three calls playing prompt
        to one sipp callee, then SIGTERM. (d, port, sipp, client, res_ids,
        the time of the signal)."""
        port = free_port("udp")
        d = t.ctid(name="ctid-" + label, gateways=[gateway("gw", port)],
                   conf={"shutdown_grace": grace})
        d.start()
        sp = t.sipp("uas_answer_wait_bye.xml", port=port, calls=3).start()
        c = t.client(d.listen_port, label)
        ids = start_calls(d, c, port, prompt, 3, label)
        t0 = time.time()
        d.proc.send_signal(signal.SIGTERM)
        return d, port, sp, c, ids, t0

    def sub_a():
        d, port, sp, c, ids, t0 = sigterm_during_calls("a", 20, "two.wav")
        time.sleep(0.2)
        r = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(port), "play_content": "short.wav"})
        t.check(r is not None and r.get("error", {}).get("code") == 503,
                "A: construct after SIGTERM gets 503", repr(r))
        for i, res_id in enumerate(ids):
            ev = c.wait_event(res_id, timeout=15)
            check_released(t, ev, res_id, "a-%d" % i, None, "sys", cause=200,
                           answered=True, label="A: call %d finished" % i)
        rc = d.wait_exit(10)
        took = time.time() - t0
        t.check_eq(rc, 0, "A: exit 0")
        t.check(took < 10, "A: exited soon after the calls, not at the end "
                "of the grace period", "%.1f s" % took)
        log = d.log_text()
        t.check("may finish within shutdown_grace 20s" in log,
                "A: the grace period is logged")
        t.check("every call finished within shutdown_grace" in log,
                "A: the early end is logged")
        sp.check_exit(t, "A: each callee got BYE after the full prompt")
        c.close()
        d.start()
        sub = t.client(d.listen_port, "a-replay")
        sub.call("sys.subscribe", {"since": 0})
        sub.wait_count(1 + len(ids), timeout=5)
        got = sorted(e["params"]["res_id"] for e in
                     sub.events("ext.notify_call.on_released"))
        t.check_eq(got, sorted(ids), "A: the events are in the journal")
        sub.close()
        d.stop()
    t.run("A: SIGTERM, calls finish within the grace period", sub_a)

    def sub_b():
        d, _, sp, c, ids, t0 = sigterm_during_calls("b", 2, "long.wav")
        evs = [c.wait_event(res_id, timeout=10) for res_id in ids]
        took = time.time() - t0
        for i, (res_id, ev) in enumerate(zip(ids, evs)):
            check_released(t, ev, res_id, "b-%d" % i, "shutdown", "sys",
                           cause=200, answered=True,
                           label="B: call %d ended by the grace period" % i)
        t.check(1.5 <= took <= 6, "B: calls ended about 2 s after SIGTERM",
                "%.1f s" % took)
        t.check_eq(d.wait_exit(10), 0, "B: exit 0")
        sp.check_exit(t, "B: each callee got BYE")
        c.close()
    t.run("B: SIGTERM, grace period over", sub_b)

    def sub_c():
        p1, p2 = free_port("udp"), free_port("udp")
        d = t.ctid(name="ctid-c", gateways=[gateway("one", p1)],
                   conf={"max_calls": 10})
        d.start()
        new = d.conf_text().replace("max_calls = 10", "max_calls = 1")
        new = re.sub(r"rtp_ports = \d+-\d+", "rtp_ports = 40000-40100", new)
        new = new.replace("[gateway one]", "[gateway two]").replace(
            "port = %d" % p1, "port = %d" % p2)
        d.reload(new)
        log = d.log_text()
        t.check("SIGHUP: max_calls 10 -> 1" in log, "C: max_calls change logged")
        t.check("[gateway one] removed" in log, "C: removed gateway logged")
        t.check("[gateway two] added" in log, "C: added gateway logged")
        t.check(re.search(r"rtp_ports = 40000-40100.*takes a restart", log)
                is not None, "C: rtp_ports logged as needing a restart")
        t.check("configuration reloaded" in log, "C: reload summary logged")

        sp = t.sipp("uas_answer_wait_bye.xml", port=p2, calls=1).start()
        c = t.client(d.listen_port, "c")
        r = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(p1), "play_content": "short.wav"})
        t.check(r is not None and r.get("error", {}).get("code") == -32602,
                "C: the removed gateway is refused", repr(r))
        r1 = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(p2), "play_content": "two.wav"})
        res_id, _ = check_construct_result(t, r1, d.node_id, d.uri(p2), None,
                                           label="C: the added gateway")
        r2 = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(p2), "play_content": "two.wav"})
        t.check(r2 is not None and r2.get("error", {}).get("code") == 503,
                "C: a second concurrent call over max_calls 1 gets 503",
                repr(r2))
        ev = c.wait_event(res_id, timeout=15) if res_id else None
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       label="C: the call under the new config")
        sp.check_exit(t, "C: the added gateway got the call")

        t.check(d.reload(new + "\nthis line is not a key\n",
                         wait_for="configuration not reloaded"),
                "C: a broken file is reported")
        t.check(d.alive(), "C: the daemon keeps running")
        r = c.call("sys.ping")
        check_result(t, r, "pong", "C: and serving")
        c.close()
        t.check_eq(d.stop(), 0, "C: clean stop")
    t.run("C: SIGHUP reload", sub_c)

    def sub_d():
        port = free_port("udp")
        d = t.ctid(name="ctid-d", gateways=[gateway("deaf", port)])
        d.start()
        sp = t.sipp("uas_ring_ignore_cancel.xml", port=port).start()
        c = t.client(d.listen_port, "d")
        t0 = time.time()
        r = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(port), "play_content": "short.wav",
            "max_ring_seconds": 3, "user_data": "d"})
        res_id, _ = check_construct_result(t, r, d.node_id, d.uri(port), "d",
                                           label="D: construct")
        if not res_id:
            return
        ev = c.wait_event(res_id, timeout=20)
        check_released(t, ev, res_id, "d", "ring timeout", "sys", cause=None,
                       answered=False, label="D: the ring timeout")
        t.check(d.wait_log(": CANCEL", timeout=5), "D: ctid sent CANCEL")
        t.log("D: released %.1f s after construct" % (time.time() - t0))
        c.close()
        t1 = time.time()
        d.proc.send_signal(signal.SIGTERM)
        rc = d.wait_exit(20)
        took = time.time() - t1
        t.check_eq(rc, 0, "D: exit 0 (99 under ASan: a leak)")
        t.check(took < 12, "D: exited within the 5 s SIP grace and a "
                "little", "%.1f s" % took)
        log = d.log_text()
        t.check("dialogs still open" in log, "D: the CANCEL was still "
                "unanswered at the SIP grace's end (the case under test)")
        t.check("sip: stack shut down" in log,
                "D: the open transaction was dropped and the stack shut "
                "down (so it is freed)", d.log_tail(15))
        sp.close()
    t.run("D: stop with a CANCEL the callee never answers", sub_d)

    def sub_e():
        port = free_port("udp")
        d = t.ctid(name="ctid-e", gateways=[gateway("auth", port)])
        d.start()
        sp = t.sipp("uas_auth_401.xml", port=port).start()
        c = t.client(d.listen_port, "e")
        r = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(port), "play_content": "short.wav",
            "user_data": "e"})
        res_id, _ = check_construct_result(t, r, d.node_id, d.uri(port), "e",
                                           label="E: construct")
        if not res_id:
            return
        ev = c.wait_event(res_id, timeout=15)
        check_released(t, ev, res_id, "e", "dial failed", "sys", cause=401,
                       answered=False, label="E: the 401")
        c.close()
        t1 = time.time()
        t.check_eq(d.stop(), 0, "E: exit 0")
        took = time.time() - t1
        t.check(took < 4, "E: a prompt stop", "%.1f s" % took)
        t.check("dialogs still open" not in d.log_text(),
                "E: nothing of the refused INVITE is left at the stop")
        sp.close()
    t.run("E: stop after a 401 without credentials", sub_e)
