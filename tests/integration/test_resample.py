#!/usr/bin/env python3
"""ctid integration test: prompts in other rates and channel counts (§5).

"Files may be any format and rate libsndfile reads; they are converted to
8 kHz mono once and cached." A 16 kHz stereo and a 44.1 kHz stereo prompt
(1.03 s each, a 300-3000 Hz sweep, right channel at half level) are played
with play_repeat 1. The received A-law must be exactly
ceil(1.03 * 8000 / 160) * 160 * 2 bytes, both plays identical, and each play
decoded must correlate (normalized, best lag within +-8 ms) above 0.9 with
sox's own 8 kHz mono conversion. Resamplers differ, so no byte equality.
"""
import math
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      check_one_stream, make_prompt, gateway, free_port, sox,
                      read_wav, ALAW_TABLE, best_correlation, FRAME)

DUR = 1.03
REPEAT = 1
CASES = [("16 kHz stereo", "st16k.wav", 16000), ("44.1 kHz stereo", "st44k.wav", 44100)]

t = Test("resample")
with t:
    pdir = t.path("prompts")
    os.makedirs(pdir, exist_ok=True)
    refs = {}
    for label, name, rate in CASES:
        mono = make_prompt(t.path("src-%d.wav" % rate), DUR, rate=rate, channels=1)
        sox(mono, "-c", 2, os.path.join(pdir, name), "remix", "1", "1v0.5")
        ref = t.path("ref-%d.wav" % rate)
        sox("-D", os.path.join(pdir, name), "-r", 8000, "-c", 1, "-b", 16, ref)
        refs[name] = read_wav(ref)

    frames = math.ceil(DUR * 8000 / FRAME)
    want_len = frames * FRAME * (REPEAT + 1)
    ports = {name: free_port("udp") for _, name, _ in CASES}
    d = t.ctid(gateways=[gateway("gw%d" % i, p) for i, p in enumerate(ports.values())])
    d.start()
    c = t.client(d.listen_port)

    def play(label, name, rate):
        sink = t.rtp_sink()
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports[name],
                    rtp_sink_port=sink.port).start()
        to_uri = d.uri(ports[name])
        t0 = time.time()
        reply = c.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": name, "play_repeat": REPEAT,
            "user_data": label})
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, label)
        if not res_id:
            return
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, label, None, "sys", cause=200, answered=True,
                       t_before=t0, t_after=time.time())
        sp.check_exit(t, "sipp received the daemon's BYE")
        sink.wait_quiet(0.5, 5)
        # the header checks; the payload itself is compared below
        pkts = check_one_stream(t, sink, None, 8, "RTP")
        if pkts is None:
            return
        got = b"".join(p.payload for p in pkts)
        t.check(len(got) == want_len, "payload is ceil(%.2f*8000/160)*160*%d = %d bytes"
                % (DUR, REPEAT + 1, want_len), "got %d bytes" % len(got))
        half = len(got) // 2
        t.check(got[:half] == got[half:], "both plays are the same bytes")
        ref = refs[name]
        for i in range(REPEAT + 1):
            play_bytes = got[i * frames * FRAME:(i + 1) * frames * FRAME]
            pcm = [ALAW_TABLE[b] for b in play_bytes]
            corr, lag = best_correlation(pcm[:len(ref)], ref, max_lag=64)
            t.check(corr > 0.9, "play %d correlates with sox's 8 kHz mono conversion: "
                    "%.4f at lag %d samples" % (i + 1, corr, lag))
            e_got = sum(v * v for v in pcm[:len(ref)]) / max(1, len(ref))
            e_ref = sum(v * v for v in ref) / max(1, len(ref))
            ratio = 10 * math.log10(e_got / e_ref) if e_got > 0 and e_ref > 0 else -99
            t.check(abs(ratio) <= 6.0, "play %d level within 6 dB of the reference "
                    "(%.1f dB)" % (i + 1, ratio))
            tail = play_bytes[-40:]   # 8240 samples of audio, 80 of padding
            t.check(all(b in (0xD5, 0x55) for b in tail),
                    "play %d ends in padding silence" % (i + 1), tail.hex())

    for label, name, rate in CASES:
        t.run(label, play, label, name, rate)

    t.section("shutdown")
    t.check(d.alive(), "ctid still running")
    rc = d.stop()
    t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
