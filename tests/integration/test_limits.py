#!/usr/bin/env python3
"""ctid integration test: limits under load (issue 5 point 4).

max_call_rate = 5: 20 constructs sent back to back get 5 results and 15
quick 503s ("more than 5 new calls per second"); the 5 calls complete
normally and the refused ones have no event.
max_output_bytes = 4096: a subscriber that never reads while replies and
events pile up is closed with a warning in the log; the daemon keeps
serving the others, and a new connection replays what it missed with
sys.subscribe {"since": N}.
"""
import json
import os
import socket
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (HOST, Test, check_construct_result, check_released,  # noqa: E402
                      make_prompt, gateway, free_port, _short, check_result)

RATE = 5
N_SENT = 20
OUT_MAX = 4096

t = Test("limits")
with t:
    make_prompt(t.path("prompts", "notice.wav"), 0.5)
    gw = free_port("udp")
    d = t.ctid(gateways=[gateway("gw", gw)],
               conf={"max_call_rate": RATE, "max_output_bytes": OUT_MAX})
    d.start()
    sub = t.client(d.listen_port, "sub")
    r = sub.call("sys.subscribe")
    check_result(t, r, True, "reader subscribes")

    # A subscriber that never reads: a tiny receive buffer so the daemon's
    # output backs up into its bufferevent quickly.
    stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect((HOST, d.listen_port))
    stuck.sendall(b'{"jsonrpc":"2.0","id":1,"method":"sys.subscribe"}\n')
    time.sleep(0.2)

    calls = {}

    def rate():
        sp = t.sipp("uas_answer_wait_bye.xml", port=gw, calls=RATE).start()
        c = t.client(d.listen_port, "caller")
        to_uri = d.uri(gw)
        ids = list(range(100, 100 + N_SENT))
        data = "".join(json.dumps({
            "jsonrpc": "2.0", "id": i, "method": "ext.notify_call.construct",
            "params": {"to_uri": to_uri, "play_content": "notice.wav",
                       "user_data": "u%d" % i}}) + "\n" for i in ids)
        t0 = time.time()
        c.send_raw(data)
        replies = [c.wait_reply(i, 5) for i in ids]
        ok = [r for r in replies if r is not None and "result" in r]
        busy = [r for r in replies if r is not None and
                (r.get("error") or {}).get("code") == 503]
        t.check(len(ok) == RATE, "%d constructs accepted" % RATE, "%d" % len(ok))
        t.check(len(busy) == N_SENT - RATE, "%d refused with 503" % (N_SENT - RATE),
                "%d" % len(busy))
        want = "at capacity: more than %d new calls per second" % RATE
        t.check(all(r["error"].get("message") == want for r in busy),
                "503 message names the rate", _short([r["error"] for r in busy]))
        late = [(r["id"], round((r.at - t0) * 1000)) for r in replies
                if r is not None and r.at - t0 >= 0.05]
        t.check(not late, "every reply within 50 ms of sending", repr(late))
        t.check([r["id"] for r in ok] == ids[:RATE],
                "the first %d are the ones accepted" % RATE,
                repr([r["id"] for r in ok]))
        for r in ok:
            res_id, _ = check_construct_result(t, r, d.node_id, to_uri,
                                               "u%d" % r["id"],
                                               label="construct %d" % r["id"])
            if res_id:
                calls[res_id] = "u%d" % r["id"]
        for res_id, ud in calls.items():
            ev = c.wait_event(res_id, timeout=30)
            check_released(t, ev, res_id, ud, None, "sys", cause=200,
                           answered=True, label="event of %s" % ud)
        sp.check_exit(t, "sipp: the %d accepted calls ended with BYE" % RATE)
        time.sleep(0.5)
        got = sorted(e["params"]["res_id"] for e in c.events())
        t.check(got == sorted(calls), "events only for the accepted calls",
                _short(got))
        got = sorted(e["params"]["res_id"] for e in sub.events())
        t.check(got == sorted(calls), "the subscriber saw the same 5 events",
                _short(got))
        # A second later the bucket has refilled: construct works again.
        time.sleep(1.1)
        sp2 = t.sipp("uas_answer_wait_bye.xml", port=gw).start()
        r = c.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": "notice.wav", "user_data": "later"})
        res_id, _ = check_construct_result(t, r, d.node_id, to_uri, "later",
                                           label="construct after a pause")
        if res_id:
            calls[res_id] = "later"
            check_released(t, sub.wait_event(res_id, timeout=30), res_id, "later",
                           None, "sys", cause=200, answered=True,
                           label="event after a pause")
        sp2.check_exit(t, "sipp: the later call ended with BYE")
    t.run("max_call_rate: 20 constructs at once", rate)

    def output():
        # Pile up replies on the stuck subscriber until it is closed.
        ping = b'{"jsonrpc":"2.0","id":2,"method":"sys.ping"}\n' * 1000
        stuck.settimeout(5)
        sent = 0
        try:
            while sent < 500:
                stuck.sendall(ping)
                sent += 1
        except OSError:
            pass
        t.check(sent < 500, "the daemon stopped taking requests from the stuck "
                "client", "%d000 pings sent" % sent)
        closed = False
        deadline = time.time() + 10
        try:
            while time.time() < deadline:
                if not stuck.recv(65536):
                    closed = True
                    break
        except OSError:
            closed = True
        stuck.close()
        t.check(closed, "the stuck client's connection was closed")
        t.check("over max_output_bytes" in d.log_text(),
                "the daemon logged a warning naming the limit")
        r = sub.call("sys.ping")
        check_result(t, r, "pong", "the reading subscriber is still served")
        # What the stuck client missed is in the journal.
        seqs = [e["params"]["seq"] for e in sub.events()]
        late = t.client(d.listen_port, "late")
        r = late.call("sys.subscribe", {"since": 0})
        check_result(t, r, True, "subscribe since 0")
        deadline = time.time() + 5
        while time.time() < deadline and len(late.events()) < len(seqs):
            time.sleep(0.05)
        got = [e["params"]["seq"] for e in late.events()]
        t.check(got == seqs and len(got) == len(calls),
                "a new connection replays every missed event", "%r vs %r" % (got, seqs))
        ids = sorted(e["params"]["res_id"] for e in late.events())
        t.check(ids == sorted(calls), "the replayed events are the calls' events",
                _short(ids))
    t.run("max_output_bytes: a subscriber that never reads", output)

    t.section("end")
    rc = d.stop()
    t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
