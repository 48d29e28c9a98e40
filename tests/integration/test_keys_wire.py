#!/usr/bin/env python3
"""ctid integration test: issue 14's SIP and media side of keys, with real
peers (sipp as the callee, a Python RTP sender on loopback): the wire
details test_keys.py (the end-to-end keys test) does not look at.

A  construct with keys {max 32, stop_play false, wait_seconds 2}, so the
   call keeps collecting through the prompt and 2 s after it: the INVITE
   offers telephone-event 101 (sipp checks it), a 183 with SDP is logged
   as early media, the callee answers with telephone-event as payload
   type 96; during the prompt
   * the callee's INFOs: dtmf-relay Signal=1 and application/dtmf 11 are
     answered 200 and logged as keys 1 and # (info); text/plain 415;
     Signal=x 400; no body 200 (sipp checks every answer);
   * then RFC 4733 packets of PT 96 sent from the callee's RTP port (key
     1: start, two updates, three end packets; key 9) count once each;
     PCMA packets sent at the same port never reach ctid (the kernel
     filter: /proc/net/udp counts them as drops, nothing queued);
   each key is logged once as "RES_ID: key K" (src/call_keys.c) and
   on_released's keys lists them in order, "1#19"; no key came in the
   2 s after the prompt, so ctid hangs up (BYE, sys 200).
B  a call without keys: no telephone-event in the offer; the same RFC
   4733 packets are all dropped in the kernel, no key is logged, and
   on_released has no keys.
"""
import os
import re
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, HOST, check_released, construct, make_prompt,  # noqa: E402
                      gateway, free_port)

PROMPT_SECONDS = 4.0


def udp_row(port):
    """(rx_queue, drops) of the local UDP port from /proc/net/udp, or
    None."""
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            p = line.split()
            if int(p[1].split(":")[1], 16) == port:
                return int(p[4].split(":")[1], 16), int(p[12])
    return None


def rtp(pt, seq, ts, payload, marker=0, ssrc=0x5eed):
    return struct.pack("!BBHII", 0x80, (marker << 7) | pt, seq, ts,
                       ssrc) + payload


def press(sock, dest, pt, seq, ts, event):
    """One key press: start (marker), two updates, three end packets."""
    for i, (end, dur) in enumerate([(0, 160), (0, 320), (0, 480),
                                    (1, 640), (1, 640), (1, 640)]):
        body = struct.pack("!BBH", event, (end << 7) | 10, dur)
        sock.sendto(rtp(pt, seq + i, ts, body, marker=int(i == 0)), dest)
        time.sleep(0.005)
    return seq + 6


def offered(sp, text):
    return any(text in m for d_, m in sp.messages()
               if d_ == "recv" and m.startswith("INVITE"))


t = Test("keys_wire")
with t:
    make_prompt(t.path("prompts", "notice.wav"), PROMPT_SECONDS)
    ports = {k: free_port("udp") for k in ("A", "B")}

    d = t.ctid(name="ctid-keys",
               gateways=[gateway("gwA", ports["A"])]).start()
    c = t.client(d.listen_port, "client")

    def call_a():
        sink = t.rtp_sink("A")
        sp = t.sipp("uas_keys_info.xml", port=ports["A"],
                    rtp_sink_port=sink.port, codec=8).start()
        res_id = construct(t, c, d, d.uri(ports["A"]), "notice.wav",
                           play_repeat=0, user_data="keys-a",
                           keys={"max": 32, "stop_play": False,
                                 "wait_seconds": 2})
        if res_id is None or not t.check(sink.wait_packets(1, 15),
                                         "A: RTP arrives"):
            return
        # the INFO keys first, so the order of all four is known
        t.check(d.wait_log("%s: key # (info)" % res_id, 10),
                "A: the INFO keys came")
        ctid_rtp = sink.snapshot()[0].src
        before = udp_row(ctid_rtp[1])
        t.check(before is not None, "A: ctid's RTP port in /proc/net/udp")
        # from the port the answer named: the stream is connected to it
        seq = press(sink.sock, ctid_rtp, 96, 100, 8000, 1)
        for i in range(20):  # the callee's audio: never read by ctid
            sink.sock.sendto(rtp(8, seq + i, 9000 + 160 * i, b"\xd5" * 160),
                             ctid_rtp)
        seq = press(sink.sock, ctid_rtp, 96, seq + 20, 16000, 9)
        t.check(d.wait_log("%s: key 9\n" % res_id, 5),
                "A: key 9 (RFC 4733) heard")
        # The media thread polls the socket about every 50 ms: the last
        # redundant end packets may wait for the next poll, not longer.
        deadline = time.monotonic() + 3
        after = udp_row(ctid_rtp[1])
        while after and after[0] != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
            after = udp_row(ctid_rtp[1])
        if before and after:
            t.check(after[1] - before[1] >= 20,
                    "A: the 20 PCMA packets dropped in the kernel",
                    "drops %d -> %d" % (before[1], after[1]))
            t.check_eq(after[0], 0, "A: nothing left queued on ctid's RTP port "
                       "(read by the next poll)")
        ev = c.wait_event(res_id, timeout=PROMPT_SECONDS + 30)
        check_released(t, ev, res_id, "keys-a", None, "sys", cause=200,
                       answered=True, label="A")
        sp.check_exit(t, "A: sipp saw every INFO answered as expected and "
                      "ctid's BYE")
        t.check_eq((ev or {}).get("params", {}).get("keys"), "1#19",
                   "A: on_released keys: INFO 1, #, then RFC 4733 1, 9")
        log = d.log_text()
        heard = re.findall(r"%s: key (.)$" % re.escape(res_id), log, re.M)
        t.check_eq(heard, ["1", "#", "1", "9"],
                   "A: each key logged once, in order (RFC 4733 key 1's "
                   "three end packets count once)")
        t.check_eq(log.count("%s: key 1 (info)" % res_id), 1,
                   "A: INFO dtmf-relay Signal=1: key 1")
        t.check_eq(log.count("%s: key # (info)" % res_id), 1,
                   "A: INFO application/dtmf 11: key #")
        t.check("183 Session Progress (with SDP: early media)" in log,
                "A: the 183 with SDP seen as early media")
        t.check("no telephone-event" not in log
                and "cannot hear keys" not in log,
                "A: the stream listens for the answer's payload type 96")
    t.run("A: keys by INFO and RFC 4733", call_a)

    d2 = t.ctid(name="ctid-plain",
                gateways=[gateway("gwB", ports["B"])]).start()
    c2 = t.client(d2.listen_port, "client2")

    def call_b():
        sink = t.rtp_sink("B")
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["B"],
                    rtp_sink_port=sink.port, codec=8).start()
        res_id = construct(t, c2, d2, d2.uri(ports["B"]), "notice.wav",
                           play_repeat=0, user_data="keys-b")
        if res_id is None or not t.check(sink.wait_packets(1, 15),
                                         "B: RTP arrives"):
            return
        t.check(not offered(sp, "telephone-event"),
                "B: no telephone-event in the offer of a call without keys")
        ctid_rtp = sink.snapshot()[0].src
        before = udp_row(ctid_rtp[1])
        seq = press(sink.sock, ctid_rtp, 101, 100, 8000, 1)
        seq = press(sink.sock, ctid_rtp, 96, seq, 16000, 2)
        time.sleep(0.3)
        after = udp_row(ctid_rtp[1])
        if t.check(before is not None and after is not None,
                   "B: ctid's RTP port in /proc/net/udp"):
            t.check(after[1] - before[1] >= 12,
                    "B: every packet dropped in the kernel",
                    "drops %d -> %d" % (before[1], after[1]))
            t.check_eq(after[0], 0, "B: nothing queued")
        ev = c2.wait_event(res_id, timeout=PROMPT_SECONDS + 30)
        check_released(t, ev, res_id, "keys-b", None, "sys", cause=200,
                       answered=True, label="B")
        sp.check_exit(t, "B: sipp saw ctid's BYE")
        t.check("keys" not in (ev or {}).get("params", {}),
                "B: on_released has no keys")
        log = d2.log_text()
        t.check("%s: key" % res_id not in log,
                "B: no key, the stream never listened")
        t.check("early media" not in log, "B: a 180 without SDP is no early "
                "media")
    t.run("B: a call without keys never reads", call_b)
