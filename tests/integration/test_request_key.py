#!/usr/bin/env python3
"""ctid integration test: construct's request_key (issue 14,
docs/protocol.md "request_key", docs/reliability.md "request_key").

The callee is sipp answering every INVITE 486; the INVITEs it received are
counted from its message log.

A  a construct with request_key, repeated on the same connection and on
   another one: the same result object (same res_id), after the call was
   released too; one INVITE at the callee.
B  the same key with other params: -32602 "request_key reused with
   different params", no INVITE.
C  another key with the same params: a new call (new res_id, an INVITE).
D  a repeat sent while the first construct's prompt still loads on the
   worker pool (both lines in one write): it waits, gets the same result,
   one INVITE. D2: when that first fails, the repeat gets its error and
   nothing is recorded. D3: the first's connection closes while its
   prompt loads and the retry comes on a new one: the first is placed for
   it (one INVITE).
E  kill -9 right after a keyed construct's reply, restart on the same
   state_dir: the repeat gets the same res_id and places no call; other
   params are still refused.
F  a second daemon with request_key_ttl = 1: after the ttl the same key
   places a new call.
"""
import json
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, make_prompt,  # noqa: E402
                      gateway, free_port)

t = Test("request_key")
with t:
    make_prompt(t.path("prompts", "short.wav"), 0.2)
    port = free_port("udp")
    sp = t.sipp("uas_busy.xml", port=port, calls=100, timeout=120).start()
    d = t.ctid(gateways=[gateway("gw", port)])
    d.start()
    node = d.node_id
    to = d.uri(port)

    def invites(settle=0.5):
        time.sleep(settle)   # an INVITE a moment late would show up now
        return len(sp.received("INVITE"))

    def params(key, ud="u", play="short.wav"):
        p = {"to_uri": to, "play_content": play, "user_data": ud}
        if key is not None:
            p["request_key"] = key
        return p

    def construct(c, p, label):
        reply = c.call("ext.notify_call.construct", p, timeout=10)
        res_id, _ = check_construct_result(t, reply, node, to,
                                           p.get("user_data"), label)
        return reply, res_id

    def check_refused(reply, label):
        err = reply.get("error") if reply else None
        t.check(isinstance(err, dict) and err.get("code") == -32602 and
                err.get("message") ==
                "request_key reused with different params",
                "%s: -32602 request_key reused with different params" % label,
                repr(reply))

    state = {}

    def sub_a():
        c = t.client(d.listen_port, "a")
        first, res_id = construct(c, params("order-1"), "A: first")
        state["a"] = first
        again, _ = construct(c, params("order-1"), "A: repeat")
        t.check_eq(again.get("result"), first.get("result"),
                   "A: the repeat gets the first result object")
        ev = c.wait_event(res_id, timeout=20) if res_id else None
        t.check(ev is not None, "A: the first call is released")
        c2 = t.client(d.listen_port, "a2")
        late, _ = construct(c2, params("order-1"), "A: repeat after release")
        t.check_eq(late.get("result"), first.get("result"),
                   "A: same result after the call was released, from another "
                   "connection")
        t.check_eq(invites(), 1, "A: one INVITE at the callee")
        t.check(d.log_text().count("request_key seen before") >= 2,
                "A: the repeats are logged")
        c.close()
        c2.close()
    t.run("A: repeat -> same result, one INVITE", sub_a)

    def sub_b():
        c = t.client(d.listen_port, "b")
        n = invites(0)
        for label, p in (("other user_data", params("order-1", ud="v")),
                         ("other prompt", params("order-1",
                                                 play="other.wav")),
                         ("no user_data", {"to_uri": to,
                                           "play_content": "short.wav",
                                           "request_key": "order-1"})):
            check_refused(c.call("ext.notify_call.construct", p),
                          "B: " + label)
        t.check_eq(invites(), n, "B: no INVITE for a reuse")
        c.close()
    t.run("B: reused with different params", sub_b)

    def sub_c():
        c = t.client(d.listen_port, "c")
        n = invites(0)
        reply, res_id = construct(c, params("order-2"), "C: another key")
        t.check(res_id is not None and
                res_id != state["a"]["result"]["res_id"],
                "C: a new res_id", repr(reply))
        _, res_id2 = construct(c, params(None), "C: no key")
        t.check(res_id2 not in (None, res_id), "C: without a key, a new call")
        t.check_eq(invites(), n + 2, "C: two more INVITEs")
        c.close()
    t.run("C: another key places a call", sub_c)

    def sub_d():
        # A prompt never played before: its construct waits for the worker
        # pool, and the repeat in the same write finds the key pending.
        make_prompt(t.path("prompts", "fresh.wav"), 3.0)
        c = t.client(d.listen_port, "d")
        n = invites(0)
        p = params("order-3", play="fresh.wav")
        lines = "".join(json.dumps({"jsonrpc": "2.0", "id": i,
                                    "method": "ext.notify_call.construct",
                                    "params": p}) + "\n"
                        for i in (101, 102))
        c.send_raw(lines)
        r1 = c.wait_reply(101, timeout=10)
        r2 = c.wait_reply(102, timeout=10)
        check_construct_result(t, r1, node, to, "u", "D: first")
        t.check(r2 is not None and r2.get("result") == r1.get("result"),
                "D: the waiting repeat gets the same result", repr(r2))
        t.check("request_key's first construct still in progress" in
                d.log_text(), "D: the repeat waited for the first")
        t.check_eq(invites(), n + 1, "D: one INVITE")
        c.close()
    t.run("D: repeat while the first is being placed", sub_d)

    def sub_d2():
        # A first that fails on the worker (a prompt libsndfile cannot
        # decode): the waiting repeat gets the same error, nothing is
        # recorded, and a later retry is checked afresh.
        with open(t.path("prompts", "broken.wav"), "wb") as f:
            f.write(b"RIFF\x00\x00\x00\x00WAVEjunk" * 50)
        c = t.client(d.listen_port, "d2")
        n = invites(0)
        p = params("order-5", play="broken.wav")
        lines = "".join(json.dumps({"jsonrpc": "2.0", "id": i,
                                    "method": "ext.notify_call.construct",
                                    "params": p}) + "\n"
                        for i in (201, 202))
        waited = d.log_text().count("still in progress")
        c.send_raw(lines)
        r1 = c.wait_reply(201, timeout=10)
        r2 = c.wait_reply(202, timeout=10)
        t.check(r1 is not None and "error" in r1, "D2: the first is refused",
                repr(r1))
        t.check(r2 is not None and r2.get("error") == r1.get("error"),
                "D2: the waiting repeat gets the same error", repr(r2))
        t.check_eq(d.log_text().count("still in progress"), waited + 1,
                   "D2: the repeat waited for the first")
        seen = d.log_text().count("request_key seen before")
        r3 = c.call("ext.notify_call.construct", p, timeout=10)
        t.check(r3 is not None and r3.get("error") == r1.get("error") and
                d.log_text().count("request_key seen before") == seen,
                "D2: a retry is checked afresh", repr(r3))
        t.check_eq(invites(), n, "D2: no INVITE")
        c.close()
    t.run("D2: a repeat waiting for a first that fails", sub_d2)

    def sub_d3():
        # The lost-reply case: the client's connection dies while the
        # first construct's (slow, resampled) prompt loads, and it retries
        # on a new connection at once. The first is still placed, since a
        # repeat waits for it, and the repeat gets its result.
        make_prompt(t.path("prompts", "slow.wav"), 300.0, rate=44100,
                    channels=2)
        n = invites(0)
        waited = d.log_text().count("still in progress")
        p = params("order-6", play="slow.wav")
        # A plain socket (RpcClient's reader thread would keep the
        # descriptor alive): the request, then a reset, not an EOF, since
        # a half-closed peer keeps its connection while a reply is owed.
        a = socket.create_connection(("127.0.0.1", d.listen_port))
        a_port = a.getsockname()[1]
        a.sendall((json.dumps({"jsonrpc": "2.0", "id": 1,
                               "method": "ext.notify_call.construct",
                               "params": p}) + "\n").encode())
        time.sleep(0.05)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        a.close()
        t.check(d.wait_log("127.0.0.1:%d: connection closed" % a_port,
                           timeout=2),
                "D3: the daemon saw the first connection go")
        t.check("prompts loaded" not in d.log_text().split(
                    "127.0.0.1:%d: connection accepted" % a_port)[-1],
                "D3: ... while its prompt was still loading")
        b = t.client(d.listen_port, "d3-retry")
        r = b.call("ext.notify_call.construct", p, timeout=20)
        check_construct_result(t, r, node, to, "u", "D3: the retry")
        t.check_eq(d.log_text().count("still in progress"), waited + 1,
                   "D3: the retry waited for the first (the prompt was "
                   "still loading)")
        t.check_eq(invites(), n + 1, "D3: one INVITE")
        again = b.call("ext.notify_call.construct", p, timeout=10)
        t.check_eq(again.get("result"), r.get("result"),
                   "D3: a further repeat gets the same result")
        b.close()
    t.run("D3: the first's connection lost, a retry waits for it", sub_d3)

    def sub_e():
        c = t.client(d.listen_port, "e")
        n = invites(0)
        first, res_id = construct(c, params("order-4"), "E: first")
        d.proc.kill()    # SIGKILL right after the reply
        d.proc.wait()
        c.close()
        d.start()
        n_after = invites(1.0)
        # The reply leaves once the INVITE is handed to the SIP thread:
        # the kill may come before it is sent.
        t.check_in(n_after, (n, n + 1), "E: at most the first call's INVITE")
        c = t.client(d.listen_port, "e2")
        again, _ = construct(c, params("order-4"), "E: repeat after kill -9")
        t.check_eq(again.get("result"), first.get("result"),
                   "E: the same result after kill -9 and restart")
        older, _ = construct(c, params("order-1"),
                             "E: repeat of A's key after restart")
        t.check_eq(older.get("result"), state["a"].get("result"),
                   "E: A's key holds across the restart too")
        check_refused(c.call("ext.notify_call.construct",
                             params("order-4", ud="w")),
                      "E: other params after restart")
        t.check_eq(invites(), n_after, "E: no INVITE after the restart")
        t.check("request_key(s) within request_key_ttl" in
                d.log_text().split("===== start #2")[-1],
                "E: the restart logs the keys it read")
        c.close()
    t.run("E: kill -9 and restart", sub_e)

    def sub_f():
        port2 = free_port("udp")
        sp2 = t.sipp("uas_busy.xml", port=port2, calls=10,
                     timeout=60).start()
        d2 = t.ctid(name="ctid-ttl", gateways=[gateway("gw", port2)],
                    conf={"request_key_ttl": 1})
        d2.start()
        c = t.client(d2.listen_port, "f")
        p = {"to_uri": d2.uri(port2), "play_content": "short.wav",
             "request_key": "short-lived"}
        r1 = c.call("ext.notify_call.construct", p, timeout=10)
        r2 = c.call("ext.notify_call.construct", p, timeout=10)
        t.check(r1.get("result") is not None and
                r2.get("result") == r1.get("result"),
                "F: within the ttl, the same result", repr((r1, r2)))
        time.sleep(2.2)
        r3 = c.call("ext.notify_call.construct", p, timeout=10)
        rid = lambda r: (r.get("result") or {}).get("res_id")  # noqa: E731
        t.check(rid(r3) is not None and rid(r3) != rid(r1),
                "F: after request_key_ttl, a new call", repr(r3))
        time.sleep(0.5)
        t.check_eq(len(sp2.received("INVITE")), 2, "F: two INVITEs")
        c.close()
        d2.stop()
    t.run("F: request_key_ttl expiry", sub_f)
