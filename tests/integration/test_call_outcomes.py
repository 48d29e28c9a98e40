#!/usr/bin/env python3
"""ctid integration test: the outcome table of contract §4, one call per row.

callee hangs up mid-play (null/usr/200), 486 and 603 (call rejected/usr),
404 and 480 (dial failed/sys), ringing past max_ring_seconds (ring timeout/
sys/487, CANCEL seen by the callee), 100 Trying and nothing more past
dial_timeout (call timeout/sys, CANCEL seen), nobody listening (ICMP) and a
silent gateway (dial error/sys), 407 and 401 digest challenges answered with
the gateway's credentials (played normally), drop before answer (canceled/
sys, CANCEL seen), drop after answer (null/sys, BYE seen), drop/exists of
unknown ids, and SIGTERM during ringing (shutdown/sys).
"""
import collections
import os
import socket
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      check_one_stream, expected_payload, make_prompt, gateway,
                      free_port, header, digest_params, digest_ok, check_result)

DIAL_TIMEOUT = 4
SHORT = 1.03   # prompt seconds
LONG = 3.01

t = Test("call_outcomes")
with t:
    short = make_prompt(t.path("prompts", "short.wav"), SHORT)
    long_ = make_prompt(t.path("prompts", "long.wav"), LONG, synth=("sine", "440"))

    names = ["hangup", "busy", "decline", "notfound", "unavail", "ring", "trying",
             "nobody", "auth407", "auth401", "dropring", "dropans", "shutdown"]
    port = {n: free_port("udp") for n in names}
    # a gateway that swallows every datagram and never answers
    silent = t.add_cleanup(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    silent.bind(("127.0.0.1", 0))
    port["silent"] = silent.getsockname()[1]
    names.append("silent")
    gws = []
    for n in names:
        kw = {}
        if n.startswith("auth"):
            kw = {"username": "alice", "password": "secret"}
        gws.append(gateway("gw_" + n, port[n], **kw))
    d = t.ctid(gateways=gws, conf={"dial_timeout": DIAL_TIMEOUT})
    d.start()
    c = t.client(d.listen_port, "client")
    all_ids = []

    def construct(name, play="short.wav", repeat=1, ring=None, user="n"):
        to_uri = d.uri(port[name])
        params = {"to_uri": to_uri, "play_content": play, "play_repeat": repeat,
                  "user_data": "ud-" + name}
        if ring is not None:
            params["max_ring_seconds"] = ring
        t0 = time.time()
        reply = c.call("ext.notify_call.construct", params)
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, "ud-" + name)
        if res_id:
            all_ids.append(res_id)
        return res_id, t0

    def released(name, error, dropped_by, cause, answered, timeout=30, **kw):
        """Constructs a call to gateway `name` (kw: construct's), waits for
        its on_released and checks it. (t0, t1): construct sent, event
        seen; None when the construct failed."""
        res_id, t0 = construct(name, **kw)
        if not res_id:
            return None
        ev = c.wait_event(res_id, timeout=timeout)
        t1 = time.time()
        check_released(t, ev, res_id, "ud-" + name, error, dropped_by, cause=cause,
                       answered=answered, t_before=t0, t_after=t1)
        return t0, t1

    # --- answered, the callee hangs up during playback
    def hangup():
        sink = t.rtp_sink()
        sp = t.sipp("uas_answer_hangup.xml", port=port["hangup"],
                    rtp_sink_port=sink.port).start()
        if not released("hangup", None, "usr", 200, True, play="long.wav", repeat=1):
            return
        sp.check_exit(t, "the daemon answered the callee's BYE")
        sink.wait_quiet(0.5, 5)
        n_quiet = sink.count()
        pkts = check_one_stream(t, sink, expected_payload(long_, 8, 1), 8,
                                "RTP until the hang-up", full=False)
        if pkts is not None:
            n = len(pkts)
            t.check(50 <= n <= 120, "RTP stopped about 1.5 s after the answer "
                    "(%d packets)" % n)
        time.sleep(0.5)
        t.check(sink.count() == n_quiet, "no more RTP after the hang-up",
                "%d more packets" % (sink.count() - n_quiet))
    t.run("callee hangs up mid-play", hangup)

    # --- final failure responses, then the timers: one row a case. The
    # callee (scenario) answers on gateway gw; the event must say error/
    # dropped_by/cause with no answer_time; sipp exiting 0 shows `acked`.
    # ring: max_ring_seconds; elapsed: (min, max) s from construct to event.
    Outcome = collections.namedtuple(
        "Outcome", "title gw scenario error dropped_by cause acked ring elapsed")
    outcomes = [
        Outcome("486 Busy Here", "busy", "uas_busy.xml",
                "call rejected", "usr", 486, "the daemon ACKed the 486", None, None),
        Outcome("603 Decline", "decline", "uas_decline.xml",
                "call rejected", "usr", 603, "the daemon ACKed the 603", None, None),
        Outcome("404 Not Found", "notfound", "uas_not_found.xml",
                "dial failed", "sys", 404, "the daemon ACKed the 404", None, None),
        Outcome("480 Temporarily Unavailable", "unavail", "uas_unavailable.xml",
                "dial failed", "sys", 480, "the daemon ACKed the 480", None, None),
        Outcome("ringing past max_ring_seconds=2", "ring", "uas_ring_forever.xml",
                "ring timeout", "sys", 487,
                "the callee got CANCEL (and the 487 was ACKed)", 2, (1.5, 5.0)),
        Outcome("100 Trying only, past dial_timeout=%d" % DIAL_TIMEOUT, "trying",
                "uas_trying_forever.xml", "call timeout", "sys", None,
                "the gateway got CANCEL (and the 487 was ACKed)", None,
                (DIAL_TIMEOUT - 0.5, DIAL_TIMEOUT + 4.0)),
    ]

    def outcome(o):
        sp = t.sipp(o.scenario, port=port[o.gw], ring_ms=300).start()
        times = released(o.gw, o.error, o.dropped_by, o.cause, False, ring=o.ring)
        if not times:
            return
        t0, t1 = times
        if o.elapsed:
            t.check(o.elapsed[0] <= t1 - t0 <= o.elapsed[1],
                    "the event came %.1f..%.1f s after construct (%.2f s)" % (
                        o.elapsed[0], o.elapsed[1], t1 - t0))
        sp.check_exit(t, o.acked)
    for o in outcomes:
        t.run(o.title, outcome, o)

    def nobody():
        # nothing listens on this UDP port (ICMP port unreachable or silence)
        times = released("nobody", "dial error", "sys", None, False,
                         timeout=DIAL_TIMEOUT + 40)
        if not times:
            return
        t0, t1 = times
        t.check(t1 - t0 <= DIAL_TIMEOUT + 4,
                "dial error within dial_timeout (%.2f s)" % (t1 - t0))
    t.run("nobody listening (ICMP port unreachable)", nobody)

    def silent_gw():
        times = released("silent", "dial error", "sys", None, False,
                         timeout=DIAL_TIMEOUT + 40)
        if not times:
            return
        t0, t1 = times
        # The stack stops retransmitting an unanswered INVITE (Timer B) at
        # 3/4 of dial_timeout, so the dial error comes before the dial
        # timer, which would say "call timeout" (docs/protocol.md).
        t.check(0.75 * DIAL_TIMEOUT - 0.5 <= t1 - t0 <= DIAL_TIMEOUT,
                "dial error at Timer B = 3/4 of dial_timeout=%d (%.2f s)"
                % (DIAL_TIMEOUT, t1 - t0))
        silent.settimeout(0.2)
        got = []
        try:
            while True:
                got.append(silent.recv(65536))
        except OSError:
            pass
        t.check(any(g.startswith(b"INVITE ") for g in got),
                "the INVITE reached the silent gateway", "%d datagrams" % len(got))
    t.run("silent gateway (no response at all)", silent_gw)

    # --- digest authentication
    def auth(name, scenario):
        sink = t.rtp_sink()
        sp = t.sipp(scenario, port=port[name], rtp_sink_port=sink.port).start()
        if not released(name, None, "sys", 200, True, repeat=0):
            return
        sp.check_exit(t, "challenge answered, call played, BYE received")
        invites = sp.received("INVITE")
        t.check(len(invites) == 2, "two INVITEs (plain, then with credentials)",
                "%d INVITEs" % len(invites))
        hdr = "Proxy-Authorization" if name == "auth407" else "Authorization"
        if len(invites) >= 2:
            val = header(invites[-1], hdr)
            if t.check(val is not None, "second INVITE carries %s" % hdr):
                p = digest_params(val)
                method_uri = invites[-1].split(" ")[1]
                t.check(digest_ok(p, "INVITE", "alice", "secret"),
                        "%s digest is right for alice/secret" % hdr, val)
                t.check(p.get("realm") == "ctid.test", "digest realm ctid.test", val)
                t.check(p.get("uri") == method_uri, "digest uri is the Request-URI",
                        "uri=%r, request line %r" % (p.get("uri"), method_uri))
            cid = [header(m, "Call-ID") for m in invites]
            t.check(cid[0] == cid[-1], "same Call-ID on the retried INVITE", repr(cid))
        sink.wait_quiet(0.5, 5)
        check_one_stream(t, sink, expected_payload(short, 8, 0), 8, "RTP after auth")
    t.run("407 Proxy Authentication Required", auth, "auth407", "uas_auth.xml")
    t.run("401 Unauthorized", auth, "auth401", "uas_auth_401.xml")

    # --- drop
    def dropring():
        sp = t.sipp("uas_ring_forever.xml", port=port["dropring"]).start()
        res_id, t0 = construct("dropring")
        if not res_id:
            return
        time.sleep(1.0)   # the 180 has arrived by now
        r = c.call("ext.notify_call.drop", {"res_id": res_id})
        check_result(t, r, True, "drop returns true")
        ev = c.wait_event(res_id, timeout=15)
        check_released(t, ev, res_id, "ud-dropring", "canceled", "sys", cause=None,
                       answered=False, t_before=t0, t_after=time.time())
        if r is not None and ev is not None:
            t.check(r.seq < ev.seq, "drop's reply came before the event")
        sp.check_exit(t, "the callee got CANCEL (and the 487 was ACKed)")
        r = c.call("ext.notify_call.exists", {"res_id": res_id})
        check_result(t, r, False, "exists false after the "
                     "event")
    t.run("drop before answer", dropring)

    def dropans():
        sink = t.rtp_sink()
        sp = t.sipp("uas_answer_wait_bye.xml", port=port["dropans"],
                    rtp_sink_port=sink.port).start()
        res_id, t0 = construct("dropans", play="long.wav", repeat=1)
        if not res_id:
            return
        got = sink.wait_packets(25, timeout=15)
        t.check(got, "RTP is flowing before the drop")
        r = c.call("ext.notify_call.drop", [res_id])
        check_result(t, r, True, "drop (positional) returns true")
        ev = c.wait_event(res_id, timeout=15)
        t1 = time.time()
        check_released(t, ev, res_id, "ud-dropans", None, "sys", cause=200,
                       answered=True, t_before=t0, t_after=t1)
        t.check(t1 - t0 < 2 * LONG, "the call ended early (%.2f s)" % (t1 - t0))
        sp.check_exit(t, "the callee got BYE")
        sink.wait_quiet(0.5, 5)
        check_one_stream(t, sink, expected_payload(long_, 8, 1), 8,
                         "RTP until the drop", full=False)
        r = c.call("ext.notify_call.drop", {"res_id": res_id})
        t.check(r is not None and (r.get("error") or {}).get("code") == 404,
                "drop of the released id: error 404", repr(r))
    t.run("drop after answer", dropans)

    def unknown():
        bogus = "%s-ext.notify_call-1" % d.node_id
        r = c.call("ext.notify_call.drop", {"res_id": bogus})
        t.check(r is not None and (r.get("error") or {}).get("code") == 404,
                "drop of an unknown res_id: error 404", repr(r))
        if r is not None:
            t.check_eq(r.get("jsonrpc"), "2.0", "error reply jsonrpc")
            t.check(isinstance((r.get("error") or {}).get("message"), str),
                    "error reply has a message")
        r = c.call("ext.notify_call.drop", {"res_id": "9.9.9-ext.notify_call-1"})
        t.check(r is not None and (r.get("error") or {}).get("code") == 404,
                "drop of another node's res_id: error 404", repr(r))
        r = c.call("ext.notify_call.exists", {"res_id": bogus})
        check_result(t, r, False, "exists of an unknown res_id: false")
        r = c.call("ext.notify_call.drop", {})
        t.check(r is not None and (r.get("error") or {}).get("code") == -32602 and
                "res_id" in (r.get("error") or {}).get("message", ""),
                "drop without res_id: -32602 naming res_id", repr(r))
    t.run("drop / exists of unknown ids", unknown)

    def exactly_once():
        time.sleep(0.5)
        counts = {i: len(c.events(res_id=i)) for i in all_ids}
        bad = {i: n for i, n in counts.items() if n != 1}
        t.check(not bad, "exactly one on_released per constructed call (%d calls)" %
                len(all_ids), repr(bad))
        others = [e for e in c.events() if e.get("params", {}).get("res_id") not in
                  all_ids]
        t.check(not others, "no event for anything else", repr(others[:3]))
    t.run("exactly one event per call", exactly_once)

    def stop_main():
        t0 = time.time()
        rc = d.stop(timeout=15)
        t.check(rc == 0, "ctid exits 0 within 15 s of SIGTERM after all of the "
                "above (took %.1f s)" % (time.time() - t0), "exit %r" % (rc,))
    t.run("SIGTERM after the calls", stop_main)

    # --- SIGTERM with a call ringing (a fresh daemon, nothing else pending)
    def shutdown():
        d2 = t.ctid(name="ctid2", gateways=[gateway("gw", port["shutdown"])],
                    conf={"shutdown_grace": 0})
        d2.start()
        c2 = t.client(d2.listen_port, "client2")
        sp = t.sipp("uas_ring_forever.xml", port=port["shutdown"]).start()
        to_uri = d2.uri(port["shutdown"])
        t0 = time.time()
        reply = c2.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": "short.wav", "user_data": "ud-shutdown"})
        res_id, _ = check_construct_result(t, reply, d2.node_id, to_uri, "ud-shutdown")
        if not res_id:
            return
        time.sleep(1.0)
        rc = d2.stop(timeout=15)
        t.check(rc == 0, "ctid exits 0 within 15 s of SIGTERM with a call ringing "
                "(took %.1f s)" % (time.time() - t0 - 1.0), "exit %r" % (rc,))
        ev = c2.wait_event(res_id, timeout=2)
        check_released(t, ev, res_id, "ud-shutdown", "shutdown", "sys", cause=None,
                       answered=False)
        sp.check_exit(t, "the callee got CANCEL before the daemon exited",
                      timeout=10)
    t.run("SIGTERM while ringing", shutdown)
