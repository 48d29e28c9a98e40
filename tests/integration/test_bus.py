#!/usr/bin/env python3
"""ctid integration test: events published to a Redis stream (issue 15,
the events half; docs/operations.md "Publishing events to Redis").

Every peer is started here in the foreground on loopback ports: a real
redis-server and sipp callees. The stream is read with a tiny RESP client.

A  events of real calls appear in PREFIX:events in seq order, once each,
   with node, seq, method and params equal to what the client received;
   ctid_bus_connected 1, ctid_bus_lag 0.
B  Redis killed mid-run: calls go on, ctid_bus_lag grows, the loss is
   logged once (not per retry); Redis restarted (same append-only file):
   the backlog is published in order, each (node, seq) exactly once.
C  kill -9 of ctid as it publishes a backlog, and kill -9 with a publish
   in flight in a frozen (SIGSTOP) Redis that runs it after ctid died;
   restart: no duplicate and no gap.
F  a Redis that stops answering (SIGSTOP) is dropped after 10 s and
   reconnected; everything published once when it answers again.
G  two ctids with the same node and copies of one journal publish at
   once (Redis frozen until both are connected): each seq once.
D  redis with requirepass: redis_password works; a wrong one is logged
   and nothing is published.
H  a non-loopback redis without redis_password: a warning at start;
   calls go on while it is unreachable.
E  a bad redis address is refused at start with FILE:LINE.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import json

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, construct, make_prompt, gateway,  # noqa: E402
                      free_port, scrape)
from redisharness import Resp, Redis, entries, wait_until  # noqa: E402


t = Test("bus")
with t:
    make_prompt(t.path("prompts", "short.wav"), 0.2)
    busy = free_port("udp")
    aof = ["--appendonly", "yes", "--appendfsync", "always"]
    red = t.add_cleanup(Redis(t, "redis", aof)).start()
    mport = free_port("tcp")
    d = t.ctid(gateways=[gateway("gw", busy)], node_id="1.2.3",
               conf={"redis": "127.0.0.1:%d" % red.port,
                     "metrics_listen": "127.0.0.1:%d" % mport,
                     "redis_events_maxlen": "100000"})
    d.start()
    got = []   # every on_released the clients saw (params dicts)

    def calls(n, label):
        c = t.client(d.listen_port, label)
        sp = t.sipp("uas_busy.xml", port=busy, calls=n).start()
        for i in range(n):
            rid = construct(t, c, d, d.uri(busy), "short.wav",
                            user_data="%s-%d" % (label, i))
            ev = c.wait_event(rid, timeout=20) if rid else None
            if ev is None:
                t.fail("%s call %d released" % (label, i))
                break
            got.append(ev["params"])
        sp.wait(10)
        sp.close()
        c.close()

    def check_stream(what, r):
        es = entries(r)
        seqs = [e[1] for e in es]
        want = sorted(p["seq"] for p in got)
        t.check_eq(seqs, want, "%s: stream holds every seq once, in order"
                   % what)
        t.check(all(e[0] == "1.2.3" for e in es), "%s: node field" % what)
        byseq = {p["seq"]: p for p in got}
        bad = [e for e in es if e[1] in byseq and
               (e[2] != "ext.notify_call.on_released" or
                json.loads(e[3]) != byseq[e[1]])]
        t.check(not bad, "%s: method and params as the client got them"
                % what, repr(bad[:1]))
        return es

    t.section("A: events of real calls in the stream")
    calls(4, "a")
    r = Resp(red.port)
    wait_until(lambda: len(entries(r)) >= 4)
    check_stream("A", r)
    m = scrape(mport)
    t.check_eq(m.get("ctid_bus_connected"), 1, "A: ctid_bus_connected")
    t.check_eq(m.get("ctid_bus_lag"), 0, "A: ctid_bus_lag")
    t.check_eq(r.cmd("HGET", "ctid:published", "1.2.3"),
               str(max(p["seq"] for p in got)), "A: ctid:published")
    r.close()

    t.section("B: Redis down, calls go on, backlog published after")
    red.kill()
    calls(5, "b")
    m = scrape(mport)
    t.check_eq(m.get("ctid_bus_connected"), 0, "B: ctid_bus_connected 0")
    t.check(m.get("ctid_bus_lag", 0) >= 5, "B: ctid_bus_lag grows",
            repr(m.get("ctid_bus_lag")))
    time.sleep(1.5)   # several retries
    log = d.log_text()
    t.check_eq(log.count("events wait in the journal"), 1,
               "B: one log line for the loss, none per retry")
    red.start()
    r = Resp(red.port)
    wait_until(lambda: len(entries(r)) >= 9)
    check_stream("B", r)
    t.check(wait_until(lambda: scrape(mport).get("ctid_bus_lag") == 0),
            "B: ctid_bus_lag back to 0")
    t.check("connected; node 1.2.3 published up to seq" in d.log_text(),
            "B: reconnection logged")
    r.close()

    t.section("C: kill -9 while publishing a backlog")
    red.kill()
    calls(40, "c")
    red.start()
    r = Resp(red.port)
    before = r.cmd("HGET", "ctid:published", "1.2.3")
    # kill -9 as soon as publication starts (the first seq confirmed)
    deadline = time.time() + 15
    while (time.time() < deadline and
           r.cmd("HGET", "ctid:published", "1.2.3") == before):
        pass
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    t.log("C: %d of %d entries in the stream at the kill" % (
        len(entries(r)), len(got)))
    d.start()
    wait_until(lambda: len(entries(r)) >= len(got), timeout=15)
    check_stream("C", r)

    # Deterministic: Redis frozen (SIGSTOP) with a publish in flight, ctid
    # killed, Redis thawed: it runs the dead node's command, then ctid
    # restarts and goes on from there.
    red.proc.send_signal(signal.SIGSTOP)
    calls(6, "c2")
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    red.proc.send_signal(signal.SIGCONT)
    d.start()
    wait_until(lambda: len(entries(r)) >= len(got), timeout=15)
    check_stream("C2", r)
    t.check(wait_until(lambda: scrape(mport).get("ctid_bus_lag") == 0),
            "C2: ctid_bus_lag back to 0")

    t.section("F: a Redis that hangs (SIGSTOP) is dropped and reconnected")
    red.proc.send_signal(signal.SIGSTOP)
    calls(2, "f")
    t.check(d.wait_log("no answer for 10 s", 15),
            "F: a stalled connection is logged and dropped", d.log_tail(5))
    red.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: len(entries(r)) >= len(got), timeout=20)
    check_stream("F", r)
    t.check(wait_until(lambda: scrape(mport).get("ctid_bus_lag") == 0, 15),
            "F: ctid_bus_lag back to 0")
    d.stop()

    t.section("G: two publishers of one journal at once: each seq once")
    # The extreme of a restarted node racing its dead predecessor's
    # commands: two ctids with the same node_id and copies of the same
    # journal, started while Redis is frozen so both read "nothing
    # published" and then pipeline everything. Only the script's atomic
    # check keeps the stream at one entry per seq.
    import shutil
    dups = []
    for name in ("g1", "g2"):
        sd = t.path(name + "-state")
        shutil.copytree(d.state_dir, sd)
        dups.append(t.ctid(name=name, gateways=[gateway("gw", busy)],
                           node_id="1.2.3", state_dir=sd,
                           conf={"redis": "127.0.0.1:%d" % red.port,
                                 "redis_prefix": "dup"}))
    red.proc.send_signal(signal.SIGSTOP)
    for g in dups:
        g.start()
    time.sleep(0.5)
    red.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: len(entries(r, "dup:events")) >= len(got), 15)
    time.sleep(1)
    seqs = [e[1] for e in entries(r, "dup:events")]
    t.check_eq(seqs, sorted(p["seq"] for p in got),
               "G: every seq once, in order, with two publishers")
    for g in dups:
        g.stop()
    r.close()

    t.section("D: requirepass")
    red2 = t.add_cleanup(Redis(t, "redis2", ["--requirepass", "s3cret"]))
    red2.start()
    d2 = t.ctid(name="ctid2", gateways=[gateway("gw", busy)],
                conf={"redis": "127.0.0.1:%d" % red2.port,
                      "redis_password": "s3cret", "redis_prefix": "p2"})
    d2.start()
    got2 = len(got)
    calls_d = t.client(d2.listen_port, "d")
    sp = t.sipp("uas_busy.xml", port=busy, calls=1).start()
    rid = construct(t, calls_d, d2, d2.uri(busy), "short.wav")
    ev = calls_d.wait_event(rid, timeout=20) if rid else None
    sp.wait(10)
    sp.close()
    r2 = Resp(red2.port, "s3cret")
    es = wait_until(lambda: entries(r2, "p2:events"))
    t.check(len(es) == 1 and ev is not None and
            es[0][1] == ev["params"]["seq"],
            "D: published with redis_password under redis_prefix", repr(es))
    d2.stop()
    d3 = t.ctid(name="ctid3", gateways=[gateway("gw", busy)],
                conf={"redis": "127.0.0.1:%d" % red2.port,
                      "redis_password": "wrong", "redis_prefix": "p3"})
    d3.start()
    t.check(d3.wait_log("AUTH", 5), "D: a wrong password is logged",
            d3.log_tail(5))
    t.check_eq(entries(r2, "p3:events"), [], "D: nothing published")
    d3.stop()
    r2.close()

    t.section("H: a non-loopback Redis without a password: warned, calls go on")
    # 192.0.2.1 (TEST-NET-1) answers nothing: the connect stays pending.
    d4 = t.ctid(name="ctid4", gateways=[gateway("gw", busy)],
                conf={"redis": "192.0.2.1:6379"})
    d4.start()
    t.check(d4.wait_log("is not on loopback and redis_password is empty", 5),
            "H: warning at start", d4.log_tail(5))
    c4 = t.client(d4.listen_port, "h")
    sp = t.sipp("uas_busy.xml", port=busy, calls=1).start()
    rid = construct(t, c4, d4, d4.uri(busy), "short.wav")
    t.check(rid is not None and c4.wait_event(rid, timeout=20) is not None,
            "H: a call with Redis unreachable ends with its event")
    sp.wait(10)
    sp.close()
    d4.stop()

    t.section("E: bad address refused with FILE:LINE")
    for bad in ("redis.example.com:6379", "127.0.0.1", "unix:relative",
                "127.0.0.1:0"):
        with open(d.conf_path) as f:
            text = f.read()
        path = t.path("bad.conf")
        with open(path, "w") as f:
            f.write("# bad redis\nredis = %s\n" % bad + text)
        line = 2
        p = subprocess.run([t.ctid_bin, "--config", path, "--check-config"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err = p.stderr.decode()
        t.check(p.returncode != 0 and "%s:%d: redis: expected" % (path, line)
                in err, "E: redis = %s refused" % bad, err[-300:])
