#!/usr/bin/env python3
"""ctid integration test: the request bus (issue 15, the requests half;
docs/protocol.md "The request bus (Redis)").

Every peer is started here in the foreground on loopback ports: a real
redis-server (appendonly yes, appendfsync always) and sipp callees. The
test is the application server: it XADDs entries with a tiny RESP client
and reads the reply streams.

A  constructs on ctid:requests: exactly one reply each on reply_to with
   the same id, the result as TCP gives it; on_released on ctid:events;
   every entry acked (XPENDING 0).
B  bad entries (params not JSON, not an object, method missing, huge
   params, unknown method, sys.auth, bad reply_to, reply_to = ctid:events)
   -> the right error reply (none for a bad reply_to), acked; the daemon
   goes on and sys.ping over TCP answers.
C  exists and drop on ctid:requests:NODE; exists for another node's
   res_id on ctid:requests -> the error naming that node's stream.
D  capacity: max_calls 2, a callee that rings 3 s, 6 entries: never more
   than 2 calls at once, all 6 replied in the end.
E  kill -9 of ctid with entries in flight (callees ringing); restart:
   every entry replied exactly once, no callee got two INVITEs for one
   entry (the entry's number is the to_uri user).
F  takeover, deterministic: entries planted pending for a consumer
   "ghost" with no heartbeat, redis_claim_idle 1: keyless -> the -32000
   error; keyed, no key in Redis -> placed (one INVITE); keyed with a
   planted "placed {...}" -> that result, no INVITE; keyed with "intent
   ghost <entry>" -> the -32000 error.
G  redis_requests = no: nothing read.
"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, make_prompt, gateway, free_port,  # noqa: E402
                      scrape, check_construct_result)
from redisharness import Resp, Redis, wait_until  # noqa: E402

NODE = "1.2.3"


def fields(flat):
    return dict(zip(flat[::2], flat[1::2]))


def xadd(r, stream, method=None, params=None, reply_to="app:replies",
         id=None, raw=None):
    """XADD an entry; params a dict (dumped) or a str (as is)."""
    args = []
    if method is not None:
        args += ["method", method]
    if params is not None:
        args += ["params", params if isinstance(params, str)
                 else json.dumps(params)]
    if reply_to is not None:
        args += ["reply_to", reply_to]
    if id is not None:
        args += ["id", id]
    args += list(raw or ())
    return r.cmd("XADD", stream, "*", *args)


def replies(r, stream="app:replies"):
    """[(entry, fields, reply dict)] of a reply stream, in order."""
    out = []
    for _id, flat in r.cmd("XRANGE", stream, "-", "+") or []:
        f = fields(flat)
        out.append((f.get("entry"), f, json.loads(f.get("reply", "null"))))
    return out


def pending(r, stream="ctid:requests"):
    try:
        return r.cmd("XPENDING", stream, "ctid")[0]
    except RuntimeError:
        return -1


def invites(sp):
    """to_uri users of the INVITEs sipp received."""
    out = []
    for m in sp.received("INVITE"):
        first = m.split("\n", 1)[0]
        out.append(first.split("sip:", 1)[1].split("@", 1)[0])
    return out


t = Test("bus_requests")
with t:
    make_prompt(t.path("prompts", "short.wav"), 0.2)
    aof = ["--appendonly", "yes", "--appendfsync", "always"]
    red = t.add_cleanup(Redis(t, "redis", aof)).start()
    busy = free_port("udp")
    mport = free_port("tcp")
    d = t.add_cleanup(t.ctid(
        gateways=[gateway("gw", busy)], node_id=NODE,
        conf={"redis": "127.0.0.1:%d" % red.port,
              "metrics_listen": "127.0.0.1:%d" % mport}))
    d.start()
    r = Resp(red.port)

    def to(user, port=busy):
        return "%s@127.0.0.1:%d" % (user, port)

    t.section("A: constructs on ctid:requests, one reply each")
    n = 5
    sp = t.sipp("uas_busy.xml", port=busy, calls=n).start()
    want = {}
    for i in range(n):
        e = xadd(r, "ctid:requests", "ext.notify_call.construct",
                 {"to_uri": to("a%d" % i), "play_content": "short.wav",
                  "user_data": "a%d" % i}, id="a-%d" % i)
        want[e] = "a-%d" % i
    got = wait_until(lambda: len(replies(r)) >= n and replies(r), 20) or []
    t.check_eq(sorted(g[0] for g in got), sorted(want),
               "A: one reply per entry, each naming its entry")
    res_ids = []
    for entry, f, rep in got:
        t.check_eq(f.get("id"), want.get(entry), "A: reply id field")
        t.check_eq(f.get("node"), NODE, "A: reply node field")
        t.check_eq(rep.get("id") if rep else None, want.get(entry),
                   "A: the JSON-RPC reply's id is the request's id")
        i = int(want.get(entry, "a-0").split("-")[1])
        rid, _ = check_construct_result(t, rep, NODE, to("a%d" % i),
                                        "a%d" % i, label="A construct")
        res_ids.append(rid)
    sp.check_exit(t, "A: the callee got every call")
    released = wait_until(lambda: [
        x for x in (r.cmd("XRANGE", "ctid:events", "-", "+") or [])
        if fields(x[1]).get("method") == "ext.notify_call.on_released"], 20)
    rel_ids = sorted(json.loads(fields(x[1])["params"])["res_id"]
                     for x in released or [])
    t.check_eq(rel_ids, sorted(x for x in res_ids if x),
               "A: on_released of each call on ctid:events")
    t.check_eq(pending(r), 0, "A: every entry acked (XPENDING 0)")
    t.check_eq(len(invites(sp)), n, "A: one INVITE per entry")
    m = scrape(mport)
    t.check_eq(m.get("ctid_bus_requests_total"), n,
               "A: ctid_bus_requests_total")
    r.cmd("DEL", "app:replies")
    sp.close()
