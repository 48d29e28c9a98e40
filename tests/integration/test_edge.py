#!/usr/bin/env python3
"""ctid integration test: the shipped Kamailio edge (issue 15, the SIP
side; conf/kamailio/ctid-edge.cfg, docs/deployment.md).

The shipped ctid-edge.cfg passes `kamailio -c` as it is. One Kamailio
runs it (kamailio.KamailioConfig: its defines set to this test's ports,
probing every second) with a dispatcher list of two sipp trunks: A limited to 2 channels, B to 6. Two ctid nodes
(node ids 1.0.0 and 2.0.0, own ports and state dirs) have a gateway "edge"
whose proxy is the edge, and a gateway "spare" straight to a third sipp.
The trunks answer and wait for ctid's BYE (the prompt lasts PROMPT s) and
answer the edge's OPTIONS (sipp -aa).

A  10 concurrent calls across both nodes, to_uri [edge, spare]: trunk A
   never has more than 2 calls at once (counted from A's own message log:
   INVITE +1, BYE -1) and has 2 at some point, B at most 6; the 2 calls no
   trunk had room for get the edge's 503 and ctid moves them to spare
   (attempts: edge 503, spare 200); every call has one on_released,
   answered, and every BYE passed through the edge.
B  trunk B's sipp is killed: the edge's OPTIONS probing marks it down
   (EDGE DOWN); 4 concurrent calls to the edge alone: 2 are answered on A,
   2 end with the edge's 503 as their outcome ("dial failed", cause 503).
C  afterwards the edge's channel counts are back to zero: 2 concurrent
   calls both go to A and are answered.
D  a second edge (RING_TIMER as shipped, 120 s) whose one trunk rings
   (180) and then never answers the CANCEL (a trunk that died while the
   call rang; sipp uas_ring_ignore_cancel.xml): ctid's construct with
   max_ring_seconds 3 ends in "ring timeout"; the edge answers ctid's
   INVITE with 487 itself (EDGE CANCEL-TIMEOUT) within ~10 s of that, not
   after RING_TIMER; the trunk's one channel is free again (a second call
   is admitted to it, not refused 503) and ends the same way; ctid then
   stops at once, exit 0 (no transaction left for the stop grace).

CTID_EDGE_CFG=path runs the test against another config (to see it fail
with the channel limit taken out of the edge).
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (HOST, Test, check_construct_result,  # noqa: E402
                      check_released, make_prompt, gateway, free_port, header)
from kamailio import start_edge  # noqa: E402

EDGE_CFG = os.environ.get("CTID_EDGE_CFG") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf", "kamailio",
    "ctid-edge.cfg")
PROMPT = 3.0
LIMIT_A, LIMIT_B = 2, 6
DOMAIN = "carrier.test"


def concurrency(sipp):
    """The most calls the trunk had at once, from its message log in
    arrival order: a new Call-ID's INVITE +1, its BYE -1; and how many
    INVITEs it took."""
    up, top, invites = set(), 0, 0
    for d, m in sipp.messages():
        ci = header(m, "Call-ID")
        if d != "recv" or ci is None:
            continue
        if m.startswith("INVITE ") and ci not in up:
            up.add(ci)
            invites += 1
            top = max(top, len(up))
        elif m.startswith("BYE "):
            up.discard(ci)
    return top, invites


def place(t, nodes, to_uris, n, label):
    """Places n calls at once, alternating between the nodes; returns
    [(node, client, res_id)]."""
    out = []
    for i in range(n):
        d, c = nodes[i % len(nodes)]
        reply = c.call("ext.notify_call.construct", {
            "to_uri": to_uris, "play_content": "notice.wav", "play_repeat": 0})
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uris[0],
                                           None, label="%s #%d" % (label, i))
        if res_id is not None:
            out.append((d, c, res_id))
    return out


def released(t, calls, label, timeout=30):
    """Each call's on_released (waits for all); checks there is one each."""
    evs = {}
    for d, c, res_id in calls:
        evs[res_id] = c.wait_event(res_id, timeout=timeout)
    time.sleep(0.5)     # a second event would come right after the first
    for d, c, res_id in calls:
        n = len(c.events("ext.notify_call.on_released", res_id))
        t.check_eq(n, 1, "%s: %s has one on_released" % (label, res_id))
    return evs


def case_a(t, kam, nodes, trunk_a, trunk_b, spare):
    mark = kam.mark()
    calls = place(t, nodes, ["13800000000@edge", "13800000000@spare"], 10, "A")
    evs = released(t, calls, "A")
    moved = 0
    for d, c, res_id in calls:
        ev = evs[res_id]
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="A " + res_id)
        att = (ev or {}).get("params", {}).get("attempts")
        if att:
            moved += 1
            t.check(len(att) == 2 and att[0].get("gateway") == "edge"
                    and att[0].get("status") == 503
                    and att[1].get("gateway") == "spare",
                    "A: %s moved from the edge's 503 to spare" % res_id,
                    repr(att))
    top_a, inv_a = concurrency(trunk_a)
    top_b, inv_b = concurrency(trunk_b)
    _, inv_s = concurrency(spare)
    t.log("A: trunk A %d INVITEs (at most %d at once), B %d (%d), spare %d"
          % (inv_a, top_a, inv_b, top_b, inv_s))
    t.check(top_a <= LIMIT_A, "A: trunk A never had more than %d calls at once"
            % LIMIT_A, "%d at once" % top_a)
    t.check_eq(top_a, LIMIT_A, "A: ... and was full at some point")
    t.check(top_b <= LIMIT_B, "A: trunk B never had more than %d calls at once"
            % LIMIT_B, "%d at once" % top_b)
    t.check_eq(inv_a + inv_b, 10 - moved,
               "A: the trunks took every call the edge admitted")
    t.check_eq(moved, inv_s, "A: the calls the edge refused went to spare")
    t.check(moved == 10 - LIMIT_A - LIMIT_B,
            "A: the edge refused the calls no trunk had room for (503)",
            "%d moved to spare" % moved)
    text = kam.log_text()[mark:]
    byes = len(re.findall(r"EDGE BYE ", text))
    t.check_eq(byes, inv_a + inv_b, "A: every trunk call's BYE passed the edge")


def case_b(t, kam, nodes, trunk_a, trunk_b, port_b):
    mark = kam.mark()
    trunk_b.proc.kill()          # SIGKILL: gone, no goodbye
    trunk_b.proc.wait()
    t.check(kam.wait_log(r"EDGE DOWN sip:%s:%d$" % (re.escape(HOST), port_b),
                         since=mark, timeout=10),
            "B: the edge's OPTIONS probing marked trunk B down",
            kam.log_tail(20))
    before_a = concurrency(trunk_a)[1]
    calls = place(t, nodes, ["13800000000@edge"], 4, "B")
    evs = released(t, calls, "B")
    outcomes = []
    for d, c, res_id in calls:
        p = (evs[res_id] or {}).get("params", {})
        if p.get("error") is None:
            check_released(t, evs[res_id], res_id, None, None, "sys", cause=200,
                           answered=True, label="B answered " + res_id)
            outcomes.append("answered")
        else:
            check_released(t, evs[res_id], res_id, None, "dial failed", "sys",
                           cause=503, answered=False, label="B 503 " + res_id)
            outcomes.append("503")
    t.check_eq(sorted(outcomes), ["503", "503", "answered", "answered"],
               "B: trunk A took 2 calls, the other 2 got the edge's 503")
    top_a, inv_a = concurrency(trunk_a)
    t.check_eq(inv_a - before_a, 2, "B: the answered calls went to trunk A")
    t.check(top_a <= LIMIT_A, "B: trunk A still never had more than %d"
            % LIMIT_A, "%d" % top_a)
    t.check(not re.search(r"EDGE ADMIT trunk_b", kam.log_text()[mark:]),
            "B: no call was sent to the dead trunk B", kam.log_tail(20))


def case_c(t, kam, nodes, trunk_a):
    before = concurrency(trunk_a)[1]
    calls = place(t, nodes, ["13800000000@edge"], 2, "C")
    evs = released(t, calls, "C")
    for d, c, res_id in calls:
        check_released(t, evs[res_id], res_id, None, None, "sys", cause=200,
                       answered=True, label="C " + res_id)
    t.check_eq(concurrency(trunk_a)[1] - before, 2,
               "C: trunk A's channels were all free again: both calls went there")


def case_d(t):
    port_t = free_port("udp")
    trunk = t.sipp("uas_ring_ignore_cancel.xml", port=port_t, calls=100,
                   timeout=55, extra=("-aa",)).start()
    kam = start_edge(t, EDGE_CFG, [(port_t, "trunk_d", 10, 1)], name="edge-d")
    d = t.ctid(name="node-d", node_id="4.0.0", gateways=[
        gateway("edge", None, host=DOMAIN, proxy=kam.address("udp"))])
    d.start()
    c = t.client(d.listen_port, "app-d")
    time.sleep(1.5)     # the trunk has answered the edge's first probe
    for n in (1, 2):
        label = "D%d" % n
        reply = c.call("ext.notify_call.construct", {
            "to_uri": "13800000000@edge", "play_content": "notice.wav",
            "max_ring_seconds": 3, "user_data": label})
        res_id, _ = check_construct_result(t, reply, d.node_id,
                                           "13800000000@edge", label,
                                           label=label)
        if res_id is None:
            return
        ev = c.wait_event(res_id, timeout=20)
        check_released(t, ev, res_id, label, "ring timeout", "sys",
                       cause=None, answered=False,
                       label="%s: the ring timeout" % label)
        t0 = time.time()
        t.check(d.wait_log("%s: CANCEL" % res_id, timeout=5),
                "%s: ctid CANCELed the call" % label)
        # the edge's own 487 ends ctid's INVITE transaction (RING_TIMER
        # would be 120 s)
        got = d.wait_log("%s: 487 Request Terminated\n" % res_id, timeout=15)
        t.check(got, "%s: ctid's INVITE got its 487 within 15 s of the ring "
                "timeout (%.1f s)" % (label, time.time() - t0),
                d.log_tail(10))
        text = kam.log_text()
        t.check_eq(text.count("EDGE CANCEL-TIMEOUT"), n,
                   "%s: the edge answered it itself (EDGE CANCEL-TIMEOUT)"
                   % label)
        # maxcalls=1: the second call is admitted only if the first one's
        # channel was given back
        t.check_eq(len(re.findall(r"EDGE ADMIT trunk_d 0/1 ", text)), n,
                   "%s: admitted to the trunk's one free channel" % label)
    received = [m.split(" ", 1)[0] for dr, m in trunk.messages()
                if dr == "recv"]
    t.check("CANCEL" in received, "D: the trunk got the edge's CANCEL",
            repr(received))
    c.close()
    t1 = time.time()
    t.check_eq(d.stop(), 0, "D: ctid exit 0")
    t.check(time.time() - t1 < 4, "D: ctid stopped at once (no INVITE left "
            "for the SIP stop grace)", "%.1f s" % (time.time() - t1))
    t.check("dialogs still open" not in d.log_text(),
            "D: nothing open at ctid's stop")
    kam.stop()
    trunk.close()


def main(t):
    if not os.path.exists("/usr/sbin/kamailio") or not shutil.which("sipp"):
        t.fail("kamailio and sipp installed (.ci/setup)")
        return
    r = subprocess.run(["/usr/sbin/kamailio", "-c", "-f", EDGE_CFG],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    out = r.stdout.decode(errors="replace")
    t.check(r.returncode == 0 and "config file ok" in out
            and "warning" not in out.lower(),
            "the shipped config as it is passes kamailio -c, no warning",
            out[-1500:])
    make_prompt(t.path("prompts", "notice.wav"), PROMPT)
    port_a, port_b, port_s = (free_port("udp") for _ in range(3))
    trunks = {}
    for name, port, scenario in (("a", port_a, "uas_proxied_wait_bye.xml"),
                                 ("b", port_b, "uas_proxied_wait_bye.xml"),
                                 ("s", port_s, "uas_answer_wait_bye.xml")):
        trunks[name] = t.sipp(scenario, port=port, calls=100, timeout=55,
                              extra=("-aa",)).start()
    kam = start_edge(t, EDGE_CFG, [(port_a, "trunk_a", 10, LIMIT_A),
                                   (port_b, "trunk_b", 5, LIMIT_B)])
    nodes = []
    for i in (1, 2):
        d = t.ctid(name="node%d" % i, node_id="%d.0.0" % i, gateways=[
            gateway("edge", None, host=DOMAIN, proxy=kam.address("udp")),
            gateway("spare", port_s)])
        d.start()
        nodes.append((d, t.client(d.listen_port, "app%d" % i)))
    # both trunks answer the edge's probes before the calls start
    time.sleep(1.5)
    t.run("A: 10 calls, trunk A's limit, 503 -> failover",
          case_a, t, kam, nodes, trunks["a"], trunks["b"], trunks["s"])
    t.run("B: trunk B dies", case_b, t, kam, nodes, trunks["a"], trunks["b"],
          port_b)
    t.run("C: the counts are back to zero", case_c, t, kam, nodes, trunks["a"])
    t.run("D: a trunk that never answers the CANCEL", case_d, t)


t = Test("edge")
with t:
    main(t)
