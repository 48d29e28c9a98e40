#!/usr/bin/env python3
"""ctid integration test: many connections and concurrent calls (§2, §3, §4).

50 connections send sys.ping at the same moment and each gets its own pong.
5 clients construct at the same moment toward one gateway (sipp -m 5): each
gets its own result and exactly one on_released, for its own res_id, on its
own connection; connections that did not construct (and did not subscribe)
get no event; the 5 RTP streams each carry the full expected payload.
Capacity: a gateway with max_calls = 1 that is busy ringing makes a to_uri
list fall through to the next entry, and a construct with no free gateway
gets 503 and no event. A creator that disconnects right after its construct
does not stop the call, and a subscribed connection still gets the event.
"""
import os
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      check_rtp_stream, expected_payload, make_prompt, gateway,
                      free_port, _short, check_result)

N_CONN = 50
N_CALLS = 5

t = Test("many_clients")
with t:
    prompt = make_prompt(t.path("prompts", "notice.wav"), 1.03)
    gw, gw_small, gw_spare = free_port("udp"), free_port("udp"), free_port("udp")
    d = t.ctid(gateways=[gateway("gw", gw), gateway("small", gw_small, max_calls=1),
                         gateway("spare", gw_spare)])
    d.start()
    bystanders = []

    def pings():
        conns = [t.client(d.listen_port, "c%02d" % i) for i in range(N_CONN)]
        bystanders.extend(conns)
        barrier = threading.Barrier(N_CONN)

        def go(i):
            barrier.wait()
            conns[i].request("sys.ping", id=5000 + i)
        threads = [threading.Thread(target=go, args=(i,)) for i in range(N_CONN)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        bad = []
        for i, c in enumerate(conns):
            r = c.wait_reply(5000 + i, 10)
            if r is None or r.get("result") != "pong" or len(c.all_msgs()) != 1:
                bad.append((i, r, len(c.all_msgs())))
        t.check(not bad, "%d concurrent sys.ping: each connection got exactly its own "
                "pong" % N_CONN, _short(bad))
    t.run("%d connections ping at once" % N_CONN, pings)

    def calls():
        sink = t.rtp_sink()
        sp = t.sipp("uas_answer_wait_bye.xml", port=gw, rtp_sink_port=sink.port,
                    calls=N_CALLS, ring_ms=500).start()
        clients = [t.client(d.listen_port, "caller%d" % i) for i in range(N_CALLS)]
        to_uri = d.uri(gw)
        replies = [None] * N_CALLS
        barrier = threading.Barrier(N_CALLS)

        def go(i):
            barrier.wait()
            replies[i] = clients[i].call("ext.notify_call.construct", {
                "to_uri": to_uri, "play_content": "notice.wav", "play_repeat": 1,
                "user_data": "call-%d" % i}, timeout=10)
        threads = [threading.Thread(target=go, args=(i,)) for i in range(N_CALLS)]
        t0 = time.time()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ids, pids = [], []
        for i in range(N_CALLS):
            res_id, pid = check_construct_result(t, replies[i], d.node_id, to_uri,
                                                 "call-%d" % i, label="construct %d" % i)
            ids.append(res_id)
            pids.append(pid)
        t.check(None not in pids and len(set(pids)) == N_CALLS,
                "%d distinct process_ids" % N_CALLS, repr(pids))
        for i in range(N_CALLS):
            if ids[i] is None:
                continue
            ev = clients[i].wait_event(ids[i], timeout=30)
            check_released(t, ev, ids[i], "call-%d" % i, None, "sys", cause=200,
                           answered=True, t_before=t0, t_after=time.time(),
                           label="event %d" % i)
        time.sleep(0.5)
        for i in range(N_CALLS):
            evs = clients[i].events()
            t.check(len(evs) == 1 and evs[0].get("params", {}).get("res_id") == ids[i],
                    "caller %d got exactly one event, its own" % i,
                    _short([e.get("params", {}).get("res_id") for e in evs]))
        leaked = [c.name for c in bystanders if c.events()]
        t.check(not leaked, "connections that neither constructed nor subscribed got "
                "no event", repr(leaked))
        sp.check_exit(t, "sipp: all %d calls ended with the daemon's BYE" % N_CALLS)
        sink.wait_quiet(0.5, 5)
        streams = list(sink.streams().values())
        t.check(len(streams) == N_CALLS, "%d RTP streams" % N_CALLS,
                "%d streams" % len(streams))
        want = expected_payload(prompt, 8, 1)
        srcs = set()
        for k, pkts in enumerate(streams):
            check_rtp_stream(t, pkts, want, 8, "stream %d" % k,
                             rtp_range=(d.rtp_lo, d.rtp_hi))
            srcs.add(pkts[0].src)
        t.check(len(srcs) == len(streams), "each call has its own RTP source port")
    t.run("%d simultaneous calls" % N_CALLS, calls)

    def capacity():
        c = t.client(d.listen_port, "cap")
        ring = t.sipp("uas_ring_forever.xml", port=gw_small).start()
        sink = t.rtp_sink()
        spare = t.sipp("uas_answer_wait_bye.xml", port=gw_spare,
                       rtp_sink_port=sink.port).start()
        small_uri, spare_uri = d.uri(gw_small), d.uri(gw_spare)
        r1 = c.call("ext.notify_call.construct", {
            "to_uri": small_uri, "play_content": "notice.wav", "user_data": "first"})
        id1, _ = check_construct_result(t, r1, d.node_id, small_uri, "first",
                                        label="first call on the max_calls=1 gateway")
        time.sleep(0.5)
        r2 = c.call("ext.notify_call.construct", {
            "to_uri": [small_uri, spare_uri], "play_content": "notice.wav",
            "play_repeat": 0, "user_data": "fallback"})
        id2, _ = check_construct_result(t, r2, d.node_id, spare_uri, "fallback",
                                        label="to_uri list while the first gateway "
                                        "is full: the second entry")
        r3 = c.call("ext.notify_call.construct", {
            "to_uri": [small_uri], "play_content": "notice.wav", "user_data": "full"})
        t.check(r3 is not None and (r3.get("error") or {}).get("code") == 503,
                "construct to the full gateway only: 503", _short(r3))
        if id2:
            ev = c.wait_event(id2, timeout=20)
            check_released(t, ev, id2, "fallback", None, "sys", cause=200, answered=True,
                           label="fallback event")
        if id1:
            r = c.call("ext.notify_call.drop", {"res_id": id1})
            check_result(t, r, True, "drop the ringing call")
            ev = c.wait_event(id1, timeout=15)
            check_released(t, ev, id1, "first", "canceled", "sys", answered=False,
                           label="first event")
        ring.check_exit(t, "ringing gateway got CANCEL")
        spare.check_exit(t, "spare gateway call ended with BYE")
        time.sleep(0.5)
        ids = [e.get("params", {}).get("res_id") for e in c.events()]
        t.check(sorted(ids) == sorted(x for x in (id1, id2) if x),
                "no event for the 503", _short(ids))
    t.run("gateway capacity", capacity)

    def creator_gone():
        sub = t.client(d.listen_port, "subscriber")
        r = sub.call("sys.subscribe")
        check_result(t, r, True, "sys.subscribe")
        sink = t.rtp_sink()
        sp = t.sipp("uas_answer_wait_bye.xml", port=gw, rtp_sink_port=sink.port).start()
        creator = t.client(d.listen_port, "short-lived")
        to_uri = d.uri(gw)
        reply = creator.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": "notice.wav", "user_data": "orphan"})
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, "orphan")
        creator.close()
        if not res_id:
            return
        ev = sub.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "orphan", None, "sys", cause=200, answered=True,
                       label="subscriber's event")
        sp.check_exit(t, "the call went on to the daemon's BYE")
        sink.wait_quiet(0.5, 5)
        streams = list(sink.streams().values())
        if t.check(len(streams) == 1, "one RTP stream", "%d" % len(streams)):
            check_rtp_stream(t, streams[0], expected_payload(prompt, 8, 1), 8,
                             "RTP of the orphaned call")
    t.run("the creator disconnects; the call goes on, a subscriber gets the event",
          creator_gone)

    t.section("end")
    for c in bystanders:
        c.close()
    time.sleep(0.2)
    probe = t.client(d.listen_port, "probe")
    r = probe.call("sys.ping")
    check_result(t, r, "pong", "ctid answers after %d connections closed" % N_CONN)
    rc = d.stop()
    t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
