#!/usr/bin/env python3
"""ctid integration test: two nodes on the Redis request bus behind the
Kamailio edge, with a trunk, a node and Redis failing during the run
(issue 15, "The test that shows it"; docs/deployment.md).

Every peer is started here in the foreground on loopback ports: one
redis-server (appendonly yes, appendfsync always: a restart keeps the
streams), one Kamailio running the shipped conf/kamailio/ctid-edge.cfg
(probing every second), two sipp trunks behind it (A limited to LIMIT_A
channels, B to LIMIT_B; both answer, the callee waits for ctid's BYE), two
ctid nodes (node ids 1.0.0 and 2.0.0, own ports and state dirs, redis on,
a gateway "edge" whose proxy is the edge).

A client thread XADDs N constructs to ctid:requests at RATE per second,
each with reply_to and a unique id, to_uri "<user>@edge" with a user part
unique to the request (1380000NNNN), the prompt PROMPT s long; every
KEY_EVERY-th one carries a request_key, and every DUP_EVERY-th keyed one
is sent a second time (a client retry: another id, the same params and
key) a little later. The client adds each entry with an explicit entry id,
so its own retry after a lost reply (Redis restarting) cannot add an entry
twice. During the run, at fractions of N:
  STALL_AT       node 1 is frozen (SIGSTOP) for STALL s, past its
                 heartbeat (5 s) and redis_claim_idle (CLAIM_IDLE): node
                 2 answers the entries node 1 had read ("node 1.0.0
                 stopped before answering"); thawed, node 1 drops those
                 it had not handed to its daemon yet (the OWN/MARK check,
                 "no longer this node's"); one that passed that check
                 just before the freeze but whose INVITE was not out yet
                 is still placed by it (docs/reliability.md, "The request
                 bus", point 5: the construct's own work, prompts included;
                 seen in 1 of 3 runs checked), and its
                 own answers must not be added (the REPLY script's XACK
                 guard);
  NODE_KILL_AT   node 2 dies with answers in flight: SIGSTOP while its
                 blocked read is served, Redis frozen (SIGSTOP), node 2
                 thawed (it places what it got; its REPLY scripts wait
                 unread in the frozen Redis), kill -9 of node 2, kill -9
                 of Redis (those scripts are lost; the append-only file
                 keeps the entries pending for node 2), both started
                 again: node 2 must answer its own pending entries from
                 its request_key file, not dial them again (whether an
                 entry was in flight at that moment is up to timing: the
                 summary says how many were);
  TRUNK_KILL_AT  trunk B's sipp gets kill -9 (a call ringing there is
                 CANCELed at max_ring_seconds and the edge answers it 487
                 after CANCEL_WAIT);
  REDIS_KILL_AT  Redis gets kill -9 and is started again on the same port
                 and dir (down REDIS_DOWN s).
Afterwards:
  1 every request got exactly one reply on its reply_to stream (counted
    per id), with its id, its entry, a node, and the JSON-RPC response;
    an error only where the design allows one (one of a key's two
    entries while the other places it; an entry of a node that stopped
    before answering);
  2 every placed call (distinct res_id of the results) has exactly one
    on_released in ctid:events, and no on_released names a call that no
    reply reported, but for the late calls of the stalled node (matched
    by user_data to a "stopped before answering" reply); each (node,
    seq) once;
  3 no request dialled twice: per Request-URI user, at most one Call-ID
    of initial INVITEs (no To tag) over both trunks (the edge moving a
    call from B to A keeps its Call-ID; a retransmission too), and the
    edge saw no more calls (Call-IDs) than were placed; the retries of a
    key share one call;
  4 both nodes placed calls (res_id prefixes);
  5 trunk A never had more than LIMIT_A calls at once across both nodes
    (from its own message log, as test_edge measures it);
  6 every call trunk B had received and not answered when it died moved
    to trunk A or ended with a reported outcome (an on_released with an
    error); every call the edge then gave up on dead B (EDGE FAIL
    trunk_b) was moved to A (EDGE ADMIT trunk_a, same Call-ID) or got
    the edge's 503 (EDGE BUSY), and each 503 of the edge is one call's
    outcome ("dial failed", cause 503); the edge marked B down; trunk A
    answered calls the edge sent it after B died.
The summary (per node, per trunk, per outcome) is printed either way.

CTID_EDGE_CFG=path runs the test against another edge config.
"""
import json
import os
import re
import shutil
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (HOST, Test, make_prompt, gateway,  # noqa: E402
                      free_port, header, rtp_range)
from kamailio import start_edge  # noqa: E402
from redisharness import Resp, Redis  # noqa: E402

EDGE_CFG = os.environ.get("CTID_EDGE_CFG") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf", "kamailio",
    "ctid-edge.cfg")
N = 240                 # constructs (plus the retries of some keyed ones)
RATE = 10.0             # per second
PROMPT = 1.5            # s: ring + answer + prompt: calls overlap
LIMIT_A, LIMIT_B = 3, 40
MAX_CALLS = 16          # per node
MAX_RING = 8            # s: a call ringing on B when B dies ends in time
KEY_EVERY = 4           # every 4th request has a request_key
DUP_EVERY = 3           # every 3rd keyed request is sent again
DUP_DELAY = 0.6         # s after the first
STALL_AT, NODE_KILL_AT, TRUNK_KILL_AT, REDIS_KILL_AT = 0.05, 0.45, 0.6, 0.75
STALL = 8.0             # s node 1 is frozen: past its heartbeat (5 s) and
CLAIM_IDLE = 2          # redis_claim_idle: node 2 takes its entries over
REDIS_DOWN = 2.0        # s
REPLIES = "app:replies"
NODES = ("1.0.0", "2.0.0")
DOMAIN = "carrier.test"
RES_ID = re.compile(r"^(%s)-ext\.notify_call-\d+$"
                    % "|".join(re.escape(n) for n in NODES))


def user_of(i):
    return "1380000%04d" % i


class Client(threading.Thread):
    """The application server: XADDs the requests at a steady rate. Each
    entry gets an explicit id <base>-<k>, so a retry after a lost reply
    (Redis killed) either adds it or is refused as a repeat ("equal or
    smaller"), never adds it twice."""

    def __init__(self, t, port, plan):
        super().__init__(daemon=True)
        self.t, self.port, self.plan = t, port, plan
        self.sent = {}          # request id -> entry id
        self.retries = 0
        self.errors = []

    def xadd(self, r, entry, fields):
        args = ["XADD", "ctid:requests", entry]
        for k, v in fields:
            args += [k, v]
        deadline = time.time() + 30
        while True:
            try:
                if r[0] is None:
                    r[0] = Resp(self.port)
                r[0].cmd(*args)
                return True
            except (OSError, RuntimeError) as e:
                if "equal or smaller" in str(e):
                    return True          # the lost reply's XADD was applied
                self.retries += 1
                if r[0] is not None:
                    try:
                        r[0].close()
                    except OSError:
                        pass
                    r[0] = None
                if time.time() > deadline:
                    self.errors.append("%s: %s" % (entry, e))
                    return False
                time.sleep(0.1)

    def run(self):
        r = [None]
        base = int(time.time() * 1000)
        t0 = time.time()
        for k, (at, rid, fields) in enumerate(self.plan, 1):
            delay = t0 + at - time.time()
            if delay > 0:
                time.sleep(delay)
            entry = "%d-%d" % (base, k)
            if self.xadd(r, entry, fields):
                self.sent[rid] = entry
        if r[0] is not None:
            r[0].close()


def make_plan():
    """[(send time, request id, fields)] in send order; {id: params};
    {id of a retry: id of its first}."""
    plan, params, dups = [], {}, {}
    nkeyed = 0
    for i in range(N):
        rid = "r%04d" % i
        p = {"to_uri": "%s@edge" % user_of(i), "play_content": "notice.wav",
             "play_repeat": 0, "max_ring_seconds": MAX_RING, "user_data": rid}
        keyed = i % KEY_EVERY == 1
        if keyed:
            p["request_key"] = "k%04d" % i
        params[rid] = p
        fields = [("method", "ext.notify_call.construct"),
                  ("params", json.dumps(p)), ("reply_to", REPLIES),
                  ("id", rid)]
        plan.append((i / RATE, rid, fields))
        if keyed:
            nkeyed += 1
            if nkeyed % DUP_EVERY == 0:
                drid = rid + "-retry"
                params[drid] = p
                dups[drid] = rid
                plan.append((i / RATE + DUP_DELAY, drid,
                             [(k, drid if k == "id" else v)
                              for k, v in fields]))
    plan.sort(key=lambda x: x[0])
    return plan, params, dups


def xrange_all(r, key):
    """Every entry of a stream: [(entry id, {field: value})]."""
    out, start = [], "-"
    while True:
        chunk = r.cmd("XRANGE", key, start, "+", "COUNT", "500")
        if not chunk:
            return out
        for eid, fields in chunk:
            out.append((eid, dict(zip(fields[::2], fields[1::2]))))
        if len(chunk) < 500:
            return out
        start = "(" + chunk[-1][0]


def trunk_invites(sipp):
    """From a trunk's message log: {Request-URI user: set of Call-IDs of
    initial INVITEs (no To tag)}, the Call-IDs it answered 200 to an
    INVITE, and the most calls it had at once (a new Call-ID's INVITE +1,
    its BYE -1, as test_edge counts)."""
    users, answered = {}, set()
    up, top = set(), 0
    for d, m in sipp.messages():
        ci = header(m, "Call-ID")
        if ci is None:
            continue
        if d == "sent":
            if (m.startswith("SIP/2.0 200") and
                    re.search(r"^CSeq:\s*\d+ INVITE\s*$", m, re.M | re.I)):
                answered.add(ci)
            continue
        if m.startswith("INVITE ") and ";tag=" not in (header(m, "To") or ""):
            mu = re.match(r"INVITE sip:([^@;>\s]+)@", m)
            users.setdefault(mu.group(1) if mu else "?", set()).add(ci)
            if ci not in up:
                up.add(ci)
                top = max(top, len(up))
        elif m.startswith("BYE "):
            up.discard(ci)
    return users, answered, top


def main(t):
    if (not os.path.exists("/usr/sbin/kamailio") or not shutil.which("sipp")
            or not shutil.which("redis-server")):
        t.fail("kamailio, sipp and redis-server installed (.ci/setup)")
        return
    make_prompt(t.path("prompts", "notice.wav"), PROMPT)
    aof = ["--appendonly", "yes", "--appendfsync", "always"]
    red = t.add_cleanup(Redis(t, "redis", aof)).start()
    port_a, port_b = free_port("udp"), free_port("udp")
    trunks = {}
    for name, port in (("A", port_a), ("B", port_b)):
        trunks[name] = t.sipp("uas_proxied_wait_bye.xml", port=port,
                              calls=10 * N, timeout=280, ring_ms=200,
                              extra=("-aa",)).start()
    kam = start_edge(t, EDGE_CFG, [(port_a, "trunk_a", 10, LIMIT_A),
                                   (port_b, "trunk_b", 5, LIMIT_B)])
    nodes = []
    for nid in NODES:
        d = t.ctid(name="node" + nid[0], node_id=nid, gateways=[
            gateway("edge", None, host=DOMAIN, proxy=kam.address("udp"))],
            conf={"redis": "127.0.0.1:%d" % red.port,
                  "max_calls": MAX_CALLS, "redis_claim_idle": CLAIM_IDLE,
                  # wider than the default: other tests' ports in the
                  # range only cost a retry on the next pair
                  "rtp_ports": "%d-%d" % rtp_range(4000)})
        d.start()
        nodes.append(d)
    time.sleep(1.5)      # both trunks answer the edge's probes first

    plan, params, dups = make_plan()
    client = Client(t, red.port, plan)
    t.section("run")
    t.log("%d requests (%d retries of keyed ones) at %.0f/s" % (
        len(plan), len(dups), RATE))
    client.start()
    t0 = time.time()
    span = N / RATE
    chaos = {}

    def at(frac):
        delay = t0 + frac * span - time.time()
        if delay > 0:
            time.sleep(delay)

    at(STALL_AT)
    # node 1 stalls (SIGSTOP) with entries of its blocked read unseen in
    # its socket: its heartbeat expires, node 2 answers them ("node 1.0.0
    # stopped before answering"); thawed, node 1 drops them (OWN); one
    # caught between OWN and its INVITE is placed late, and its answer
    # must not be added a second time (the XACK guard)
    nodes[0].proc.send_signal(signal.SIGSTOP)
    time.sleep(STALL)
    nodes[0].proc.send_signal(signal.SIGCONT)
    t.log("node 1.0.0 frozen for %.0f s" % STALL)
    chaos["stall"] = time.time() - t0
    at(NODE_KILL_AT)
    # node 2 dies with answers in flight: stopped (SIGSTOP) while its
    # blocked read is served, Redis frozen, node 2 thawed (it places what
    # it got and sends the REPLY scripts into the frozen Redis), kill -9,
    # then Redis kill -9 (those scripts die unread; the append-only file
    # keeps the entries pending for node 2) and both started again: node 2
    # reads its own pending entries and must not dial them again.
    victim = nodes[1]
    victim.proc.send_signal(signal.SIGSTOP)
    time.sleep(0.6)
    red.proc.send_signal(signal.SIGSTOP)
    victim.proc.send_signal(signal.SIGCONT)
    time.sleep(0.6)
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    red.kill()
    t.log("node 2.0.0 killed (kill -9) with Redis frozen, then Redis killed")
    red.start()
    victim.start()
    chaos["node"] = time.time() - t0
    at(TRUNK_KILL_AT)
    mark = kam.mark()
    trunks["B"].proc.kill()
    trunks["B"].proc.wait()
    chaos["trunk"] = time.time() - t0
    t.log("trunk B killed (kill -9)")
    at(REDIS_KILL_AT)
    red.kill()
    t.log("redis killed (kill -9)")
    time.sleep(REDIS_DOWN)
    red.start()
    t.log("redis started again on port %d" % red.port)
    chaos["redis"] = time.time() - t0
    client.join(span + 60)
    t.check(not client.is_alive() and not client.errors,
            "the client added every request", repr(client.errors[:3]))
    t.log("client done after %.1f s, %d XADD retries" % (
        time.time() - t0, client.retries))

    # -- wait for every reply and every placed call's event
    r = Resp(red.port)
    ids = set(client.sent)

    def replies():
        return xrange_all(r, REPLIES)

    def placed(reps):
        out = set()
        for _eid, f in reps:
            try:
                res = json.loads(f.get("reply", "")).get("result")
            except ValueError:
                continue
            if isinstance(res, dict) and isinstance(res.get("res_id"), str):
                out.add(res["res_id"])
        return out

    def released():
        evs = {}
        for _eid, f in xrange_all(r, "ctid:events"):
            if f.get("method") != "ext.notify_call.on_released":
                continue
            try:
                p = json.loads(f.get("params", ""))
            except ValueError:
                p = {}
            evs.setdefault(p.get("res_id"), []).append((f, p))
        return evs

    def all_in():
        reps = replies()
        got = {f.get("id") for _e, f in reps}
        if not ids <= got:
            return False
        evs = released()
        return all(rid in evs for rid in placed(reps))

    # until everything is in, or nothing new came for 30 s (90 s at most)
    deadline, last, seen = time.time() + 90, time.time(), None
    done = False
    while time.time() < deadline and time.time() - last < 30:
        done = all_in()
        if done:
            break
        now = (len(replies()), len(released()))
        if now != seen:
            seen, last = now, time.time()
        time.sleep(0.5)
    t.log("%s after %.1f s" % ("every reply and event in" if done else
                               "NOT everything in", time.time() - t0))
    time.sleep(1.0)     # a second reply or event would come right after
    reps = replies()
    evs = released()
    for s in trunks.values():
        s.close()
    kam_log = kam.log_text()

    t.section("checks")
    # 1: one reply per request
    byid = {}
    for eid, f in reps:
        byid.setdefault(f.get("id"), []).append((eid, f))
    counts = {rid: len(byid.get(rid, [])) for rid in ids}
    missing = sorted(rid for rid, n in counts.items() if n == 0)
    twice = sorted(rid for rid, n in counts.items() if n > 1)
    stray = sorted(str(k) for k in byid if k not in ids)
    t.check(not missing, "1: every request got a reply",
            "%d without: %s" % (len(missing), missing[:10]))
    t.check(not twice, "1: no request got two replies",
            "%d twice: %s" % (len(twice), [byid[x] for x in twice[:3]]))
    t.check(not stray, "1: no reply for an id nobody sent", repr(stray[:5]))
    results, errors, bad = {}, {}, []
    for rid in sorted(ids):
        for _eid, f in byid.get(rid, [])[:1]:
            try:
                rep = json.loads(f.get("reply", ""))
            except ValueError:
                bad.append((rid, "reply is not JSON", f))
                continue
            if (f.get("entry") != client.sent[rid] or f.get("node") not in NODES
                    or not isinstance(rep, dict) or rep.get("id") != rid
                    or rep.get("jsonrpc") != "2.0"):
                bad.append((rid, "fields", f))
                continue
            if isinstance(rep.get("result"), dict):
                res = rep["result"]
                if (not RES_ID_OK(res) or res.get("user_data")
                        != params[rid]["user_data"]
                        or res.get("to_uri") != params[rid]["to_uri"]):
                    bad.append((rid, "result", rep))
                results[rid] = (f["node"], res)
            elif isinstance(rep.get("error"), dict):
                errors[rid] = (f["node"], rep["error"])
            else:
                bad.append((rid, "neither result nor error", rep))
    t.check(not bad, "1: each reply has its id, entry, node and a JSON-RPC "
            "response with the construct's result or an error",
            "%d bad: %s" % (len(bad), bad[:3]))
    unexpected = []
    for rid, (node, e) in errors.items():
        msg = str(e.get("message"))
        # a key sent twice: whichever entry marks it first places it,
        # the other is told so (either may be first)
        if e.get("code") == -32000 and (
                ((rid in dups or rid in dups.values())
                 and "is being placed by node" in msg) or
                "stopped before answering" in msg):
            continue
        unexpected.append((rid, node, e))
    t.check(not unexpected, "1: error replies only where the design allows "
            "one (a retry of a key being placed; a dead node's entry)",
            "%d: %s" % (len(unexpected), unexpected[:5]))

    # 2: one on_released per placed call, none for a call not placed
    res_ids = {res["res_id"] for _n, res in results.values()}
    no_event = sorted(x for x in res_ids if x not in evs)
    two_events = sorted(x for x in evs if len(evs[x]) > 1)
    # a stalled node may place an entry another node already answered
    # with "stopped before answering ... the call may have been placed"
    # when the freeze caught it between its OWN check and its INVITE
    # (rare; not impossible, so allowed): such a call is no stranger
    # (its user_data is the request's id)
    taken = {rid for rid, (_n, e) in errors.items()
             if "stopped before answering" in str(e.get("message"))}
    late_calls = {x for x, lst in evs.items() if x not in res_ids and
                  any(p.get("user_data") in taken for _f, p in lst)}
    unknown = sorted(str(x) for x in evs
                     if x not in res_ids and x not in late_calls)
    t.check(not no_event, "2: every placed call has an on_released",
            "%d without: %s" % (len(no_event), no_event[:5]))
    t.check(not two_events, "2: no call has two on_released",
            "%d: %s" % (len(two_events), [evs[x] for x in two_events[:2]]))
    t.check(not unknown, "2: no on_released for a call no reply reported",
            "%d: %s" % (len(unknown), unknown[:5]))
    seqs = [(f.get("node"), f.get("seq")) for lst in evs.values()
            for f, _p in lst]
    t.check_eq(len(seqs), len(set(seqs)), "2: each (node, seq) once")

    # 3: no request dialled twice
    inv_a, ans_a, top_a = trunk_invites(trunks["A"])
    inv_b, ans_b, top_b = trunk_invites(trunks["B"])
    calls_of = {}
    for users in (inv_a, inv_b):
        for u, cis in users.items():
            calls_of.setdefault(u, set()).update(cis)
    known = {user_of(i) for i in range(N)}
    twice_dialled = sorted(u for u, cis in calls_of.items() if len(cis) > 1)
    t.check(not twice_dialled, "3: no request dialled twice (one Call-ID per "
            "Request-URI user over both trunks)",
            "%d: %s" % (len(twice_dialled),
                        [(u, calls_of[u]) for u in twice_dialled[:3]]))
    t.check(set(calls_of) <= known, "3: the trunks saw only our requests",
            repr(sorted(set(calls_of) - known)[:5]))
    edge_calls = set(re.findall(r"EDGE (?:ADMIT|BUSY) .*?ci=(\S+)", kam_log))
    restarted = sum(1 for lst in evs.values() for _f, p in lst
                    if p.get("error") == "daemon restart")
    placed_n = len(res_ids) + len(late_calls)
    t.check(placed_n - restarted <= len(edge_calls) <= placed_n,
            "3: the edge saw one call per placed call (%d Call-IDs, %d placed,"
            " %d of them after a takeover answer, %d released by a restart)"
            % (len(edge_calls), placed_n, len(late_calls), restarted))
    split = []
    for drid, first in dups.items():
        a, b = results.get(drid), results.get(first)
        if a and b and a[1]["res_id"] != b[1]["res_id"]:
            split.append((first, b[1]["res_id"], drid, a[1]["res_id"]))
    t.check(not split, "3: a key's retry got the first's call, not a new one",
            repr(split[:3]))

    # 4: both nodes placed calls
    per_node = {n: sum(1 for x in res_ids if x.startswith(n + "-"))
                for n in NODES}
    t.check(all(per_node.values()), "4: both nodes placed calls",
            repr(per_node))

    # 5: the limited trunk
    t.check(top_a <= LIMIT_A, "5: trunk A never had more than %d calls at "
            "once across both nodes" % LIMIT_A, "%d at once" % top_a)
    t.check_eq(top_a, LIMIT_A, "5: ... and was full at some point")
    t.check(top_b <= LIMIT_B, "5: trunk B never had more than %d" % LIMIT_B,
            "%d at once" % top_b)

    # 6: the killed trunk's calls
    ev_of_user = {}
    for rid, (_n, res) in results.items():
        for _f, p in evs.get(res["res_id"], []):
            ev_of_user[params[rid]["to_uri"].split("@")[0]] = p
    a_calls = set().union(*inv_a.values()) if inv_a else set()
    stranded, moved, failed = [], 0, 0
    for u, cis in inv_b.items():
        for ci in cis - ans_b:
            p = ev_of_user.get(u)
            if ci in a_calls:
                moved += 1
            elif p is not None and p.get("error") is not None:
                failed += 1
            else:
                stranded.append((u, ci, p))
    t.check(not stranded, "6: trunk B's unanswered calls moved to A or "
            "ended with a reported error (%d moved, %d failed)"
            % (moved, failed), repr(stranded[:3]))
    # the calls the edge sent to B after it died (sipp logged nothing):
    # the edge gave each up after FR_TIMER (EDGE FAIL trunk_b) and moved it
    # to A (EDGE ADMIT trunk_a, same Call-ID) or answered 503 (EDGE BUSY),
    # and every 503 of the edge is a call's reported outcome
    after = kam_log[mark:]
    fail_b = set(re.findall(r"EDGE FAIL trunk_b \d+ ci=(\S+)", after))
    admit_a = set(re.findall(r"EDGE ADMIT trunk_a .*?ci=(\S+)", after))
    busy = set(re.findall(r"EDGE BUSY ci=(\S+)", kam_log))
    lost = sorted(fail_b - admit_a - busy)
    t.check(not lost, "6: every call the edge could not place on dead B "
            "moved to A (%d) or got its 503 (%d)" % (
                len(fail_b & admit_a), len(fail_b & busy)), repr(lost[:3]))
    n503 = sum(1 for lst in evs.values() for _f, p in lst
               if p.get("error") == "dial failed" and p.get("cause") == 503)
    t.check(len(busy) - restarted <= n503 <= len(busy),
            "6: each 503 of the edge (%d) is a call's reported outcome "
            "(\"dial failed\", cause 503: %d)" % (len(busy), n503))
    # probing marks it down (EDGE DOWN <trunk>), or a call it failed does
    # first (EDGE FAIL trunk_b, then EDGE DOWN <that call's R-URI>)
    t.check(re.search(r"EDGE DOWN sip:%s:%d$|EDGE FAIL trunk_b " % (
        re.escape(HOST), port_b), kam_log[mark:], re.M) is not None,
            "6: the edge marked trunk B down")
    late = admit_a & ans_a
    t.check(bool(late), "6: trunk A answered calls the edge sent it after B "
            "died (%d)" % len(late), "none")

    # summary
    outcomes = {}
    for lst in evs.values():
        for _f, p in lst:
            k = p.get("error") or "answered"
            if p.get("cause") is not None:
                k += " (cause %s)" % p.get("cause")
            outcomes[k] = outcomes.get(k, 0) + 1
    err_kinds = {}
    for _n, e in errors.values():
        k = "%s %s" % (e.get("code"), re.sub(r"node \S+|entry \S+|\d+-\d+",
                                             "X", str(e.get("message"))))
        err_kinds[k] = err_kinds.get(k, 0) + 1
    answered_by = {n: sum(1 for _e, f in reps if f.get("node") == n)
                   for n in NODES}
    t.log("SUMMARY requests %d (%d retries), replies %d, results %d, "
          "errors %d, calls placed %d" % (len(ids), len(dups), len(reps),
                                          len(results), len(errors),
                                          len(res_ids)))
    t.log("SUMMARY chaos at: node 1 thawed %.1f s, node 2 kill+restart "
          "%.1f s, redis restart %.1f s, trunk B kill %.1f s" % (
              chaos.get("stall", -1), chaos.get("node", -1),
                                    chaos.get("redis", -1),
                                    chaos.get("trunk", -1)))
    t.log("SUMMARY per node: calls placed %s, replies sent %s"
          % (per_node, answered_by))
    log2 = victim.log_text()
    log2 = log2[log2.find("===== start #2"):]
    t.log("SUMMARY node 2 after its restart: %d own pending entr(ies) "
          "answered from its request_key file (placed before the kill), "
          "%d placed by it for the first time" % (
              log2.count("request_key seen before"),
              len(re.findall(r"constructed to", log2))))
    t.log("SUMMARY per trunk: A %d calls (at most %d at once, limit %d), "
          "B %d calls (at most %d, limit %d); B's unanswered: %d moved to A, "
          "%d failed; the edge saw %d calls, answered %d with 503, gave up "
          "%d on dead B (%d of them moved to A)" % (
              sum(len(c) for c in inv_a.values()), top_a, LIMIT_A,
              sum(len(c) for c in inv_b.values()), top_b, LIMIT_B,
              moved, failed, len(edge_calls), len(busy), len(fail_b),
              len(fail_b & admit_a)))
    t.log("SUMMARY node 1's stall: %d of its entries answered by node 2 "
          "as \"stopped before answering\", %d of those placed by node 1 "
          "after it thawed, %d dropped by it (no longer its own)" % (
              len(taken), len(late_calls),
              nodes[0].log_text().count("no longer this node's")))
    t.log("SUMMARY per outcome (on_released): %s" % json.dumps(
        outcomes, sort_keys=True))
    t.log("SUMMARY error replies: %s" % json.dumps(err_kinds, sort_keys=True))
    r.close()


def RES_ID_OK(res):
    return isinstance(res.get("res_id"), str) and RES_ID.match(
        res["res_id"]) is not None


t = Test("cluster")
with t:
    main(t)
