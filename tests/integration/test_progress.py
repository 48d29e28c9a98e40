#!/usr/bin/env python3
"""ctid integration test: issue 14's progress events, play figures and the
keys wait, with sipp callees (no key source needed).

A  construct progress:true, the callee rings 400 ms then answers: the
   creator gets on_progress ringing, then answered ({res_id, state, time,
   user_data, seq}), then on_released, seqs increasing; a subscriber with
   {"progress": true} gets the same three; a plain subscriber only the
   on_released. on_released has played_ms == 2 plays of the prompt and
   plays 2, and no keys fields (no keys asked).
B  a call without progress: no on_progress to anyone, even the progress
   subscriber (docs/protocol.md "Who gets them": the construct decides,
   so a call without the new params takes no more seqs than before).
C  replay by since: {"since": 0, "progress": true} replays exactly the
   events the progress subscriber got live, in order; {"since": 0} the same
   without the on_progress ones.
D  the callee hangs up 1.5 s into a 4 s prompt: played_ms < the prompt
   (about 1.5 s), plays 0.
E  keys {"wait_seconds": 1}, no key ever comes: after the prompt the call
   waits about 1 s, then hangs up; keys "", key_time null, then played_ms
   and plays; an unanswered (486) call has played_ms 0 and plays 0.
F  sys.subscribe {"progress": "yes"}: -32602 naming progress.
G  early media after ringing (uas_early_media.xml: 183 without SDP, 180,
   183 with SDP, 180 and 183 with SDP again, 200): ringing, early_media,
   answered, each once and in that order, then on_released, at the creator
   and the progress subscriber (same seqs); a replay by since (with
   progress) gives the same four lines.
H  early media without ringing (uas_early_media_only.xml: 183 with SDP,
   200): early_media, answered, on_released; no ringing.
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_released, make_prompt, gateway,  # noqa: E402
                      free_port, check_result)

PROGRESS = "ext.notify_call.on_progress"
RELEASED = "ext.notify_call.on_released"

t = Test("progress")
with t:
    make_prompt(t.path("prompts", "half.wav"), 0.5)
    make_prompt(t.path("prompts", "long.wav"), 4.0)
    make_prompt(t.path("prompts", "short.wav"), 0.3)
    ports = {k: free_port("udp") for k in ("A", "B", "D", "E", "E2", "G",
                                           "H")}
    d = t.ctid(gateways=[gateway("gw" + k, p) for k, p in ports.items()])
    d.start()
    creator = t.client(d.listen_port, "creator")
    plain = t.client(d.listen_port, "plain-subscriber")
    prog = t.client(d.listen_port, "progress-subscriber")
    check_result(t, plain.call("sys.subscribe", {}), True, "plain subscribe")
    check_result(t, prog.call("sys.subscribe", {"progress": True}), True,
                 "progress subscribe")
    state = {}

    def construct(c, port, extra=None, sipp="uas_answer_wait_bye.xml",
                  prompt="half.wav", repeat=1, ring_ms=400):
        sp = t.sipp(sipp, port=port, ring_ms=ring_ms).start()
        params = {"to_uri": d.uri(port), "play_content": prompt,
                  "play_repeat": repeat, "user_data": "u-%d" % port}
        params.update(extra or {})
        r = c.call("ext.notify_call.construct", params)
        ok = t.check(r is not None and "result" in r, "construct accepted",
                     repr(r))
        res_id = r["result"]["res_id"] if ok else None
        return sp, res_id

    def names(c, res_id):
        out = []
        for m in c.events(res_id=res_id):
            p = m["params"]
            out.append(p.get("state") if m["method"] == PROGRESS
                       else "released")
        return out

    def sub_a():
        sp, res_id = construct(creator, ports["A"], {"progress": True})
        if res_id is None:
            return
        state["A"] = res_id
        ev = creator.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "u-%d" % ports["A"], None, "sys",
                       cause=200, answered=True, label="A")
        t.check_eq(names(creator, res_id), ["ringing", "answered", "released"],
                   "A: creator: ringing, answered, then on_released")
        evs = creator.events(res_id=res_id)
        for m in evs[:2]:
            p = m["params"]
            t.check_eq(list(p.keys()),
                       ["res_id", "state", "time", "user_data", "seq"],
                       "A: on_progress fields in order")
            t.check_eq(p["user_data"], "u-%d" % ports["A"], "A: user_data")
            t.check(isinstance(p["time"], int) and
                    abs(p["time"] - time.time()) < 60, "A: time is now",
                    repr(p["time"]))
        seqs = [m["params"]["seq"] for m in evs]
        t.check(seqs == sorted(seqs) and len(set(seqs)) == 3,
                "A: seqs increase", repr(seqs))
        prog.wait_event(res_id, timeout=5)
        t.check_eq(names(prog, res_id), ["ringing", "answered", "released"],
                   "A: progress subscriber gets the same")
        t.check_eq([m["params"]["seq"] for m in prog.events(res_id=res_id)],
                   seqs, "A: same seqs at the progress subscriber")
        plain.wait_event(res_id, timeout=5)
        t.check_eq(names(plain, res_id), ["released"],
                   "A: plain subscriber: on_released only")
        p = ev["params"] if ev else {}
        t.check_eq((p.get("played_ms"), p.get("plays")), (1000, 2),
                   "A: played_ms 2 x 500 ms, plays 2")
        t.check("keys" not in p and "key_time" not in p,
                "A: no keys fields without keys", repr(p))
        t.check_eq(sp.wait(10), 0, "A: sipp completed")
    t.run("A progress to creator and progress subscribers", sub_a)

    def sub_b():
        sp, res_id = construct(creator, ports["B"])
        if res_id is None:
            return
        ev = creator.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "u-%d" % ports["B"], None, "sys",
                       cause=200, answered=True, label="B")
        # Each connection's on_released first: what came before it is all
        # there is (the plain subscriber's may still be on its way).
        prog.wait_event(res_id, timeout=5)
        plain.wait_event(res_id, timeout=5)
        for who, c in (("creator", creator), ("progress subscriber", prog),
                       ("plain subscriber", plain)):
            t.check_eq(names(c, res_id), ["released"],
                       "B: %s: no on_progress for a call without progress"
                       % who)
        t.check_eq(sp.wait(10), 0, "B: sipp completed")
    t.run("B no progress without progress:true", sub_b)

    def sub_c():
        live = [(m["method"], m["params"]["seq"]) for m in prog.events()]
        live_plain = [(m["method"], m["params"]["seq"])
                      for m in plain.events()]
        r1 = t.client(d.listen_port, "replay-progress")
        check_result(t, r1.call("sys.subscribe",
                                {"since": 0, "progress": True}),
                     True, "C: subscribe since 0 with progress")
        r2 = t.client(d.listen_port, "replay-plain")
        check_result(t, r2.call("sys.subscribe", {"since": 0}), True,
                     "C: subscribe since 0")
        deadline = time.time() + 10
        while time.time() < deadline and (len(r1.events()) < len(live) or
                                          len(r2.events()) < len(live_plain)):
            time.sleep(0.1)
        got = [(m["method"], m["params"]["seq"]) for m in r1.events()]
        t.check_eq(got, live, "C: progress replay == what the progress "
                   "subscriber got live")
        got = [(m["method"], m["params"]["seq"]) for m in r2.events()]
        t.check_eq(got, live_plain, "C: plain replay: no on_progress, "
                   "== what the plain subscriber got live")
        t.check(any(m == PROGRESS for m, _ in live), "C: there were "
                "progress events to replay", repr(live))
    t.run("C replay by since filters progress", sub_c)

    def sub_d():
        sp, res_id = construct(creator, ports["D"], sipp="uas_answer_hangup.xml",
                               prompt="long.wav", repeat=0, ring_ms=20)
        if res_id is None:
            return
        ev = creator.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "u-%d" % ports["D"], None, "usr",
                       cause=200, answered=True, label="D")
        p = ev["params"] if ev else {}
        ms = p.get("played_ms", -1)
        t.check(1000 <= ms <= 3000, "D: played_ms about 1.5 s of a 4 s "
                "prompt", repr(ms))
        t.check_eq(p.get("plays"), 0, "D: no complete play")
    t.run("D callee hangs up early: played_ms < the prompt", sub_d)

    def sub_e():
        sp, res_id = construct(creator, ports["E"], {"keys": {"wait_seconds": 1}},
                               prompt="short.wav", repeat=0, ring_ms=20)
        if res_id is None:
            return
        ev = creator.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "u-%d" % ports["E"], None, "sys",
                       cause=200, answered=True, label="E")
        p = ev["params"] if ev else {}
        t.check_eq([k for k in p if k in ("keys", "key_time", "played_ms",
                                           "plays", "seq")],
                   ["keys", "key_time", "played_ms", "plays", "seq"],
                   "E: keys, key_time, played_ms, plays, seq in order")
        t.check_eq((p.get("keys"), p.get("key_time")), ("", None),
                   "E: keys \"\", key_time null")
        t.check_eq((p.get("played_ms"), p.get("plays")), (300, 1),
                   "E: played_ms 300, plays 1")
        if ev:
            held = ev.at - min(m.at for m in creator.all_msgs()
                               if m.get("result", {}) and
                               isinstance(m.get("result"), dict) and
                               m["result"].get("res_id") == res_id)
            t.check(held >= 1.2, "E: waited for a key after the prompt",
                    "%.2f s" % held)
        t.check_eq(sp.wait(10), 0, "E: sipp completed (our BYE)")
        sp, res_id = construct(creator, ports["E2"], {"keys": {}},
                               sipp="uas_busy.xml")
        ev = creator.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "u-%d" % ports["E2"], "call rejected",
                       "usr", cause=486, answered=False, label="E2")
        p = ev["params"] if ev else {}
        t.check_eq((p.get("keys"), p.get("key_time"), p.get("played_ms"),
                    p.get("plays")), ("", None, 0, 0),
                   "E2: unanswered: keys \"\", null, 0, 0")
    t.run("E keys: no key within wait_seconds", sub_e)

    def sub_f():
        c = t.client(d.listen_port, "bad")
        r = c.call("sys.subscribe", {"progress": "yes"})
        t.check(r is not None and r.get("error", {}).get("code") == -32602
                and "progress" in r["error"].get("message", ""),
                "F: progress not a boolean: -32602 naming it", repr(r))
    t.run("F subscribe progress must be a boolean", sub_f)

    def early_media(label, port, scenario, want):
        """A progress:true call to a callee whose 200 follows a 183 with
        SDP: the creator and the progress subscriber get want (the states,
        then "released") in that order, with the same increasing seqs, and
        a replay by since with progress gives the same lines."""
        since = max([m["params"]["seq"] for m in prog.events()] or [0])
        sp, res_id = construct(creator, port, {"progress": True},
                               sipp=scenario, ring_ms=200)
        if res_id is None:
            return
        ev = creator.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "u-%d" % port, None, "sys",
                       cause=200, answered=True, label=label)
        t.check_eq(names(creator, res_id), want,
                   "%s: creator: %s in order" % (label, ", ".join(want)))
        evs = creator.events(res_id=res_id)
        seqs = [m["params"]["seq"] for m in evs]
        t.check(seqs == sorted(seqs) and len(set(seqs)) == len(want),
                "%s: seqs increase" % label, repr(seqs))
        for m in evs[:-1]:
            t.check_eq(list(m["params"].keys()),
                       ["res_id", "state", "time", "user_data", "seq"],
                       "%s: on_progress %s fields in order"
                       % (label, m["params"].get("state")))
        prog.wait_event(res_id, timeout=5)
        t.check_eq([(m["method"], m["params"]["seq"])
                    for m in prog.events(res_id=res_id)],
                   [(m["method"], m["params"]["seq"]) for m in evs],
                   "%s: the progress subscriber got the same events" % label)
        r = t.client(d.listen_port, "replay-" + label)
        check_result(t, r.call("sys.subscribe",
                               {"since": since, "progress": True}),
                     True, "%s: subscribe since %d with progress"
                     % (label, since))
        r.wait_event(res_id, timeout=10)
        t.check_eq([m.raw for m in r.events(res_id=res_id)],
                   [m.raw for m in evs],
                   "%s: the replay by since gives the same lines" % label)
        r.close()
        t.check_eq(sp.wait(10), 0, "%s: sipp completed" % label)

    t.run("G early media after ringing",
          early_media, "G", ports["G"], "uas_early_media.xml",
          ["ringing", "early_media", "answered", "released"])
    t.run("H early media without ringing",
          early_media, "H", ports["H"], "uas_early_media_only.xml",
          ["early_media", "answered", "released"])
