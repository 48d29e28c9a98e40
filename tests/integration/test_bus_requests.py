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
H  Redis with requirepass: a wrong redis_password is logged once per link
   (not per retry) and nothing is read; the right one serves requests.
I  Redis killed (-9) while answers are owed, restarted from its
   append-only file: the answers kept by the node go out when it is back,
   each entry replied once, no second INVITE.
J  (run after F) a node stopped (SIGSTOP) with a keyless construct read
   but unseen; the entry taken from it and answered meanwhile (as a
   taking node does): once thawed the node neither dials nor answers it
   (docs/reliability.md, "The request bus", point 5).
"""
import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, make_prompt, gateway, free_port,  # noqa: E402
                      scrape, check_construct_result, header)
from redisharness import Resp, Redis, wait_until  # noqa: E402

NODE = "1.2.3"



def bus_node(t, red, name, gw_port, **conf):
    """A ctid named name, node NODE, its one gateway "gw" on gw_port, its
    bus on red; conf: more keys (redis_prefix, ...). Not started."""
    return t.ctid(name=name, gateways=[gateway("gw", gw_port)], node_id=NODE,
                  conf=dict({"redis": "127.0.0.1:%d" % red.port}, **conf))

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
    """to_uri users of the calls sipp received, one per INVITE Call-ID (a
    retransmission is not a second call; a second dial is a new call)."""
    out, seen = [], set()
    for m in sp.received("INVITE"):
        first = m.split("\n", 1)[0]
        cid = header(m, "Call-ID")
        if cid in seen:
            continue
        seen.add(cid)
        out.append(first.split("sip:", 1)[1].split("@", 1)[0])
    return out


def handed(d):
    """Bus constructs the daemon got (its debug line per request)."""
    return d.log_text().count("redis-bus: ext.notify_call.construct")


t = Test("bus_requests")
with t:
    make_prompt(t.path("prompts", "short.wav"), 0.2)
    aof = ["--appendonly", "yes", "--appendfsync", "always"]
    red = t.add_cleanup(Redis(t, "redis", aof)).start()
    busy = free_port("udp")
    ring = free_port("udp")
    mport = free_port("tcp")
    d = t.add_cleanup(t.ctid(
        gateways=[gateway("gw", busy), gateway("ring", ring)], node_id=NODE,
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

    def one_reply(entry, stream="app:replies", timeout=10):
        """The reply (fields, reply dict) naming entry, or (None, None)."""
        got = wait_until(lambda: [g for g in replies(r, stream)
                                  if g[0] == entry], timeout)
        return (got[0][1], got[0][2]) if got else (None, None)

    def err_of(rep):
        e = (rep or {}).get("error") or {}
        return e.get("code"), e.get("message")

    t.section("B: bad entries get their error, are acked, change nothing")
    big = json.dumps({"to_uri": to("b"), "play_content": "x" * 70000})
    bad = [
        ("not JSON", dict(method="ext.notify_call.construct",
                          params="{not json"), (-32700, "params is not JSON")),
        ("not an object", dict(method="ext.notify_call.construct",
                               params="[1, 2]"),
         (-32602, "params must be an object")),
        ("method missing", dict(params={"to_uri": to("b")}),
         (-32600, "method missing")),
        ("huge params", dict(method="ext.notify_call.construct",
                             params=big), (-32600, "entry too large")),
        ("many fields", dict(method="sys.ping", raw=sum(
            (["f%d" % i, "x" * 40] for i in range(2000)), [])),
         (-32600, "entry too large")),
        ("unknown method", dict(method="ext.nope", params={}),
         (-32601, "method not found: ext.nope")),
        ("sys.auth", dict(method="sys.auth", params={"token": "x"}),
         (-32601, "sys.auth/sys.subscribe are not available on the bus")),
        ("construct without to_uri", dict(method="ext.notify_call.construct",
                                          params={"play_content": "x.wav"}),
         (-32602, None)),
    ]
    for label, kw, (code, msg) in bad:
        e = xadd(r, "ctid:requests", id="b-" + label, **kw)
        f, rep = one_reply(e)
        got_code, got_msg = err_of(rep)
        t.check_eq(got_code, code, "B %s: error code" % label)
        if msg is not None:
            t.check_eq(got_msg, msg, "B %s: error message" % label)
        t.check_eq((rep or {}).get("id"), "b-" + label, "B %s: id" % label)
    before = r.cmd("XLEN", "ctid:events")
    for label, rt in (("bad reply_to", "bad name!"),
                      ("reply_to ctid:events", "ctid:events"),
                      ("reply_to ctid:requests:x", "ctid:requests:x"),
                      ("reply_to ctid:key:k", "ctid:key:k")):
        e = xadd(r, "ctid:requests", "sys.ping", {}, reply_to=rt,
                 id="b-" + label)
        t.check(d.wait_log("bus entry %s: reply_to is not" % e, 10),
                "B %s: refused, logged with the entry id" % label)
    ping = xadd(r, "ctid:requests", "sys.ping", {}, id="b-ping")
    f, rep = one_reply(ping)
    t.check_eq((rep or {}).get("result"), "pong", "B: sys.ping on the bus")
    t.check_eq(r.cmd("XLEN", "ctid:events"), before,
               "B: nothing written to ctid:events by a refused reply_to")
    t.check_eq(r.cmd("EXISTS", "ctid:requests:x", "ctid:key:k"), 0,
               "B: no key written for a refused reply_to")
    t.check(wait_until(lambda: pending(r) == 0, 5), "B: every entry acked",
            "XPENDING %r" % pending(r))
    c = t.client(d.listen_port, "b")
    t.check_eq(c.result("sys.ping"), "pong", "B: sys.ping over TCP")
    c.close()
    m = scrape(mport)
    t.check_eq(m.get("ctid_bus_requests_refused_total"), len(bad) - 1 + 4,
               "B: ctid_bus_requests_refused_total (bad entries)")
    t.check(d.alive(), "B: the daemon runs on")
    r.cmd("DEL", "app:replies")

    t.section("C: exists and drop on ctid:requests:NODE")
    sp = t.sipp("uas_ring_forever.xml", port=ring, calls=1).start()
    e = xadd(r, "ctid:requests", "ext.notify_call.construct",
             {"to_uri": to("c", ring), "play_content": "short.wav"}, id="c1")
    f, rep = one_reply(e)
    rid = ((rep or {}).get("result") or {}).get("res_id")
    t.check(rid is not None, "C: a ringing call", repr(rep))
    own = "ctid:requests:" + NODE
    t.check(d.wait_log("%s: 180 Ringing" % rid, 10), "C: it rings")
    e = xadd(r, own, "ext.notify_call.exists", {"res_id": rid}, id="c2")
    t.check_eq(one_reply(e)[1].get("result") if rid else None, True,
               "C: exists on the node's stream: true")
    e = xadd(r, "ctid:requests", "ext.notify_call.exists",
             {"res_id": "9.9.9-ext.notify_call-5"}, id="c3")
    t.check_eq(err_of(one_reply(e)[1]),
               (-32602, "res_id belongs to node 9.9.9: send it to "
                "ctid:requests:9.9.9"),
               "C: exists of another node's res_id on ctid:requests")
    e = xadd(r, own, "ext.notify_call.drop", {"res_id": rid}, id="c4")
    rep = one_reply(e)[1]
    t.check(rep is not None and rep.get("result") is True,
            "C: drop on the node's stream: true", repr(rep))
    sp.check_exit(t, "C: the dropped call was cancelled")
    ev = wait_until(lambda: [
        x for x in (r.cmd("XRANGE", "ctid:events", "-", "+") or [])
        if json.loads(fields(x[1])["params"]).get("res_id") == rid], 10)
    t.check(ev and json.loads(fields(ev[0][1])["params"]).get("dropped_by")
            is not None, "C: its on_released (dropped) on ctid:events",
            repr(ev))
    e = xadd(r, own, "ext.notify_call.exists", {"res_id": rid}, id="c5")
    t.check_eq(one_reply(e)[1].get("result") if rid else None, False,
               "C: exists after the drop: false")
    t.check_eq(pending(r, own), 0, "C: the node's stream acked")
    r.cmd("DEL", "app:replies")
    sp.close()
    d.stop()
    t.check_eq(d.exit_code, 0, "A-C: clean exit")

    t.section("D: capacity: max_calls 2, reading only while there is room")
    slow = free_port("udp")
    dd = bus_node(t, red, "ctid-d", slow, redis_prefix="pd", max_calls="2",
                  metrics_listen="127.0.0.1:%d" % mport)
    dd.start()
    sp = t.sipp("uas_busy.xml", port=slow, calls=6, ring_ms=3000).start()
    t0 = time.time()
    for i in range(6):
        xadd(r, "pd:requests", "ext.notify_call.construct",
             {"to_uri": to("d%d" % i, slow), "play_content": "short.wav"},
             id="d%d" % i)
    most = 0
    while time.time() - t0 < 40 and len(replies(r)) < 6:
        most = max(most, scrape(mport).get("ctid_active_calls", 0))
        time.sleep(0.1)
    got = replies(r)
    t.check_eq(len(got), 6, "D: all 6 entries replied in the end")
    t.check_eq([err_of(g[2]) for g in got if "error" in g[2]], [],
               "D: no entry refused for capacity (each read with room)")
    t.check(most <= 2, "D: never more than 2 calls at once (%d seen)" % most)
    inv = invites(sp)
    t.check_eq(sorted(inv), ["d%d" % i for i in range(6)],
               "D: one INVITE per entry")
    sp.close()
    dd.stop()
    r.cmd("DEL", "app:replies")

    t.section("E: kill -9 with entries in flight, restart: once each")
    slow_e = free_port("udp")
    de = bus_node(t, red, "ctid-e", slow_e, redis_prefix="pe")
    de.start()
    sp = t.sipp("uas_busy.xml", port=slow_e, calls=1000, ring_ms=300)
    sp.start()
    text = ("This is a long sentence for the speech synthesiser to read, so "
            "that every construct waits a while for its prompts. ") * 3
    ne = 8
    sent_e = []
    for i in range(ne):
        sent_e.append(xadd(r, "pe:requests", "ext.notify_call.construct",
                           {"to_uri": to("e%d" % i, slow_e),
                            "play_content": [[text, 10, "lang=en"]]},
                           id="e%d" % i))
    t.check(wait_until(lambda: pending(r, "pe:requests") == ne, 10),
            "E: all entries read (pending for the node)")
    # each construct's OWN script (a write) must have run before writes
    # are paused: wait until the daemon has all of them
    t.check(wait_until(lambda: handed(de) >= ne, 10),
            "E: all entries handed to the daemon (after OWN)")
    # Writes paused: the daemon places calls but no REPLY script runs,
    # so the kill finds calls placed and not answered (under 10 s, the
    # stall limit of ctid's Redis links).
    r.cmd("CLIENT", "PAUSE", "9000", "WRITE")
    placed = wait_until(lambda: len(invites(sp)) >= 2 and invites(sp), 8)
    de.proc.kill()
    de.proc.wait()
    r.cmd("CLIENT", "UNPAUSE")
    at_kill = pending(r, "pe:requests")
    placed = invites(sp)
    t.log("E: at the kill: %d INVITEs, %d entries pending, %d replies" % (
        len(placed), at_kill, len(replies(r))))
    t.check(len(placed) >= 1 and at_kill == ne,
            "E: calls placed and entries unanswered at the kill")
    de.start()
    got = wait_until(lambda: len(replies(r)) >= ne and replies(r), 60) or []
    time.sleep(1)
    got = replies(r)
    t.check_eq(sorted(g[0] for g in got), sorted(sent_e),
               "E: every entry replied exactly once")
    t.check_eq(pending(r, "pe:requests"), 0, "E: every entry acked")
    inv = invites(sp)
    twice = sorted(u for u in set(inv) if inv.count(u) > 1)
    t.check_eq(twice, [], "E: no callee got two INVITEs for one entry")
    ok_users = sorted(g[2]["id"] for g in got if "result" in g[2])
    t.check(set(placed) <= set(ok_users),
            "E: the calls placed before the kill are answered with their "
            "result", "placed %r, results %r" % (placed, ok_users))
    t.check_eq(sorted(set(inv)), ok_users,
               "E: each entry answered with a result was dialled once")
    n_seen = de.log_text().count("request_key seen before")
    t.check(n_seen >= len(placed),
            "E: the calls placed before the kill answered from their "
            "request_key after the restart (%d)" % n_seen)
    sp.close()
    de.stop()
    r.cmd("DEL", "app:replies")

    t.section("F: takeover of a dead node's entries")
    ring_f = free_port("udp")
    r.cmd("XGROUP", "CREATE", "pf:requests", "ctid", "0", "MKSTREAM")
    planted_result = {"res_id": "7.7.7-ext.notify_call-1", "user_data": None,
                      "to_uri": "x@127.0.0.1:1",
                      "ipsc_info": {"process_id": 1}}

    def fconstruct(user, key=None):
        p = {"to_uri": to(user, ring_f), "play_content": "short.wav",
             "max_ring_seconds": 1}
        if key:
            p["request_key"] = key
        return xadd(r, "pf:requests", "ext.notify_call.construct", p,
                    id=user)
    f_keyless = fconstruct("f0")
    f_new = fconstruct("f1", "k1")
    f_placed = fconstruct("f2", "k2")
    f_intent = fconstruct("f3", "k3")
    r.cmd("XREADGROUP", "GROUP", "ctid", "ghost", "COUNT", "10", "STREAMS",
          "pf:requests", ">")
    r.cmd("SET", "pf:key:k2", "placed " + json.dumps(planted_result))
    r.cmd("SET", "pf:key:k3", "intent ghost " + f_intent)
    t.check_eq(pending(r, "pf:requests"), 4, "F: 4 entries pending for ghost")
    sp = t.sipp("uas_ring_forever.xml", port=ring_f, calls=1).start()
    fport = free_port("tcp")
    df = bus_node(t, red, "ctid-f", ring_f, redis_prefix="pf",
                  redis_claim_idle="1",
                  metrics_listen="127.0.0.1:%d" % fport)
    df.start()
    got = wait_until(lambda: len(replies(r)) >= 4 and replies(r), 20) or []
    by = {g[0]: g[2] for g in got}
    t.check_eq(len(got), 4, "F: one reply per entry")
    stopped = ("node ghost stopped before answering; not retried: the call "
               "may have been placed")
    t.check_eq(err_of(by.get(f_keyless)), (-32000, stopped),
               "F: keyless -> the 'stopped' error")
    t.check_eq((((by.get(f_keyless) or {}).get("error") or {}).get("data")
                or {}).get("node"), "ghost", "F: error data names the node")
    res = (by.get(f_new) or {}).get("result") or {}
    t.check(str(res.get("res_id", "")).startswith(NODE + "-"),
            "F: keyed, no key in Redis -> placed by this node",
            repr(by.get(f_new)))
    t.check_eq((by.get(f_placed) or {}).get("result"), planted_result,
               "F: keyed with 'placed' -> that result")
    t.check_eq(err_of(by.get(f_intent)), (-32000, stopped),
               "F: keyed with ghost's intent -> the 'stopped' error")
    sp.check_exit(t, "F: the one call placed rang and was cancelled")
    t.check_eq(invites(sp), ["f1"], "F: one INVITE, for the keyed new entry")
    k1 = r.cmd("GET", "pf:key:k1") or ""
    t.check(k1.startswith("placed ") and
            json.loads(k1[7:]).get("res_id") == res.get("res_id"),
            "F: pf:key:k1 holds the placed result", k1)
    t.check_eq(pending(r, "pf:requests"), 0, "F: every entry acked")
    t.check_eq(scrape(fport).get("ctid_bus_takeovers_total"), 4,
               "F: ctid_bus_takeovers_total")
    t.check(r.cmd("EXISTS", "pf:node:" + NODE) == 1,
            "F: the node's heartbeat key")
    sp.close()
    df.stop()
    r.cmd("DEL", "app:replies")

    t.section("J: a stalled node does not place an entry taken from it")
    # Deterministic from Redis' side: ctid is stopped (SIGSTOP) while its
    # blocked read is in Redis; the XADD is served to that read (pending
    # for NODE, in ctid's socket, unseen); the test then does what a
    # taking node does (XCLAIM to "other", XACK, the error reply) and
    # lets ctid go on. ctid must not dial it (its OWN script finds the
    # entry no longer its own) nor reply.
    ring_j = free_port("udp")
    dj = bus_node(t, red, "ctid-j", ring_j, redis_prefix="pj")
    dj.start()
    sp = t.sipp("uas_busy.xml", port=ring_j, calls=1000).start()

    def blocked_read():
        return any("cmd=xreadgroup" in c and "flags=b " in c for c in
                   (r.cmd("CLIENT", "LIST") or "").splitlines())
    stalled = None
    for attempt in range(10):
        if not wait_until(blocked_read, 10):
            break
        dj.proc.send_signal(signal.SIGSTOP)
        e = xadd(r, "pj:requests", "ext.notify_call.construct",
                 {"to_uri": to("jstalled", ring_j),
                  "play_content": "short.wav"}, reply_to="app:replies-j",
                 id="jstalled")
        mine = r.cmd("XPENDING", "pj:requests", "ctid", e, e, "1", NODE)
        if mine:
            r.cmd("XCLAIM", "pj:requests", "ctid", "other", "0", e, "JUSTID")
            r.cmd("XACK", "pj:requests", "ctid", e)
            r.cmd("XADD", "app:replies-j", "*", "id", "jstalled", "node",
                  "other", "entry", e, "reply", "{}")
            stalled = e
        else:   # the read had ended just then: not ours to test; again
            r.cmd("XDEL", "pj:requests", e)
        dj.proc.send_signal(signal.SIGCONT)
        if stalled:
            break
    t.check(stalled is not None, "J: an entry read by the stopped node "
            "and taken from it (attempts %d)" % (attempt + 1))
    t.check(dj.wait_log("bus entry %s: no longer this node's (answered by "
                        "another node): not placed" % stalled, 10),
            "J: the thawed node drops it, logged with the entry id")
    after = xadd(r, "pj:requests", "ext.notify_call.construct",
                 {"to_uri": to("jafter", ring_j), "play_content": "short.wav"},
                 reply_to="app:replies-j", id="jafter")
    got = wait_until(lambda: len(replies(r, "app:replies-j")) >= 2 and
                     replies(r, "app:replies-j"), 20) or []
    time.sleep(1)
    got = replies(r, "app:replies-j")
    t.check_eq([(g[0], g[1].get("node")) for g in got],
               [(stalled, "other"), (after, NODE)],
               "J: no reply from ctid for the entry taken from it")
    inv = invites(sp)
    t.check("jstalled" not in inv, "J: no INVITE for the entry taken from "
            "it", repr(inv))
    t.log("J: INVITEs %r (jafter's may be missing when the shared machine "
          "runs out of RTP ports)" % inv)
    t.check_eq(pending(r, "pj:requests"), 0, "J: nothing left pending")
    sp.close()
    dj.stop()
    t.check_eq(dj.exit_code, 0, "J: clean exit")

    t.section("G: redis_requests = no: nothing read")
    dg = bus_node(t, red, "ctid-g", busy, redis_prefix="pg",
                  redis_requests="no")
    dg.start()
    xadd(r, "pg:requests", "sys.ping", {}, id="g")
    time.sleep(3)
    t.check_eq(replies(r), [], "G: no reply")
    groups = r.cmd("XINFO", "GROUPS", "pg:requests")
    t.check_eq(groups, [], "G: no group made on pg:requests")
    t.check(dg.wait_log("redis 127.0.0.1:%d: connected" % red.port, 5),
            "G: events are still published")
    dg.stop()
    r.close()

    t.section("H: requirepass: a wrong password logged once per link")
    red2 = t.add_cleanup(Redis(t, "redis-auth",
                               aof + ["--requirepass", "s3cret"])).start()
    r2 = Resp(red2.port, "s3cret")
    xadd(r2, "ctid:requests", "sys.ping", {}, id="h")
    dh = bus_node(t, red2, "ctid-h", busy, redis_password="wrong")
    dh.start()
    time.sleep(4)   # a few reconnects (backoff 100 ms doubling)
    n_auth = dh.log_text().count("error: redis 127.0.0.1:%d: AUTH refused "
                                 "(check redis_password)" % red2.port)
    t.check_eq(n_auth, 3, "H: 'AUTH refused' logged once for each of the "
               "3 links (events, requests, requests read)")
    t.check_eq(replies(r2), [], "H: nothing read with a wrong password")
    dh.stop()
    dh2 = bus_node(t, red2, "ctid-h2", busy, redis_password="s3cret")
    dh2.start()
    got = wait_until(lambda: replies(r2), 10) or []
    t.check_eq([g[2].get("result") for g in got], ["pong"],
               "H: the right password: the entry answered")
    dh2.stop()
    r2.close()

    t.section("I: Redis killed with answers owed, restarted: sent then")
    slow_i = free_port("udp")
    di = bus_node(t, red, "ctid-i", slow_i, redis_prefix="pi")
    di.start()
    sp = t.sipp("uas_busy.xml", port=slow_i, calls=1000).start()
    r = Resp(red.port)
    ni = 6
    sent_i = [xadd(r, "pi:requests", "ext.notify_call.construct",
                   {"to_uri": to("i%d" % i, slow_i),
                    "play_content": [[text, 10, "lang=en"]]},
                   reply_to="app:replies-i", id="i%d" % i)
              for i in range(ni)]
    t.check(wait_until(lambda: pending(r, "pi:requests") == ni, 10),
            "I: all entries read")
    t.check(wait_until(lambda: handed(di) >= ni, 10),
            "I: all entries handed to the daemon (after OWN)")
    r.cmd("CLIENT", "PAUSE", "9000", "WRITE")
    placed = wait_until(lambda: len(invites(sp)) >= 2 and invites(sp), 8)
    r.close()
    red.kill()
    t.log("I: Redis killed with %d calls placed" % len(placed or []))
    time.sleep(1)
    red.start()
    r = Resp(red.port)
    got = wait_until(lambda: len(replies(r, "app:replies-i")) >= ni and
                     replies(r, "app:replies-i"), 60) or []
    time.sleep(1)
    got = replies(r, "app:replies-i")
    t.check(len(placed or []) >= 1, "I: calls placed while writes paused")
    t.check_eq(sorted(g[0] for g in got), sorted(sent_i),
               "I: every entry replied exactly once")
    t.check_eq(pending(r, "pi:requests"), 0, "I: every entry acked")
    inv = invites(sp)
    t.check_eq(sorted(u for u in set(inv) if inv.count(u) > 1), [],
               "I: no callee got two INVITEs for one entry")
    t.check(di.log_text().count("connection lost") >= 1,
            "I: the outage logged")
    t.check_eq(di.log_text().count("request_key seen before"), 0,
               "I: the kept answers went out (no entry handed to the "
               "daemon twice)")
    sp.close()
    di.stop()
    r.close()
