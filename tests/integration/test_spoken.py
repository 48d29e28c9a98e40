#!/usr/bin/env python3
"""ctid integration test: spoken play_content items (contract §5, types 1-5
and 10).

The zh prompt pack the build made (build/prompts, next to the ctid binary;
made here with conf/prompts/make-prompt-pack.sh when absent) is copied into
the test's prompt_dir with the 3 low bits of every sample cleared, so sox's
rounding G.711 encoder and ctid's truncating one give the same bytes (see
make_prompt).

A  [["4815", 1]], PCMA, play_repeat 0: the RTP payload is sox's A-law of
   zh/digit_4, digit_8, digit_1, digit_5, each padded with 0xD5 to 20 ms
   frames, concatenated, byte for byte.
B  a file, a type 1 item and a type < 0 item, play_repeat 1: the file's
   frames then the digits', twice; the skipped item adds nothing.
C  invalid spoken text (2023-02-29 as type 4, 99:99 as type 4, a letter in
   digits, lang=fr; type 10 text too long, with a control character, or in
   lang=fr) is -32602 naming the item, and nothing is dialled.
D  type 10 "lang=en", play_repeat 1: the call is answered and plays; the
   packets are twice the frames ctid logged for the synthesis, the two
   plays are identical, and the frame count and the audio itself agree
   with the espeak-ng command line's WAV of the same text and voice
   converted to 8 kHz by sox (within a few frames; correlation > 0.8).
E  the same text again: no new synthesis (no log line) and the payload is
   byte for byte that of D's first play.
F  type 10 Mandarin (the default language, voice cmn): plays, packets =
   logged frames.
"""
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, zh_pack_copy, check_construct_result, check_released,  # noqa: E402
                      check_one_stream, make_prompt, gateway, read_wav,
                      g711_of, alaw_encode, alaw_decode, best_correlation,
                      sox, free_port, FRAME)


t = Test("spoken")
with t:
    zh = zh_pack_copy(t)
    t.check(len(os.listdir(zh)) >= 30, "the zh pack has its 30 recordings",
            "%d files" % len(os.listdir(zh)))
    notice = make_prompt(t.path("prompts", "notice.wav"), 0.47)

    def digit(c):
        return os.path.join(zh, "digit_%s.wav" % c)
    samples = read_wav(digit(4))
    t.check(g711_of(digit(4))[:len(samples)] == bytes(alaw_encode(s) for s in samples),
            "harness: sox A-law equals reference G.711 A-law for digit_4")
    four815 = b"".join(g711_of(digit(c)) for c in "4815")

    ports = {k: free_port("udp") for k in ("A", "B", "C", "D", "E", "F")}
    d = t.ctid(gateways=[gateway("gw" + k, p) for k, p in ports.items()])
    d.start()
    c = t.client(d.listen_port, "app")

    def play(port, play_content, repeat, expected, label):
        sink = t.rtp_sink(label)
        sp = t.sipp("uas_answer_wait_bye.xml", port=port, rtp_sink_port=sink.port,
                    codec=8).start()
        to_uri = d.uri(port)
        reply = c.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": play_content, "play_repeat": repeat})
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, None)
        if res_id is None:
            return
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, None, None, "sys", cause=200, answered=True)
        sp.check_exit(t, "sipp received the daemon's BYE")
        sink.wait_quiet(0.5, 5)
        pkts = check_one_stream(t, sink, expected, 8, label,
                                rtp_range=(d.rtp_lo, d.rtp_hi))
        return b"".join(p.payload for p in pkts) if pkts is not None else None

    t.run("A: type 1 \"4815\"", play, ports["A"], [["4815", 1]], 0, four815,
          "RTP = digit_4 digit_8 digit_1 digit_5")
    t.run("B: file, type 1, type < 0", play, ports["B"],
          [["notice.wav"], ["4815", 1, "lang=zh"], ["2023-02-29", -1, "lang=fr"]],
          1, (g711_of(notice) + four815) * 2, "RTP = (notice + 4815) x2")

    def refused():
        # a callee that must see no INVITE
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["C"]).start()
        events = len(c.events())
        base = {"to_uri": d.uri(ports["C"])}
        cases = [
            ([["notice.wav"], ["2023-02-29", 4]],
             "invalid params: play_content[1]: type 4: day 29 out of range for 2023-02"),
            ([["99:99", 4]], "invalid params: play_content[0]: type 4: hour 99 out of range"),
            ([["48a5", 1]],
             "invalid params: play_content[0]: type 1: 'a' is not a digit, * or #"),
            ([["12", 1, "lang=fr"]], "invalid params: play_content[0]: options: "
             "unknown language \"fr\" (zh or en)"),
            ([["", 3]], "invalid params: play_content[0]: content must be a "
             "non-empty string"),
            ([["1", 8]], "invalid params: play_content[0]: type 8 is not supported"),
            ([["notice.wav"], ["x" * 1001, 10]],
             "invalid params: play_content[1]: type 10: text longer than 1000 bytes"),
            ([["hello\nworld", 10, "lang=en"]],
             "invalid params: play_content[0]: type 10: control character at byte 5"),
            ([["bonjour", 10, "lang=fr"]], "invalid params: play_content[0]: "
             "options: unknown language \"fr\" (zh or en)"),
        ]
        for content, message in cases:
            r = c.call("ext.notify_call.construct", dict(base, play_content=content))
            err = (r or {}).get("error") or {}
            t.check(err.get("code") == -32602 and err.get("message") == message,
                    "%r refused: %s" % (content, message), repr(r))
        time.sleep(0.5)
        t.check(len(c.events()) == events, "no event for refused constructs",
                repr(c.events()[events:]))
        t.check(not sp.received("INVITE"), "nothing was dialled")
    t.run("C: invalid spoken items refused at construct", refused)

    TEXT = "Your parcel has arrived. Please collect it at the front desk."
    TTS_RE = r"tts: (\S+), (\d+) bytes of text: (\d+) frames"

    def tts_lines():
        return re.findall(TTS_RE, d.log_text())

    def cli_8k(voice, text, name):
        """The espeak-ng command line's WAV of text, converted by sox to 8 kHz
        16-bit mono: an independent reference for ctid's clip."""
        wav, wav8 = t.path(name + ".wav"), t.path(name + "-8k.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-w", wav, text], check=True)
        sox("-D", wav, "-r", 8000, "-b", 16, "-c", 1, wav8)
        return read_wav(wav8)

    first = {}

    def tts_en():
        before = len(tts_lines())
        got = play(ports["D"], [[TEXT, 10, "lang=en"]], 1, None,
                   "RTP of type 10 (en) x2")
        lines = tts_lines()[before:]
        if not t.check(len(lines) == 1 and lines[0][:2] == ("en", str(len(TEXT))),
                       "ctid logged one synthesis with voice en", repr(lines)):
            return
        frames = int(lines[0][2])
        if got is None:
            return
        t.check_eq(len(got), 2 * frames * FRAME, "payload bytes = 2 plays x %d "
                   "logged frames x 160" % frames)
        half = got[:len(got) // 2]
        t.check(half == got[len(got) // 2:], "both plays are identical byte for byte")
        first["en"] = half
        ref = cli_8k("en", TEXT, "cli-en")
        ref_frames = (len(ref) + FRAME - 1) // FRAME
        t.check(abs(ref_frames - frames) <= 5, "frames %d within 5 of the espeak-ng "
                "command line's %d (resamplers differ)" % (frames, ref_frames))
        pcm = [alaw_decode(b) for b in half]
        n = min(len(pcm), len(ref), 16000)
        corr, lag = best_correlation(pcm[:n], ref[:n], max_lag=8)
        t.check(corr > 0.8, "audio correlates with the command line's "
                "(%.3f at lag %d)" % (corr, lag))
    t.run("D: type 10 lang=en, play_repeat 1", tts_en)

    def tts_cached():
        before = len(tts_lines())
        got = play(ports["E"], [[TEXT, 10, "lang=en"]], 0, first.get("en"),
                   "RTP of type 10 (en) again = D's first play")
        t.check(got is not None and len(tts_lines()) == before,
                "no new synthesis: the clip came from the cache",
                repr(tts_lines()[before:]))
    t.run("E: the same text again", tts_cached)

    def tts_zh():
        before = len(tts_lines())
        got = play(ports["F"], [["您的包裹已到", 10]], 0, None, "RTP of type 10 (zh)")
        lines = tts_lines()[before:]
        if t.check(len(lines) == 1 and lines[0][:2] == ("cmn", "18"),
                   "ctid logged one synthesis with voice cmn", repr(lines)) and got:
            t.check_eq(len(got), int(lines[0][2]) * FRAME,
                       "payload bytes = %s logged frames x 160" % lines[0][2])
    t.run("F: type 10 Mandarin", tts_zh)

    t.section("shutdown")
    rc = d.stop()
    t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
