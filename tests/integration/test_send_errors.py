#!/usr/bin/env python3
"""ctid integration test: the RTP send error and journal lag metrics
(issue 16, point 5: the dashboard's "RTP packets and send errors" and
"journal lag" panels).

A  A normal call (the callee's RTP port is a sink that receives): the
   prompt arrives in full and ctid_rtp_send_errors_total stays 0 for both
   kinds, ctid_rtcp_send_errors_total too.
B  The callee's SDP answer names an RTP port where nothing listens on
   loopback: the connected RTP socket gets the ICMP port unreachable back
   as ECONNREFUSED on the next send(), so about every other packet is
   lost. What the call does is unchanged (the prompt is paced out to the
   end, on_released error null, dropped_by sys); what is new is
   ctid_rtp_send_errors_total{kind="transient"} rising, already while the
   prompt plays (counted on the media thread as it happens, unlike
   ctid_rtp_packets_sent_total, counted when the stream comes back), and
   by no more than the packets the stream sent.
C  The answer's c= is 192.0.2.1, which the RTP socket bound to 127.0.0.1
   cannot send to: the call ends with play error and
   ctid_rtp_send_errors_total{kind="fatal"} is +1.
D  The journal: every event above was synced (ctid_journal_sync_seconds
   counted syncs, with a sane sum, and no sync error), and the unsynced
   gauge is 0 after the group commit. Then an event with no receiver (its
   creator's connection was reset mid-call, nobody subscribed) is synced
   all the same, in the loop turn that wrote it: ctid_journal_unsynced_events
   stays 0 and one more sync is counted, with no reply to anyone to bring
   a group commit (before, it waited unsynced until the next reply).
"""
import os
import re
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      make_prompt, gateway, free_port, http_get, HOST,
                      check_result, FRAME)

SAMPLE = re.compile(r"^(ctid_[a-z_]+)(\{[^}]*\})? (\S+)$", re.M)


def metrics(port):
    """Every ctid_* sample of /metrics as {"name{labels}": float}."""
    _, _, body = http_get(port, "/metrics")
    return {m.group(1) + (m.group(2) or ""): float(m.group(3))
            for m in SAMPLE.finditer(body)}


TRANSIENT = 'ctid_rtp_send_errors_total{kind="transient"}'
FATAL = 'ctid_rtp_send_errors_total{kind="fatal"}'
RTCP = "ctid_rtcp_send_errors_total"
SENT = "ctid_rtp_packets_sent_total"
SYNC_COUNT = "ctid_journal_sync_seconds_count"
SYNC_SUM = "ctid_journal_sync_seconds_sum"
SYNC_ERRORS = "ctid_journal_sync_errors_total"
UNSYNCED = "ctid_journal_unsynced_events"
JOURNALED = "ctid_events_journaled_total"

SHORT_SECONDS = 0.5    # 25 frames
LONG_SECONDS = 3.0     # 150 frames: long enough to scrape mid-prompt

t = Test("send_errors")
with t:
    make_prompt(t.path("prompts", "short.wav"), SHORT_SECONDS)
    make_prompt(t.path("prompts", "long.wav"), LONG_SECONDS)
    short_frames = int(round(SHORT_SECONDS * 8000)) // FRAME
    long_frames = int(round(LONG_SECONDS * 8000)) // FRAME
    ports = {k: free_port("udp") for k in ("ok", "closed", "unroutable",
                                            "orphan")}
    mport = free_port("tcp")
    d = t.ctid(gateways=[gateway(k, p) for k, p in ports.items()],
               conf={"metrics_listen": "%s:%d" % (HOST, mport)})
    d.start()
    c = t.client(d.listen_port, "creator")
    state = {}

    def construct(client, gw, play, user):
        to_uri = d.uri(ports[gw])
        t0 = time.time()
        r = client.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": play, "play_repeat": 0,
            "user_data": user})
        res_id, _ = check_construct_result(t, r, d.node_id, to_uri, user,
                                           label="construct %s" % user)
        return res_id, t0

    def wait_value(name, pred, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            v = metrics(mport).get(name)
            if (v is not None and pred(v)) or time.time() > deadline:
                return v
            time.sleep(0.05)

    def a_normal_call():
        m0 = metrics(mport)
        for name in (TRANSIENT, FATAL, RTCP, SYNC_COUNT, SYNC_SUM, SYNC_ERRORS,
                     UNSYNCED):
            t.check(name in m0, "%s is in /metrics" % name)
        state["m0"] = m0
        sink = t.rtp_sink("ok")
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["ok"],
                    rtp_sink_port=sink.port).start()
        res_id, t0 = construct(c, "ok", "short.wav", "ok")
        if not res_id:
            return
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "ok", None, "sys", cause=200,
                       answered=True, t_before=t0, t_after=time.time())
        sp.check_exit(t, "the callee got the BYE")
        sink.wait_quiet(0.4, 5)
        got = wait_value(SENT, lambda v: v >= m0[SENT] + short_frames, 3)
        t.check(got == m0[SENT] + short_frames,
                "ctid_rtp_packets_sent_total +%d" % short_frames,
                "+%s" % (got - m0[SENT]))
        t.check(sink.count() == short_frames,
                "the sink received all %d packets" % short_frames,
                "%d" % sink.count())
        m = metrics(mport)
        t.check(m.get(TRANSIENT) == 0 and m.get(FATAL) == 0,
                "no RTP send error for a callee that receives",
                "%s / %s" % (m.get(TRANSIENT), m.get(FATAL)))
        t.check(m.get(RTCP) == 0, "no RTCP send error", "%s" % m.get(RTCP))

    t.run("A. a normal call: no send error", a_normal_call)

    def b_closed_port():
        closed = free_port("udp")   # nothing listens there
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["closed"],
                    rtp_sink_port=closed).start()
        m0 = metrics(mport)
        mark = len(d.log_text())
        res_id, t0 = construct(c, "closed", "long.wav", "closed")
        if not res_id:
            return
        # mid-prompt: the errors are there before the stream comes back
        during = wait_value(TRANSIENT, lambda v: v > m0[TRANSIENT], 2.5)
        m_during = metrics(mport)
        t.check(during is not None and during > m0[TRANSIENT],
                "transient send errors counted while the prompt plays",
                "%s -> %s" % (m0[TRANSIENT], during))
        r = c.call("ext.notify_call.exists", {"res_id": res_id})
        check_result(t, r, True, "the call was still playing then")
        t.check(m_during.get(SENT) == m0[SENT],
                "(packets sent are counted only when the stream comes back)",
                "%s -> %s" % (m0[SENT], m_during.get(SENT)))
        ev = c.wait_event(res_id, timeout=30)
        t1 = time.time()
        # unchanged behaviour: the prompt plays on to the end, error null
        check_released(t, ev, res_id, "closed", None, "sys", cause=200,
                       answered=True, t_before=t0, t_after=t1)
        t.check(t1 - t0 >= long_frames * 0.020 - 0.2,
                "the call lasted the whole prompt (%.2f s)" % (t1 - t0))
        sp.check_exit(t, "the callee got the BYE")
        sent = wait_value(SENT, lambda v: v >= m0[SENT] + long_frames, 3)
        t.check(sent == m0[SENT] + long_frames,
                "all %d packets paced out" % long_frames,
                "+%s" % (sent - m0[SENT]))
        m = metrics(mport)
        lost = m.get(TRANSIENT, 0) - m0[TRANSIENT]
        # ICMP answers one packet and fails the next send: about half
        t.check(long_frames // 4 <= lost <= long_frames,
                "ctid_rtp_send_errors_total{kind=\"transient\"} +%d: between "
                "a quarter of the %d packets and all of them"
                % (lost, long_frames))
        t.check(m.get(FATAL) == m0[FATAL], "no fatal send error",
                "%s -> %s" % (m0[FATAL], m.get(FATAL)))
        t.check("send: Connection refused; packet lost" in d.log_text()[mark:],
                "the fault was real: ctid logged ECONNREFUSED")

    t.run("B. RTP to a port where nothing listens: transient errors", b_closed_port)

    def c_unroutable():
        sp = t.sipp("uas_answer_rtp_host.xml", port=ports["unroutable"],
                    rtp_sink_port=4000,
                    extra=["-key", "rtp_host", "192.0.2.1"]).start()
        m0 = metrics(mport)
        res_id, t0 = construct(c, "unroutable", "short.wav", "unroutable")
        if not res_id:
            return
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "unroutable", "play error", "sys",
                       cause=200, answered=True, t_before=t0,
                       t_after=time.time())
        sp.check_exit(t, "the callee got the BYE")
        m = metrics(mport)
        t.check(m.get(FATAL) == m0[FATAL] + 1,
                "ctid_rtp_send_errors_total{kind=\"fatal\"} +1",
                "%s -> %s" % (m0[FATAL], m.get(FATAL)))
        t.check(m.get(TRANSIENT) == m0[TRANSIENT], "no transient error",
                "%s -> %s" % (m0[TRANSIENT], m.get(TRANSIENT)))

    t.run("C. RTP cannot be sent at all: a fatal error", c_unroutable)

    def d_journal():
        m0 = state.get("m0") or {}
        m = metrics(mport)
        syncs = m.get(SYNC_COUNT, 0) - m0.get(SYNC_COUNT, 0)
        t.check(syncs >= 3, "the journal synced the three calls' events "
                "(%d syncs)" % syncs)
        t.check(0 < m.get(SYNC_SUM, 0) < 60 * m.get(SYNC_COUNT, 0),
                "ctid_journal_sync_seconds_sum is a sane duration",
                "%s over %s" % (m.get(SYNC_SUM), m.get(SYNC_COUNT)))
        t.check(m.get(SYNC_ERRORS) == 0, "no fdatasync failed")
        t.check(m.get(UNSYNCED) == 0, "nothing unsynced after the group commit",
                "%s" % m.get(UNSYNCED))
        # an event nobody receives: its creator is gone, nobody subscribed
        sink = t.rtp_sink("orphan")
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["orphan"],
                    rtp_sink_port=sink.port).start()
        c2 = t.client(d.listen_port, "gone")
        res_id, _ = construct(c2, "orphan", "long.wav", "orphan")
        if not res_id:
            return
        # The client dies mid-call: a reset, not an orderly close (ctid
        # keeps a half-closed connection open for its calls' events).
        local = "%s:%d" % c2.sock.getsockname()[:2]
        c2.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                           struct.pack("ii", 1, 0))
        c2.sock.shutdown(socket.SHUT_RD)   # ends the reader, sends nothing
        c2._thread.join(2)
        c2.sock.close()                    # RST
        t.check(d.wait_log("%s: connection closed" % local, 2),
                "ctid closed the reset connection while the call plays")
        before = metrics(mport)
        sp.check_exit(t, "the callee got the BYE")  # the call is over
        journaled = wait_value(JOURNALED,
                               lambda v: v >= before[JOURNALED] + 1, 5)
        t.check(journaled == before[JOURNALED] + 1,
                "its on_released was journaled")
        m1 = metrics(mport)
        t.check(m1.get(UNSYNCED) == 0,
                "ctid_journal_unsynced_events 0: an event nobody receives "
                "is on disk all the same, no reply needed",
                "%s" % m1.get(UNSYNCED))
        t.check(m1.get(SYNC_COUNT) >= before.get(SYNC_COUNT) + 1,
                "its fdatasync was counted",
                "%s -> %s" % (before.get(SYNC_COUNT), m1.get(SYNC_COUNT)))

    t.run("D. journal lag: syncs timed, unsynced events", d_journal)

    t.check(d.alive(), "ctid is alive")
