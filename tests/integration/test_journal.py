#!/usr/bin/env python3
"""ctid integration test: durable events (docs/reliability.md, "Durable
events"; docs/protocol.md, seq and sys.subscribe since).

A  events carry seq after the contract's fields, increasing by one.
B  the creator disconnects mid-call (a 2 s prompt, the callee waits for
   BYE); after the call ended a new connection subscribes with since = the
   last seq before the call and receives exactly that call's on_released.
C  subscribe with since, then live: a call placed after the subscribe
   arrives after the replayed events, in seq order, no duplicates.
D  restart on the same state_dir: seq keeps increasing and since replay
   still returns the earlier events.
E  a torn journal tail (newest segment cut by a few bytes while ctid is
   stopped): ctid starts, logs a warning, and seq continues upward.
F  since invalid (negative, string, float, bool): -32602.
"""
import glob
import json
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, construct, check_released,  # noqa: E402
                      make_prompt, gateway, free_port, check_result)

CONTRACT_KEYS = ["res_id", "error", "begin_time", "answer_time", "end_time",
                 "dropped_by", "user_data", "cause"]

t = Test("journal")
with t:
    make_prompt(t.path("prompts", "short.wav"), 0.2)
    make_prompt(t.path("prompts", "long.wav"), 2.0)
    ports = {k: free_port("udp") for k in ("busy", "answer")}
    d = t.ctid(gateways=[gateway("gw" + k, p) for k, p in ports.items()])
    d.start()
    seen = []   # (seq, res_id) of every event so far, in order

    def busy_calls(c, n, label):
        """n rejected calls (fast) from connection c; returns their events."""
        sp = t.sipp("uas_busy.xml", port=ports["busy"], calls=n).start()
        evs = []
        for i in range(n):
            ud = "%s-%d" % (label, i)
            res_id = construct(t, c, d, d.uri(ports["busy"]), "short.wav", user_data=ud)
            if res_id is None:
                return evs
            ev = c.wait_event(res_id, timeout=20)
            check_released(t, ev, res_id, ud, "call rejected", "usr", cause=486,
                           label="%s event %d" % (label, i))
            evs.append(ev)
        sp.wait(10)
        sp.close()
        return evs

    def seq_of(ev):
        return ev.get("params", {}).get("seq") if ev is not None else None

    def seq_ids(evs):
        """(seq, res_id) of each event, as `seen` holds them."""
        return [(seq_of(e), e["params"]["res_id"]) for e in evs]

    def subscriber(name, since, what):
        """A new connection that sends sys.subscribe(since); checks that
        the reply is true. (client, reply)."""
        s = t.client(d.listen_port, name)
        r = s.call("sys.subscribe", since)
        check_result(t, r, True, what)
        return s, r

    def busy_call_after(label, what):
        """After a restart: one more rejected call; checks that its seq is
        above every seq seen. (creator client, the event or None)."""
        c = t.client(d.listen_port, "creator-" + label)
        evs = busy_calls(c, 1, label)
        ev = evs[0] if evs else None
        last = seen[-1][0] if seen else 0
        if ev is not None:
            t.check(seq_of(ev) > last, what, "%r after %r" % (seq_of(ev), last))
        return c, ev

    def sub_a():
        c = t.client(d.listen_port, "creator-A")
        evs = busy_calls(c, 3, "A")
        seqs = [seq_of(e) for e in evs]
        t.check(all(isinstance(s, int) and not isinstance(s, bool) for s in seqs),
                "A: every event has an integer seq", repr(seqs))
        t.check(seqs == list(range(1, 4)), "A: seq 1, 2, 3 on a fresh state_dir",
                repr(seqs))
        if evs and evs[0] is not None:
            keys = list(evs[0]["params"].keys())
            t.check_eq(keys, CONTRACT_KEYS + ["played_ms", "plays", "seq"],
                       "A: contract fields in order, the play figures "
                       "(issue 14), then seq")
        seen.extend(seq_ids(e for e in evs if e is not None))
        c.close()
    t.run("A: events carry increasing seq", sub_a)

    def sub_b():
        before = seen[-1][0] if seen else 0
        c = t.client(d.listen_port, "creator-B")
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["answer"]).start()
        res_id = construct(t, c, d, d.uri(ports["answer"]), "long.wav",
                           play_repeat=0, user_data="lost creator")
        if res_id is None:
            return
        time.sleep(0.5)                    # answered, playing
        c.close()                          # the creator goes away mid-call
        t.check(sp.wait(20) == 0, "B: the call ended with ctid's BYE")
        time.sleep(0.3)
        t.check(not c.events(), "B: the departed creator never read the event")
        n, r = subscriber("recoverer-B", {"since": before},
                          "B: sys.subscribe {since} returns true")
        ev = n.wait_event(res_id, timeout=5)
        check_released(t, ev, res_id, "lost creator", None, "sys", cause=200,
                       answered=True, label="B: recovered event")
        t.check_eq(seq_of(ev), before + 1, "B: the recovered event's seq")
        time.sleep(0.5)
        evs = n.events()
        t.check(len(evs) == 1, "B: exactly that one event was replayed",
                repr([e.raw for e in evs]))
        if r is not None and ev is not None:
            t.check(r.seq < ev.seq, "B: the reply precedes the replay")
        if ev is not None:
            seen.append((seq_of(ev), res_id))
        n.close()
    t.run("B: creator disconnects mid-call, event recovered with since", sub_b)

    def sub_c():
        since = seen[0][0] - 1 if seen else 0      # everything so far
        s, _ = subscriber("subscriber-C", [since],       # positional
                          "C: sys.subscribe [N] returns true")
        replayed = s.wait_count(1 + len(seen), timeout=5)[1:]
        c = t.client(d.listen_port, "creator-C")
        live = busy_calls(c, 2, "C")
        for e in live:
            if e is not None:
                t.check(s.wait_event(e["params"]["res_id"], timeout=5) is not None,
                        "C: the subscriber got live event seq %s" % seq_of(e))
        time.sleep(0.5)
        evs = s.events()
        seqs = [seq_of(e) for e in evs]
        want = [x[0] for x in seen] + [seq_of(e) for e in live]
        t.check_eq(seqs, want, "C: replay then live, in seq order, no duplicates")
        t.check_eq([seq_of(e) for e in replayed], [x[0] for x in seen],
                   "C: the replayed events came first")
        t.check_eq([e["params"]["res_id"] for e in evs[:len(seen)]],
                   [x[1] for x in seen], "C: replayed events are the same events")
        # the creator got its own events live, once each
        t.check_eq([seq_of(e) for e in c.events()], [seq_of(e) for e in live],
                   "C: the creator got its own events once")
        seen.extend(seq_ids(e for e in live if e is not None))
        s.close()
        c.close()
    t.run("C: since replay, then live", sub_c)

    def sub_d():
        t.check_eq(d.stop(), 0, "D: ctid stopped cleanly")
        d.start()
        c, ev = busy_call_after("D", "D: seq keeps increasing after a restart")
        if ev is not None:
            seen.extend(seq_ids([ev]))
        s, _ = subscriber("subscriber-D", {"since": 0}, "D: subscribe since 0")
        s.wait_count(1 + len(seen), timeout=5)
        time.sleep(0.3)
        t.check_eq(seq_ids(s.events()), seen,
                   "D: since 0 replays every event, also those before the restart")
        s.close()
        c.close()
    t.run("D: restart keeps seq and the journal", sub_d)

    def sub_e():
        t.check_eq(d.stop(), 0, "E: ctid stopped cleanly")
        segs = sorted(glob.glob(os.path.join(d.state_dir, "journal", "*.log")))
        if not t.check(len(segs) >= 1, "E: the journal has a segment file", repr(segs)):
            return
        size = os.path.getsize(segs[-1])
        os.truncate(segs[-1], size - 5)
        mark = len(d.log_text())
        d.start()
        log = d.log_text()[mark:]
        t.check("warn" in log and "journal" in log and "dropping" in log,
                "E: ctid logs a warning about the torn record",
                "\n".join(ln for ln in log.splitlines() if "journal" in ln))
        c, ev = busy_call_after("E", "E: seq continues above every seq sent")
        s, _ = subscriber("subscriber-E", {"since": 0}, "E: subscribe since 0")
        time.sleep(0.5)
        want = seen[:-1] + (seq_ids([ev]) if ev is not None else [])
        t.check_eq(seq_ids(s.events()), want,
                   "E: the replay has every event but the cut one")
        s.close()
        c.close()
    t.run("E: torn journal tail", sub_e)

    def sub_f():
        c = t.client(d.listen_port, "bad-F")
        for p in ({"since": -1}, {"since": "3"}, {"since": 1.5}, {"since": True},
                  [-7], ["x"]):
            r = c.call("sys.subscribe", p)
            err = (r or {}).get("error") or {}
            t.check(err.get("code") == -32602, "F: since %s is -32602" % json.dumps(p),
                    repr(r))
        r = c.call("sys.ping")
        check_result(t, r, "pong", "F: the connection stays usable")
        r = c.call("sys.subscribe", {})
        check_result(t, r, True,
                     "F: sys.subscribe without since still works (live only)")
        time.sleep(0.3)
        t.check_eq(c.events(), [], "F: live only: nothing replayed")
        c.close()
    t.run("F: invalid since", sub_f)
