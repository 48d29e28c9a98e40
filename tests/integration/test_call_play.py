#!/usr/bin/env python3
"""ctid integration test: answered calls play the prompt (contract §3-§5, §7).

A  PCMA, play_repeat 1, from_uri null: the construct result, exists while
   the call lives and not after, exactly one on_released (error null,
   dropped_by sys, cause 200) to the creator (after its reply) and to a
   sys.subscribe'd connection, and the RTP: sox's A-law of the prompt padded
   with 0xD5 to 20 ms frames, twice, byte for byte, PT 8, marker on the first
   packet only, consecutive seq, ts +160, one SSRC, paced in real time.
B  PCMU (the callee answers with PT 0), play_repeat 0, from_uri "10086",
   user_data null: mu-law padded with 0xFF, once.
C  defaults (play_repeat 1, user_data null), to_uri as an array, play_content
   as an item list, from_uri "anonymous" (anonymous From + Privacy: id).
D  process_id keeps increasing across a restart with the same state_dir.
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      expected_payload, make_prompt, gateway,
                      header, alaw_encode, ulaw_encode, read_wav, g711_of, FRAME,
                      free_port, check_result, check_one_stream,
                      request_half_closed)

PROMPT_SECONDS = 1.03  # not a multiple of 20 ms: the last frame is padded

t = Test("call_play")
with t:
    prompt = make_prompt(t.path("prompts", "notice.wav"), PROMPT_SECONDS)

    # the expected bytes come from sox; make sure sox and a reference G.711
    # encoder agree on this prompt, so a mismatch later is the daemon's
    samples = read_wav(prompt)
    t.check(g711_of(prompt, 8)[:len(samples)] == bytes(alaw_encode(s) for s in samples),
            "harness: sox A-law equals reference G.711 A-law for the prompt")
    t.check(g711_of(prompt, 0)[:len(samples)] == bytes(ulaw_encode(s) for s in samples),
            "harness: sox mu-law equals reference G.711 mu-law for the prompt")
    t.check(len(g711_of(prompt, 8)) == 52 * FRAME,
            "harness: 1.03 s prompt is 51.5 frames, padded to 52")

    ports = {k: free_port("udp") for k in ("A", "B", "C", "D", "E")}
    d = t.ctid(gateways=[gateway("gw" + k, p) for k, p in ports.items()])
    d.start()
    node = d.node_id
    c1 = t.client(d.listen_port, "creator")
    c2 = t.client(d.listen_port, "subscriber")
    pids = []

    def sub_subscribe():
        r = c2.call("sys.subscribe", {})
        check_result(t, r, True, "sys.subscribe returns true")
        r = c1.call("sys.ping")
        check_result(t, r, "pong", "sys.ping returns \"pong\"")
    t.run("subscribe", sub_subscribe)

    def call_a():
        sink = t.rtp_sink("A")
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["A"], rtp_sink_port=sink.port,
                    codec=8, ring_ms=700).start()
        to_uri = d.uri(ports["A"])
        user_data = 'order-42 "quoted" \u00fcnic\u00f6de \u2713'
        t0 = time.time()
        reply = c1.call("ext.notify_call.construct", {
            "from_uri": None, "to_uri": to_uri, "play_content": "notice.wav",
            "play_repeat": 1, "max_ring_seconds": 30, "user_data": user_data})
        res_id, pid = check_construct_result(t, reply, node, to_uri, user_data)
        if res_id is None:
            return
        pids.append(pid)
        r = c1.call("ext.notify_call.exists", {"res_id": res_id})
        check_result(t, r, True, "exists is true right after construct")
        r = c2.call("ext.notify_call.exists", [res_id])
        check_result(t, r, True,
                     "exists (positional, other connection) is true during the call")
        ev = c1.wait_event(res_id, timeout=30)
        t1 = time.time()
        check_released(t, ev, res_id, user_data, None, "sys", cause=200, answered=True,
                       t_before=t0, t_after=t1)
        if ev is not None:
            t.check(reply.seq < ev.seq, "the construct reply arrived before the event",
                    "reply #%d, event #%d" % (reply.seq, ev.seq))
            t.check(t1 - t0 >= 2 * PROMPT_SECONDS,
                    "the event came after two plays (%.2f s)" % (t1 - t0))
        ev2 = c2.wait_event(res_id, timeout=5)
        t.check(ev2 is not None, "the subscribed connection received the event too")
        if ev is not None and ev2 is not None:
            t.check(ev2.get("params") == ev.get("params"),
                    "both connections got the same event params",
                    "%r vs %r" % (ev2.get("params"), ev.get("params")))
        r = c1.call("ext.notify_call.exists", {"res_id": res_id})
        check_result(t, r, False, "exists is false after the event")
        sp.check_exit(t, "sipp received the daemon's BYE")
        sink.wait_quiet(0.5, 5)
        check_one_stream(t, sink, expected_payload(prompt, 8, 1), 8, "RTP A-law x2",
                         rtp_range=(d.rtp_lo, d.rtp_hi))
        inv = sp.received("INVITE")
        if t.check(len(inv) >= 1, "sipp got an INVITE"):
            t.check(inv[0].split("\n", 1)[0].startswith(
                "INVITE sip:13800000000@127.0.0.1:%d" % ports["A"]),
                "Request-URI dials the to_uri user at the gateway",
                inv[0].split("\n", 1)[0])
            frm = header(inv[0], "From") or ""
            t.check("sip:ctid@" in frm, "from_uri null: From is the default_from "
                    "(ctid)", frm)
            t.check("m=audio" in inv[0], "the INVITE carries an SDP offer")
        time.sleep(0.5)
        t.check(len(c1.events(res_id=res_id)) == 1, "exactly one event for the call "
                "(creator)", "%d" % len(c1.events(res_id=res_id)))
        t.check(len(c2.events(res_id=res_id)) == 1, "exactly one event for the call "
                "(subscriber)", "%d" % len(c2.events(res_id=res_id)))
    t.run("A: PCMA, play_repeat 1", call_a)

    def call_b():
        sink = t.rtp_sink("B")
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["B"], rtp_sink_port=sink.port,
                    codec=0).start()
        to_uri = d.uri(ports["B"], "10010")
        reply = c1.call("ext.notify_call.construct", {
            "from_uri": "10086", "to_uri": to_uri, "play_content": "notice.wav",
            "play_repeat": 0, "user_data": None})
        res_id, pid = check_construct_result(t, reply, node, to_uri, None)
        if res_id is None:
            return
        pids.append(pid)
        ev = c1.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, None, None, "sys", cause=200, answered=True)
        t.check(c2.wait_event(res_id, timeout=5) is not None,
                "the subscribed connection received the event")
        sp.check_exit(t, "sipp received the daemon's BYE")
        sink.wait_quiet(0.5, 5)
        check_one_stream(t, sink, expected_payload(prompt, 0, 0), 0, "RTP mu-law x1",
                         rtp_range=(d.rtp_lo, d.rtp_hi))
        inv = sp.received("INVITE")
        if inv:
            frm = header(inv[0], "From") or ""
            t.check("sip:10086@" in frm, "from_uri \"10086\": From user is 10086", frm)
    t.run("B: PCMU, play_repeat 0, from_uri 10086", call_b)

    def call_c():
        sink = t.rtp_sink("C")
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["C"], rtp_sink_port=sink.port,
                    codec=8).start()
        to_uri = d.uri(ports["C"], "10020")
        reply = c1.call("ext.notify_call.construct", {
            "from_uri": "anonymous", "to_uri": [to_uri],
            "play_content": [["notice.wav"]]})
        res_id, pid = check_construct_result(t, reply, node, to_uri, None)
        if res_id is None:
            return
        pids.append(pid)
        ev = c1.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, None, None, "sys", cause=200, answered=True)
        sp.check_exit(t, "sipp received the daemon's BYE")
        sink.wait_quiet(0.5, 5)
        check_one_stream(t, sink, expected_payload(prompt, 8, 1), 8,
                         "RTP default play_repeat (two plays)")
        inv = sp.received("INVITE")
        if inv:
            frm = header(inv[0], "From") or ""
            t.check("anonymous" in frm.lower(), "from_uri anonymous: anonymous From", frm)
            t.check((header(inv[0], "Privacy") or "").lower().find("id") >= 0,
                    "from_uri anonymous: Privacy: id", repr(header(inv[0], "Privacy")))
    t.run("C: defaults, array to_uri, item list, anonymous", call_c)

    def call_e():
        # `printf REQUEST | nc host port`: the client half-closes right after
        # its request and still reads. ctid must answer, deliver the event,
        # and only then close the connection.
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["E"]).start()
        lines = request_half_closed(d.listen_port, {
            "id": 7, "method": "ext.notify_call.construct",
            "params": {"to_uri": d.uri(ports["E"]), "play_content": "notice.wav",
                       "play_repeat": 0, "user_data": "nc"}})
        t.check(len(lines) == 2, "half-closed client got 2 lines, then EOF",
                repr(lines))
        if len(lines) == 2:
            t.check(lines[0].get("id") == 7 and "result" in lines[0],
                    "first line: the construct result", repr(lines[0]))
            ev = lines[1]
            t.check(ev.get("method") == "ext.notify_call.on_released" and
                    ev["params"]["res_id"] == lines[0].get("result", {}).get("res_id")
                    and ev["params"]["error"] is None,
                    "second line: its on_released, error null", repr(ev))
        sp.check_exit(t, "sipp received the daemon's BYE")
    t.run("E: nc-style client half-closes after its request", call_e)

    t.check(pids == sorted(pids) and len(set(pids)) == len(pids),
            "process_ids strictly increase across calls", repr(pids))

    def restart():
        rc = d.stop()
        t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
        d.start()
        c = t.client(d.listen_port, "after-restart")
        sp = t.sipp("uas_not_found.xml", port=ports["D"]).start()
        to_uri = d.uri(ports["D"])
        reply = c.call("ext.notify_call.construct", {"to_uri": to_uri,
                                                     "play_content": "notice.wav"})
        res_id, pid = check_construct_result(t, reply, node, to_uri, None)
        if pid is not None and pids:
            t.check(pid > max(pids), "process_id after restart is larger than before",
                    "%d after %d" % (pid, max(pids)))
        if res_id:
            ev = c.wait_event(res_id, timeout=15)
            check_released(t, ev, res_id, None, "dial failed", "sys", cause=404,
                           answered=False)
        sp.check_exit(t)
    t.run("D: restart keeps process_id increasing", restart)

    t.section("shutdown")
    t.check(d.alive(), "ctid still running at the end")
    rc = d.stop()
    t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
