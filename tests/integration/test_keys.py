#!/usr/bin/env python3
"""ctid integration test: keypress receipts end to end (issue 14), with the
real SIP and media threads.

A  baresip answers, waits 2 s and sends 1 (RFC 4733, ctrl_tcp "sndcode"):
   the prompt stops early (played_ms < the 6 s prompt, plays 0), `then`
   (a 1 kHz tone) is heard in baresip's recording after the prompt, ctid
   hangs up; on_released has keys "1" and key_time; the progress events
   ringing, answered, key 1 come before it.
B  sipp sends INFO: text/plain (415) and a dtmf-relay body naming no key
   (400) change nothing; application/dtmf-relay "Signal=5" and
   application/dtmf "7" are both keys (200): max 2 completes, BYE; keys
   "57".
C  RFC 4733 from the test (payload type 96 as the answer says): "3" with
   its three redundant end packets, the whole end sent twice more, counts
   once; "4"; then the end key "#" completes before max 3: keys "34", one
   key progress event each (3, 4, #).
D  max: keys {max: 2}: "1", "2" complete at once (no end key): keys "12".
E  in-band (keys.inband): a DTMF "9" made with sox (852 + 1477 Hz) sent as
   PCMA: keys "9".
F  with keys, the INVITE offers telephone-event; without, the SDP is as
   before (no telephone-event).
"""
import os
import re
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_released, make_prompt, gateway,  # noqa: E402
                      free_port, read_wav, alaw_encode)
from baresip import Baresip  # noqa: E402

PROGRESS = "ext.notify_call.on_progress"
DTMF_CODE = {**{str(i): i for i in range(10)}, "*": 10, "#": 11}

t = Test("keys")
with t:
    make_prompt(t.path("prompts", "long.wav"), 6.0)
    make_prompt(t.path("prompts", "thanks.wav"), 1.0, synth=("sine", "1000"))
    silence = make_prompt(t.path("silence.wav"), 30.0, synth=("sine", "440"),
                          vol=0.0)
    tone9 = make_prompt(t.path("tone9.wav"), 0.12,
                        synth=("sine", "852", "sine", "mix", "1477"), vol=0.4)
    ports = {k: free_port("udp") for k in ("B", "C", "D", "E", "F", "G")}
    phone = t.add_cleanup(Baresip(t, "phone", codecs=("PCMA",),
                                  audio_source=silence))
    gws = [gateway("gw" + k, p) for k, p in ports.items()]
    gws.append(gateway("gwphone", phone.sip_port))
    d = t.ctid(gateways=gws)
    d.start()
    c = t.client(d.listen_port, "creator")

    def construct(to_uri, params):
        p = {"to_uri": to_uri, "play_content": "long.wav", "play_repeat": 0,
             "progress": True}
        p.update(params)
        r = c.call("ext.notify_call.construct", p)
        if not t.check(r is not None and "result" in r, "construct accepted",
                       repr(r)):
            return None
        return r["result"]["res_id"]

    def progress(res_id):
        out = []
        for m in c.events(method=PROGRESS, res_id=res_id):
            p = m["params"]
            out.append(p["state"] + (p.get("key") or ""))
        return out

    def keys_of(ev):
        p = ev["params"] if ev else {}
        return p.get("keys"), p.get("played_ms"), p.get("plays")

    def sub_a():
        phone.start()
        res_id = construct("phone@127.0.0.1:%d" % phone.sip_port,
                           {"keys": {"max": 1, "then": "thanks.wav"}})
        if res_id is None:
            return
        phone.wait_event("CALL_INCOMING")
        phone.command("accept")
        t.check(phone.wait_event("CALL_ESTABLISHED") is not None,
                "A: baresip answered")
        time.sleep(2.0)
        r = phone.command("sndcode", "1")
        t.check(r is not None and r.get("ok"), "A: baresip sent 1", repr(r))
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="A")
        keys, played, plays = keys_of(ev)
        t.check_eq(keys, "1", "A: keys \"1\"")
        t.check(isinstance(ev["params"].get("key_time"), int) if ev else False,
                "A: key_time is Unix seconds")
        t.check(isinstance(played, int) and 1500 <= played < 5000,
                "A: the prompt stopped early (played_ms < 6000)", repr(played))
        t.check_eq(plays, 0, "A: no complete play")
        t.check_eq(progress(res_id), ["ringing", "answered", "key1"],
                   "A: progress ringing, answered, key 1 before on_released")
        phone.wait_event("CALL_CLOSED", timeout=10)
        rate, ch, pcm = phone.recording()
        samples = struct.unpack("<%dh" % (len(pcm) // 2), pcm)
        # the last loud second is `then`: a 1 kHz tone crosses zero about
        # 2000 times a second; the prompt's sweep averages far fewer
        loud = [i for i, s in enumerate(samples) if abs(s) > 2000]
        if t.check(loud, "A: baresip heard audio"):
            end = loud[-1]
            seg = samples[max(0, end - 6400):end]
            zc = sum(1 for a, b in zip(seg, seg[1:]) if (a < 0) != (b < 0))
            t.check(1400 <= zc <= 1800, "A: then (1 kHz) heard last, "
                    "after the prompt", "%d zero crossings in 0.8 s" % zc)
            t.check(len(samples) / 8000.0 < 5.5, "A: recording shorter than "
                    "the prompt + then", "%.2f s" % (len(samples) / 8000.0))
    t.run("A baresip presses 1", sub_a)

    def sub_b():
        sp = t.sipp("uas_info_keys.xml", port=ports["B"]).start()
        res_id = construct(d.uri(ports["B"]), {"keys": {"max": 2}})
        if res_id is None:
            return
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="B")
        t.check_eq(keys_of(ev)[0], "57", "B: INFO dtmf-relay 5, dtmf 7")
        t.check_eq(progress(res_id), ["ringing", "answered", "key5", "key7"],
                   "B: progress")
        t.check_eq(sp.wait(15), 0, "B: sipp: 415, 400, 200, 200, our BYE")
    t.run("B keys by INFO, both formats", sub_b)

    def rtp_event(sink, dest, key, seq, ts, pt=96, ends=3, resend=0):
        """One RFC 4733 event: start (marker), two updates, `ends` end
        packets, and the end packets `resend` times again."""
        code = DTMF_CODE[key]
        ssrc = 0x1234abcd
        pkts = []
        for i, dur in enumerate((160, 320, 480)):
            pkts.append((i == 0, 0, dur))
        for _ in range(ends * (1 + resend)):
            pkts.append((False, 0x80, 640))
        for marker, e, dur in pkts:
            hdr = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt,
                              seq & 0xffff, ts, ssrc)
            sink.sock.sendto(hdr + struct.pack("!BBH", code, e | 10, dur), dest)
            seq += 1
            time.sleep(0.02)
        return seq

    def start_rtp_case(port, scenario, params):
        sink = t.rtp_sink("sink" + str(port))
        sp = t.sipp(scenario, port=port, rtp_sink_port=sink.port).start()
        res_id = construct(d.uri(port), params)
        if res_id is None or not sink.wait_packets(5, 15):
            t.check(False, "ctid's RTP reached the sink")
            return None, None, None, None
        return sp, sink, res_id, sink.packets[0].src

    def sub_c():
        sp, sink, res_id, src = start_rtp_case(
            ports["C"], "uas_answer_te.xml",
            {"keys": {"max": 3, "end": "#", "wait_seconds": 10}})
        if res_id is None:
            return
        seq = rtp_event(sink, src, "3", 100, 8000, resend=2)
        seq = rtp_event(sink, src, "4", seq, 16000)
        rtp_event(sink, src, "#", seq, 24000)
        ev = c.wait_event(res_id, timeout=20)
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="C")
        t.check_eq(keys_of(ev)[0], "34", "C: redundant ends once; # ends")
        t.check_eq(progress(res_id), ["ringing", "answered", "key3", "key4",
                                      "key#"], "C: one key event each")
        t.check(keys_of(ev)[1] < 6000, "C: stopped early", repr(keys_of(ev)))
        t.check_eq(sp.wait(10), 0, "C: sipp got our BYE")
    t.run("C RFC 4733: redundant end packets, end key", sub_c)

    def sub_d():
        sp, sink, res_id, src = start_rtp_case(
            ports["D"], "uas_answer_te.xml", {"keys": {"max": 2}})
        if res_id is None:
            return
        seq = rtp_event(sink, src, "1", 1, 4000)
        rtp_event(sink, src, "2", seq, 8000)
        ev = c.wait_event(res_id, timeout=20)
        t.check_eq(keys_of(ev)[0], "12", "D: max 2 completes")
        t.check_eq(sp.wait(10), 0, "D: sipp got our BYE")
    t.run("D RFC 4733: max", sub_d)

    def sub_e():
        sp, sink, res_id, src = start_rtp_case(
            ports["E"], "uas_answer_wait_bye.xml",
            {"keys": {"inband": True}})
        if res_id is None:
            return
        pcm = list(read_wav(tone9)) + [0] * 1600
        pcm = [0] * 800 + pcm
        payload = bytes(alaw_encode(s) for s in pcm)
        for i in range(0, len(payload) - 159, 160):
            hdr = struct.pack("!BBHII", 0x80, 8, i // 160, i, 0x5678)
            sink.sock.sendto(hdr + payload[i:i + 160], src)
            time.sleep(0.02)
        ev = c.wait_event(res_id, timeout=20)
        t.check_eq(keys_of(ev)[0], "9", "E: in-band 9 heard")
        t.check_eq(sp.wait(10), 0, "E: sipp got our BYE")
    t.run("E in-band tones", sub_e)

    def sub_f():
        for label, params, want, port in (
                ("keys", {"keys": {"wait_seconds": 0}}, True, ports["F"]),
                ("none", {}, False, ports["G"])):
            sp = t.sipp("uas_busy.xml", port=port).start()
            res_id = construct(d.uri(port), params)
            c.wait_event(res_id, timeout=20)
            sp.wait(10)
            log = open(sp.msg_log, errors="replace").read()
            offers = re.findall(r"a=rtpmap:\d+ telephone-event/8000", log)
            t.check_eq(bool(offers), want, "F: %s: telephone-event offered: %s"
                       % (label, want))
    t.run("F the offer", sub_f)
