#!/usr/bin/env python3
"""ctid integration test: the callee changes the session inside the call
(docs/reliability.md, "Hardening (issue 10)", "In-dialog requests and SDP").

A  hold by re-INVITE a=sendonly 1 s in, resume 1.5 s later: both get 200
   with ctid's SDP (recvonly, then sendrecv; same port and codec, the o=
   session id kept and its version incremented); no RTP arrives during the
   hold; after resume the callee hears the prompt where it now is, byte for
   byte, and the call ends on schedule with error null, sys, 200.
B  the same with RFC 2543 hold: c=0.0.0.0 (a=sendrecv) pauses sending too.
C  hold with a=inactive: answered a=inactive, paused.
D  answers ctid must not stream to: m=audio 70000, m=audio 0,
   c=224.0.0.1, c=255.255.255.255, c=0.0.0.0: BYE, "dial failed", sys,
   cause 488, no RTP, the precise reason logged.
E  the callee holds, then hangs up: its BYE gets 200 and the event says
   error null, usr, 200 (before, the hold had torn the dialog down and the
   BYE got 481).
"""
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (FRAME, Test, check_construct_result,  # noqa: E402
                      check_released, check_rtp_stream, expected_payload,
                      make_prompt, gateway, free_port, diff_bytes)


def sdp_of(msg):
    """(o= session, o= version, m= port, formats, direction) of a message's
    SDP body, or None."""
    o = re.search(r"^o=\S+ (\d+) (\d+) ", msg, re.M)
    m = re.search(r"^m=audio (\d+) RTP/AVP ([0-9 ]+)$", msg, re.M)
    d = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)$", msg, re.M)
    if not (o and m):
        return None
    return (int(o.group(1)), int(o.group(2)), int(m.group(1)),
            m.group(2).split(), d.group(1) if d else "sendrecv")


t = Test("reinvite")
with t:
    prompt = t.path("prompts", "five.wav")
    make_prompt(prompt, 5.0)
    ports = {k: free_port("udp") for k in
             ("sendonly", "zero", "inactive", "bad", "bye")}
    d = t.ctid(gateways=[gateway("gw_" + k, p) for k, p in ports.items()])
    d.start()
    c = t.client(d.listen_port, "app")
    want = expected_payload(prompt, 8, 0)

    def construct(port, ud, play="five.wav"):
        reply = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(port), "play_content": play, "play_repeat": 0,
            "user_data": ud})
        res_id, _ = check_construct_result(t, reply, d.node_id, d.uri(port),
                                           ud, label=ud)
        return res_id

    def hold_resume(key, hold_c, hold_dir, answer_dir):
        def run():
            sink = t.rtp_sink(key)
            sp = t.sipp("uas_reinvite_hold.xml", port=ports[key],
                        rtp_sink_port=sink.port, codec=8,
                        extra=["-key", "hold_c", hold_c,
                               "-key", "hold_dir", hold_dir]).start()
            res_id = construct(ports[key], key)
            ev = c.wait_event(res_id, timeout=30) if res_id else None
            check_released(t, ev, res_id, key, None, "sys", cause=200,
                           answered=True, label="%s: full play" % key)
            if ev is not None:
                p = ev["params"]
                dur = p["end_time"] - p["answer_time"]
                t.check(4 <= dur <= 8, "%s: the call ends on schedule "
                        "(%d s answered for a 5 s prompt and a 1.5 s hold)"
                        % (key, dur))
            sp.check_exit(t, "%s: re-INVITEs answered 200, BYE at the end"
                          % key)
            sink.wait_quiet()
            # ctid's SDP: the offer, then its answers to hold and resume
            offer = [m for dd, m in sp.messages()
                     if dd == "recv" and m.startswith("INVITE ")]
            ok1 = sp.responses(200, "1 INVITE")
            ok2 = sp.responses(200, "2 INVITE")
            if t.check(offer and ok1 and ok2, "%s: offer and both 200s "
                       "seen" % key):
                o0, o1, o2 = sdp_of(offer[0]), sdp_of(ok1[0]), sdp_of(ok2[0])
                t.check(o1 is not None and o2 is not None,
                        "%s: both 200s carry SDP" % key)
                if o0 and o1 and o2:
                    t.check_eq(o1[4], answer_dir, "%s: hold answered %s"
                               % (key, answer_dir))
                    t.check_eq(o2[4], "sendrecv",
                               "%s: resume answered sendrecv" % key)
                    t.check(o1[2] == o2[2] == o0[2], "%s: same RTP port in "
                            "every SDP" % key, "%r %r %r" % (o0, o1, o2))
                    t.check(o1[3] == o2[3] == ["8"], "%s: the answers keep "
                            "PCMA only" % key, "%r %r" % (o1[3], o2[3]))
                    t.check(o0[0] == o1[0] == o2[0] and
                            o0[1] < o1[1] < o2[1], "%s: o= session kept, "
                            "version incremented" % key,
                            "%r %r %r" % (o0[:2], o1[:2], o2[:2]))
            pkts = sink.snapshot()
            if not t.check(len(pkts) > 50, "%s: RTP received" % key,
                           "%d packets" % len(pkts)):
                return
            gaps = [i for i in range(1, len(pkts))
                    if pkts[i].at - pkts[i - 1].at > 0.5]
            if not t.check(len(gaps) == 1, "%s: exactly one silence (the "
                           "hold) in the stream" % key,
                           "gaps at %s" % [(i, round(pkts[i].at -
                                                     pkts[i - 1].at, 2))
                                           for i in gaps]):
                return
            g = gaps[0]
            before, after = pkts[:g], pkts[g:]
            t.check(after[0].at - before[-1].at >= 1.0, "%s: no RTP for "
                    "at least 1 s during the hold (%.2f s)"
                    % (key, after[0].at - before[-1].at))
            check_rtp_stream(t, before, want, 8, label="%s: before hold"
                             % key, full=False)
            # the prompt's clock ran on: the timestamp says where
            off = ((after[0].ts - before[0].ts) & 0xFFFFFFFF) // FRAME
            t.check(off * FRAME > len(before) * FRAME + 8000 * 1.0,
                    "%s: the timestamp jumped over the hold" % key,
                    "frame %d after %d frames" % (off, len(before)))
            t.check_eq(after[0].seq, (before[-1].seq + 1) & 0xFFFF,
                       "%s: no sequence number spent during the hold" % key)
            t.check(after[0].ssrc == before[0].ssrc,
                    "%s: same SSRC after resume" % key)
            check_rtp_stream(t, after, None, 8, label="%s: after resume"
                             % key)
            got = b"".join(p.payload for p in after)
            exp = want[off * FRAME:]
            t.check(got == exp, "%s: after resume, the prompt from frame %d "
                    "to its end, byte for byte (%d bytes)"
                    % (key, off, len(got)), diff_bytes(got, exp))
            log = d.log_text()
            t.check(re.search(r"%s: hold \(re-INVITE" % re.escape(res_id),
                              log) is not None,
                    "%s: hold logged with res_id" % key)
            t.check(re.search(r"%s: resume \(re-INVITE" % re.escape(res_id),
                              log) is not None,
                    "%s: resume logged with res_id" % key)
            sink.close()
        return run

    t.run("A: hold by a=sendonly, resume",
          hold_resume("sendonly", "127.0.0.1", "sendonly", "recvonly"))
    t.run("B: hold by c=0.0.0.0, resume",
          hold_resume("zero", "0.0.0.0", "sendrecv", "sendrecv"))
    t.run("C: hold by a=inactive, resume",
          hold_resume("inactive", "127.0.0.1", "inactive", "inactive"))

    def bad_answers():
        # old behaviour: port 70000 was truncated to 4464; listen there too
        trap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            trap.bind(("127.0.0.1", 70000 & 0xFFFF))
        except OSError:
            trap = None
        cases = [("port70000", "127.0.0.1", "70000", "above 65535"),
                 ("port0", "127.0.0.1", "0", "port 0"),
                 ("multicast", "224.0.0.1", None, "multicast"),
                 ("broadcast", "255.255.255.255", None, "broadcast"),
                 ("unspecified", "0.0.0.0", None, "unspecified")]
        sink = t.rtp_sink("bad")
        for key, addr, port, reason in cases:
            sp = t.sipp("uas_answer_bad_sdp.xml", port=ports["bad"],
                        extra=["-key", "bad_c", addr, "-key", "bad_port",
                               port or str(sink.port)]).start()
            res_id = construct(ports["bad"], key)
            ev = c.wait_event(res_id, timeout=20) if res_id else None
            check_released(t, ev, res_id, key, "dial failed", "sys",
                           cause=488, label="D: %s" % key)
            sp.check_exit(t, "D: %s: BYE for the unusable answer" % key)
            t.check_eq(len(sp.received("BYE")), 1, "D: %s: one BYE" % key)
            log = d.log_text()
            line = [ln for ln in log.splitlines()
                    if res_id and res_id in ln and "answer refused" in ln]
            t.check(line and reason in line[-1], "D: %s: the reason (%s) "
                    "logged with res_id" % (key, reason), "%r" % line)
            t.check(not re.search(r"%s: answered; playing" %
                                  re.escape(res_id or "?"), log),
                    "D: %s: no prompt started" % key)
        time.sleep(0.5)
        t.check_eq(sink.count(), 0, "D: no RTP at the callee's port")
        if trap is not None:
            trap.settimeout(0.2)
            try:
                trap.recvfrom(2048)
                t.fail("D: RTP arrived at port 4464 (70000 truncated)")
            except socket.timeout:
                pass
            trap.close()
        sink.close()
    t.run("D: answers ctid must not stream to", bad_answers)

    def hold_then_bye():
        sink = t.rtp_sink("bye")
        sp = t.sipp("uas_hold_then_bye.xml", port=ports["bye"],
                    rtp_sink_port=sink.port, codec=8).start()
        res_id = construct(ports["bye"], "bye")
        ev = c.wait_event(res_id, timeout=30) if res_id else None
        check_released(t, ev, res_id, "bye", None, "usr", cause=200,
                       answered=True, label="E: callee hung up on hold")
        sp.check_exit(t, "E: the callee's BYE after the hold answered 200")
        if ev is not None:
            p = ev["params"]
            t.check(p["end_time"] - p["answer_time"] <= 3,
                    "E: released at the callee's BYE, not at the prompt's "
                    "end")
        sink.close()
    t.run("E: hold, then the callee hangs up", hold_then_bye)
    c.close()
