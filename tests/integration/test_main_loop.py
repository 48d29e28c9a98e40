#!/usr/bin/env python3
"""ctid integration test: nothing slow on the main loop (issue 10, bug 7).

Text to speech, decoding and resampling run on worker threads, after the
cheap checks, and the construct reply follows when the call is placed:

* while one construct speaks 4 texts of 1000 bytes, another decodes and
  resamples a 200 s 48 kHz stereo WAV and a third names a sparse 2 GB WAV,
  pings on another connection keep being answered within a generous bound
  (the old daemon stood still for seconds); the sparse file is refused from
  its header (-32602 naming max_prompt_seconds) at once; the other two
  calls are placed and stream RTP;
* a construct refused for capacity (max_calls 1, the one slot held by a
  construct whose speech is still loading) or for the call rate gets its
  503 at once, and its texts are never synthesised;
* a client that disconnects while its construct's speech loads: no call is
  placed (no INVITE) and the capacity slot is free again;
* SIGTERM while a construct's speech loads: the construct gets 503
  "shutting down" and the daemon exits cleanly;
* max_tts_bytes refuses a construct whose type 10 texts are too long, with
  -32602, before any synthesis.

Every bound here is loose (a shared 2-core VM, sanitizer builds): the old
daemon missed them by seconds.
"""
import json
import os
import random
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      make_prompt, gateway, free_port, _short, check_result,
                      request_half_closed)

PING_MAX = 0.4      # s: one ping's round trip while the workers are busy
QUICK = 1.5         # s: a refusal that needs no prompt work
WORDS = ("parcel delivery window morning evening address number street "
         "order confirm thank you please call again tomorrow").split()


def texts(seed, n, size=1000):
    """n different English texts of size bytes (never cached before)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        s = "Notice %s %d. " % (seed, i)
        while len(s) < size:
            w = rnd.choice(WORDS)
            s += w + (" %d " % rnd.randint(1, 999) if rnd.random() < 0.2 else " ")
        out.append(s[:size - 1] + ".")
    return out


def tts_content(seed, n):
    return [[s, 10, "lang=en"] for s in texts(seed, n)]


def write_wav(path, seconds, rate, channels, sparse=False):
    """A 16-bit PCM WAV. sparse: only the header is written and the file
    is extended with a hole, so the header claims seconds of silence."""
    data_len = int(seconds * rate) * channels * 2
    hdr = b"RIFF" + struct.pack("<I", 36 + data_len) + b"WAVE"
    hdr += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate,
                                 rate * channels * 2, channels * 2, 16)
    hdr += b"data" + struct.pack("<I", data_len)
    with open(path, "wb") as f:
        f.write(hdr)
        if sparse:
            f.truncate(len(hdr) + data_len)
        else:
            chunk = 1 << 20
            left = data_len
            while left > 0:
                n = min(chunk, left)
                f.write(os.urandom(n))   # noise: the resampler's worst case
                left -= n


class Pinger:
    """sys.ping on its own connection, over and over, recording each round
    trip, until stopped."""

    def __init__(self, t, port):
        self.c = t.client(port, "pinger")
        self.rtts = []
        self.lost = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self):
        while not self._stop.is_set():
            t0 = time.time()
            r = self.c.call("sys.ping", timeout=60)
            if r is None or r.get("result") != "pong":
                self.lost += 1
            else:
                self.rtts.append(r.at - t0)
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        self._th.join(70)
        return sorted(self.rtts)


def tts_lines(d):
    return [ln for ln in d.log_text().splitlines() if " tts: " in ln]


def construct(c, to_uri, play_content, ud):
    return c.request("ext.notify_call.construct", {
        "to_uri": to_uri, "play_content": play_content, "user_data": ud})


t = Test("main_loop")
with t:
    make_prompt(t.path("prompts", "notice.wav"), 0.5)
    write_wav(t.path("prompts", "big.wav"), 200, 48000, 2)
    write_wav(t.path("prompts", "sparse.wav"), 2 ** 31 / 16000 - 1, 8000, 1,
              sparse=True)

    def busy():
        gw = free_port("udp")
        d = t.ctid(name="busy", gateways=[gateway("gw", gw)])
        d.start()
        rtp = t.rtp_sink()
        sp = t.sipp("uas_answer_wait_bye.xml", port=gw, calls=2,
                    rtp_sink_port=rtp.port).start()
        to_uri = d.uri(gw)
        pinger = Pinger(t, d.listen_port)
        time.sleep(0.3)
        a, b, s = (t.client(d.listen_port, n) for n in ("tts", "big", "sparse"))
        t0 = time.time()
        ia = construct(a, to_uri, tts_content("busy", 4), "speech")
        ib = construct(b, to_uri, "big.wav", "big")
        i_s = construct(s, to_uri, "sparse.wav", "sparse")
        rs = s.wait_reply(i_s, 60)
        ra = a.wait_reply(ia, 120)
        rb = b.wait_reply(ib, 120)
        busy_for = time.time() - t0
        time.sleep(0.3)
        rtts = pinger.stop()
        t.log("busy for %.2f s; %d pings, median %.1f ms, max %.1f ms" % (
            busy_for, len(rtts), 1000 * rtts[len(rtts) // 2] if rtts else -1,
            1000 * rtts[-1] if rtts else -1))
        t.check(pinger.lost == 0, "every ping answered", "%d lost" % pinger.lost)
        t.check(len(rtts) >= 5, "pings kept flowing while the prompts loaded",
                "%d pings in %.1f s" % (len(rtts), busy_for))
        t.check(rtts and rtts[-1] < PING_MAX,
                "no ping took %.0f ms or more" % (1000 * PING_MAX),
                "slowest %s" % _short([round(x * 1000) for x in rtts[-5:]]))

        err = (rs or {}).get("error") or {}
        t.check(err.get("code") == -32602 and "max_prompt_seconds 600" in
                err.get("message", "") and "sparse.wav" in err.get("message", ""),
                "sparse 2 GB WAV refused from its header", _short(rs))
        t.check(rs is not None and rs.at - t0 < QUICK,
                "...at once", "%.2f s" % ((rs.at - t0) if rs else -1))

        calls = {}
        for r, ud in ((ra, "speech"), (rb, "big")):
            res_id, _ = check_construct_result(t, r, d.node_id, to_uri, ud,
                                               label="%s construct" % ud)
            if res_id:
                calls[res_id] = ud
        t.check("prompts loaded off the main loop" in d.log_text(),
                "the log says the prompts loaded off the main loop")
        # RTP from both calls, then hang them up.
        deadline = time.time() + 20
        while time.time() < deadline and len(rtp.by_source()) < len(calls):
            time.sleep(0.1)
        t.check(len(rtp.by_source()) == 2, "both calls stream RTP",
                "%d stream(s)" % len(rtp.by_source()))
        for res_id, ud in calls.items():
            c = a if ud == "speech" else b
            r = c.call("ext.notify_call.drop", {"res_id": res_id})
            check_result(t, r, True, "drop the %s call" % ud)
            check_released(t, c.wait_event(res_id, timeout=20), res_id, ud,
                           None, "sys", cause=200, answered=True,
                           label="%s event" % ud)
        sp.check_exit(t, "sipp: both calls ended with BYE")
    t.run("pings while speech, a big file and a sparse file load", busy)

    def capacity():
        gw = free_port("udp")
        d = t.ctid(name="capacity", gateways=[gateway("gw", gw)],
                   conf={"max_calls": 1})
        d.start()
        rtp = t.rtp_sink()
        sp = t.sipp("uas_answer_wait_bye.xml", port=gw, calls=2,
                    rtp_sink_port=rtp.port).start()
        to_uri = d.uri(gw)
        x, y = (t.client(d.listen_port, n) for n in "xy")

        # x takes the one slot; y, sent right after, is refused at once
        # and its texts are never spoken.
        t0 = time.time()
        ix = construct(x, to_uri, tts_content("x", 4), "x")
        time.sleep(0.05)
        t1 = time.time()
        iy = construct(y, to_uri, tts_content("y", 4), "y")
        ry = y.wait_reply(iy, 120)
        err = (ry or {}).get("error") or {}
        t.check(err.get("code") == 503 and "at capacity" in err.get("message", ""),
                "second construct refused: max_calls 1 held by the first",
                _short(ry))
        t.check(ry is not None and ry.at - t1 < QUICK, "...at once",
                "%.2f s" % ((ry.at - t1) if ry else -1))
        rx = x.wait_reply(ix, 120)
        res_x, _ = check_construct_result(t, rx, d.node_id, to_uri, "x",
                                          label="first construct")
        t.log("first construct answered after %.2f s" % (
            (rx.at - t0) if rx else -1))
        n_tts = len(tts_lines(d))
        t.check(n_tts == 4, "only the first construct's 4 texts were spoken",
                "%d tts lines" % n_tts)
        if res_x:
            # Answered (RTP flowing) first, so the drop is a BYE.
            rtp.wait_packets(1, 10)
            x.call("ext.notify_call.drop", {"res_id": res_x})
            ev = x.wait_event(res_x, timeout=20)
            t.check(ev is not None, "first call released", _short(ev))

        # z's connection is reset while its speech loads: no call, and the
        # slot is given back. (A raw socket: closing one an RpcClient
        # thread is reading does not close it at once.)
        z = socket.create_connection(("127.0.0.1", d.listen_port), timeout=30)
        z.sendall((json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": "ext.notify_call.construct",
            "params": {"to_uri": to_uri, "play_content": tts_content("z", 4),
                       "user_data": "z"}}) + "\n").encode())
        time.sleep(0.2)
        z.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        z.close()
        t.check(d.wait_log("no call placed", timeout=60, step=0.1),
                "the daemon noted the closed connection and placed no call")
        time.sleep(0.5)
        n_calls = d.log_text().count(": constructed to ")
        t.check(n_calls == 1, "no call constructed for the closed connection",
                "%d constructed" % n_calls)
        t.check(len(sp.received("INVITE")) == 1, "sipp saw one INVITE so far",
                "%d" % len(sp.received("INVITE")))
        # The slot is free again. And a client that half-closes after its
        # request (printf ... | nc) is still answered once its prompt has
        # loaded: it may be reading.
        lines = request_half_closed(d.listen_port, {
            "id": 9, "method": "ext.notify_call.construct",
            "params": {"to_uri": to_uri, "play_content": "notice.wav",
                       "play_repeat": 0, "user_data": "w"}})
        t.check(len(lines) == 2, "half-closed client got 2 lines, then EOF",
                _short(lines))
        if len(lines) == 2:
            check_construct_result(t, lines[0], d.node_id, to_uri, "w",
                                   label="construct after the reset (the slot "
                                   "is free)")
            res_w = lines[0].get("result", {}).get("res_id")
            check_released(t, lines[1], res_w, "w", None, "sys", cause=200,
                           answered=True, label="its event")
        t.check(len(sp.received("INVITE")) == 2,
                "sipp saw two INVITEs in all (x and the half-closed client)",
                "%d" % len(sp.received("INVITE")))
        sp.check_exit(t, "sipp: both calls ended with BYE")
    t.run("capacity is checked first and held while prompts load", capacity)

    def rate():
        gw = free_port("udp")
        d = t.ctid(name="rate", gateways=[gateway("gw", gw)],
                   conf={"max_call_rate": 1})
        d.start()
        sp = t.sipp("uas_answer_wait_bye.xml", port=gw).start()
        to_uri = d.uri(gw)
        c = t.client(d.listen_port, "rate")
        i1 = construct(c, to_uri, "notice.wav", "one")
        t0 = time.time()
        i2 = construct(c, to_uri, tts_content("rate", 4), "two")
        r2 = c.wait_reply(i2, 120)
        err = (r2 or {}).get("error") or {}
        t.check(err.get("code") == 503 and "per second" in err.get("message", ""),
                "second construct refused by max_call_rate", _short(r2))
        t.check(r2 is not None and r2.at - t0 < QUICK, "...at once",
                "%.2f s" % ((r2.at - t0) if r2 else -1))
        t.check(not tts_lines(d), "its texts were never spoken",
                _short(tts_lines(d)))
        r1 = c.wait_reply(i1, 10)
        res1, _ = check_construct_result(t, r1, d.node_id, to_uri, "one")
        if res1:
            check_released(t, c.wait_event(res1, timeout=30), res1, "one",
                           None, "sys", cause=200, answered=True,
                           label="the first call plays out")
        sp.check_exit(t, "sipp: the call ended with BYE")
    t.run("a construct over the call rate is refused before synthesis", rate)

    def shutdown():
        gw = free_port("udp")
        d = t.ctid(name="shutdown", gateways=[gateway("gw", gw)])
        d.start()
        c = t.client(d.listen_port, "late")
        i = construct(c, d.uri(gw), tts_content("term", 4), "late")
        time.sleep(0.3)
        t0 = time.time()
        d.proc.send_signal(15)
        r = c.wait_reply(i, 60)
        err = (r or {}).get("error") or {}
        t.check(err.get("code") == 503 and err.get("message") == "shutting down",
                "the loading construct is answered 503 shutting down", _short(r))
        code = d.stop(30)
        t.check(code == 0, "the daemon exits 0", repr(code))
        t.log("exit %.2f s after SIGTERM" % (time.time() - t0))
        t.check("constructed to" not in d.log_text(), "no call was placed")
    t.run("SIGTERM while prompts load", shutdown)

    def tts_budget():
        gw = free_port("udp")
        d = t.ctid(name="budget", gateways=[gateway("gw", gw)],
                   conf={"max_tts_bytes": 2500})
        try:
            d.start()
        except RuntimeError as e:
            t.fail("starts with max_tts_bytes", str(e)[:300])
            return
        c = t.client(d.listen_port, "budget")
        t0 = time.time()
        r = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(gw), "play_content": tts_content("budget", 3)},
            timeout=60)
        err = (r or {}).get("error") or {}
        t.check(err.get("code") == -32602 and err.get("message") ==
                "play_content: 3000 bytes of type 10 text, over max_tts_bytes "
                "2500", "3000 bytes of text refused naming max_tts_bytes",
                _short(r))
        t.check(r is not None and r.at - t0 < QUICK and not tts_lines(d),
                "...at once, nothing spoken")
    t.run("max_tts_bytes", tts_budget)
