#!/usr/bin/env python3
"""ctid integration test: crash recovery (docs/reliability.md, "Crash
recovery").

A  two calls end normally (486) before the crash.
B  kill -9 during 20 calls: 10 answered (playing a 30 s prompt, the callee
   waits for BYE) and 10 ringing (the callee waits for CANCEL). ctid is
   restarted on the same state_dir and config:
   - sys.subscribe since 0 returns the 2 earlier events and exactly one
     on_released per crashed call, error "daemon restart", dropped_by "sys",
     answer_time set (cause 200) for the answered ones, null (cause 487)
     for the ringing ones, user_data echoed (a string, or an object for
     every other call), no other event;
   - the restarted daemon sent BYE to each answered dialog and CANCEL to
     each ringing INVITE (and ACKed the 487): both sipp scenarios complete;
   - the CDR file has one line per call, the crashed ones with
     "daemon restart".
C  a further clean restart adds no event (exactly once).
D  a torn ledger tail (half a record, written while ctid is stopped) is
   skipped with a warning; ctid starts and serves a call.
"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      make_prompt, gateway, free_port, check_result)

N_ANSWER = 10
N_RING = 10

t = Test("recovery")
with t:
    make_prompt(t.path("prompts", "short.wav"), 0.2)
    make_prompt(t.path("prompts", "long.wav"), 30.0)
    ports = {k: free_port("udp") for k in ("busy", "answer", "ring")}
    d = t.ctid(gateways=[gateway("gw" + k, p) for k, p in ports.items()],
               conf={"cdr_file": t.path("ctid", "cdr.csv")})
    d.start()
    node = d.node_id
    before = []      # events of calls that ended before the crash
    crashed = {}     # res_id -> ("answer" | "ring", user_data)

    def sub_a():
        sp = t.sipp("uas_busy.xml", port=ports["busy"], calls=2).start()
        c = t.client(d.listen_port, "before")
        for i in range(2):
            ud = "before-%d" % i
            reply = c.call("ext.notify_call.construct", {
                "to_uri": d.uri(ports["busy"]), "play_content": "short.wav",
                "user_data": ud})
            res_id, _ = check_construct_result(t, reply, node,
                                               d.uri(ports["busy"]), ud)
            ev = c.wait_event(res_id, timeout=20) if res_id else None
            check_released(t, ev, res_id, ud, "call rejected", "usr",
                           cause=486, label="A: call %d" % i)
            before.append(ev)
        sp.check_exit(t, "A: the busy callee saw both calls")
        c.close()
    t.run("A: calls that end before the crash", sub_a)

    answer_sp = t.sipp("uas_answer_wait_bye.xml", port=ports["answer"],
                       calls=N_ANSWER, timeout=90).start()
    ring_sp = t.sipp("uas_ring_forever.xml", port=ports["ring"],
                     calls=N_RING, timeout=90).start()

    def sub_b():
        c = t.client(d.listen_port, "creator")
        for kind, port, n in (("answer", ports["answer"], N_ANSWER),
                              ("ring", ports["ring"], N_RING)):
            for i in range(n):
                # odd ones an object (issue 12): the ledger keeps the value
                ud = {"kind": kind, "i": [i]} if i % 2 else "%s-%d" % (kind, i)
                reply = c.call("ext.notify_call.construct", {
                    "to_uri": d.uri(port), "play_content": "long.wav",
                    "user_data": ud, "max_ring_seconds": 120})
                res_id, _ = check_construct_result(t, reply, node,
                                                   d.uri(port), ud)
                if res_id:
                    crashed[res_id] = (kind, ud)
        t.check_eq(len(crashed), N_ANSWER + N_RING, "B: 20 calls constructed")
        # Wait until every answered call plays and every ringing call rings.
        deadline = time.time() + 20
        while time.time() < deadline:
            log = d.log_text()
            if (log.count(": answered; playing") >= N_ANSWER and
                    log.count(": 180 Ringing") >= N_ANSWER + N_RING):
                break
            time.sleep(0.1)
        log = d.log_text()
        t.check(log.count(": answered; playing") >= N_ANSWER,
                "B: the %d answered calls are playing" % N_ANSWER)
        t.check(log.count(": 180 Ringing") >= N_ANSWER + N_RING,
                "B: every call got 180 Ringing")
        time.sleep(0.3)  # the ledger's dialog records are not synced: fine
        d.proc.kill()    # SIGKILL: no cleanup at all
        d.proc.wait()
        t.check(not c.events("ext.notify_call.on_released"),
                "B: no event before the crash")
        c.close()

        d.start()
        log = d.log_text().split("===== start #2")[-1]
        t.check("were open when the last run stopped" in log,
                "B: the restart logs the recovery")
        sub = t.client(d.listen_port, "subscriber")
        r = sub.call("sys.subscribe", {"since": 0})
        check_result(t, r, True, "B: subscribe since 0")
        sub.wait_count(2 + len(crashed), timeout=10)
        time.sleep(0.5)  # anything extra would arrive now
        evs = sub.events("ext.notify_call.on_released")
        t.check_eq(len(evs), 2 + len(crashed),
                   "B: exactly the 2 earlier events and one per crashed call")
        seqs = [e["params"].get("seq") for e in evs]
        t.check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
                "B: seq increasing, no duplicate", repr(seqs))
        got = {}
        for e in evs:
            rid = e["params"].get("res_id")
            got[rid] = got.get(rid, 0) + 1
        t.check(all(got.get(e["params"]["res_id"]) == 1 for e in before
                    if e is not None),
                "B: the earlier calls' events are not repeated")
        for res_id, (kind, ud) in sorted(crashed.items()):
            ev = [e for e in evs if e["params"].get("res_id") == res_id]
            t.check_eq(len(ev), 1, "B: one event for %s call %s" % (kind, ud))
            if len(ev) != 1:
                continue
            p = ev[0]["params"]
            t.check_eq(p.get("error"), "daemon restart", "B: %s error" % ud)
            t.check_eq(p.get("dropped_by"), "sys", "B: %s dropped_by" % ud)
            t.check_eq(p.get("user_data"), ud, "B: %s user_data" % ud)
            if kind == "answer":
                t.check(isinstance(p.get("answer_time"), int),
                        "B: %s answer_time kept" % ud, repr(p))
                t.check_eq(p.get("cause"), 200, "B: %s cause" % ud)
            else:
                t.check(p.get("answer_time") is None,
                        "B: %s never answered" % ud, repr(p))
                t.check_eq(p.get("cause"), 487, "B: %s cause" % ud)
            t.check(isinstance(p.get("end_time"), int) and
                    p["end_time"] >= p.get("begin_time", 0),
                    "B: %s end_time" % ud, repr(p))
        answer_sp.check_exit(t, "B: every answered dialog got a BYE after "
                             "the restart", timeout=20)
        ring_sp.check_exit(t, "B: every ringing INVITE got a CANCEL (and "
                           "its 487 an ACK) after the restart", timeout=20)
        t.check_eq(len(answer_sp.received("BYE")), N_ANSWER,
                   "B: one BYE per answered dialog")
        t.check_eq(len(ring_sp.received("CANCEL")), N_RING,
                   "B: one CANCEL per ringing INVITE")
        with open(t.path("ctid", "cdr.csv")) as f:
            rows = [ln for ln in f.read().splitlines() if ln.strip()]
        t.check_eq(sum(1 for r in rows if "daemon restart" in r),
                   len(crashed), "B: one CDR per crashed call")
        sub.close()
    t.run("B: kill -9 during 20 calls, restart", sub_b)

    def sub_c():
        rc = d.stop()
        t.check_eq(rc, 0, "C: clean stop")
        d.start()
        sub = t.client(d.listen_port, "subscriber-2")
        sub.call("sys.subscribe", {"since": 0})
        sub.wait_count(2 + len(crashed), timeout=10)
        time.sleep(0.5)
        evs = sub.events("ext.notify_call.on_released")
        t.check_eq(len(evs), 2 + len(crashed),
                   "C: a second restart adds no event")
        sub.close()
    t.run("C: exactly once across restarts", sub_c)

    def sub_d():
        d.stop()
        ledger = os.path.join(d.state_dir, "calls.log")
        with open(ledger, "ab") as f:
            f.write(b'0badc0de {"op":"open","pid":9')   # torn, no newline
        d.start()
        log = d.log_text().split("===== start #%d" % d.starts)[-1]
        t.check("damaged or torn record" in log,
                "D: the torn ledger tail is reported")
        sp = t.sipp("uas_busy.xml", port=ports["busy"], calls=1).start()
        c = t.client(d.listen_port, "after-torn")
        reply = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(ports["busy"]), "play_content": "short.wav"})
        res_id, _ = check_construct_result(t, reply, node,
                                           d.uri(ports["busy"]), None)
        ev = c.wait_event(res_id, timeout=20) if res_id else None
        check_released(t, ev, res_id, None, "call rejected", "usr",
                       cause=486, label="D: a call after the torn tail")
        sp.check_exit(t, "D: the call reached the gateway")
        c.close()
    t.run("D: torn ledger tail", sub_d)
