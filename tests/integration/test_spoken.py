#!/usr/bin/env python3
"""ctid integration test: spoken play_content items (contract §5, types 1-5).

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
   digits, lang=fr) is -32602 naming the item, and nothing is dialled.
"""
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      check_rtp_stream, make_prompt, gateway, read_wav, write_wav,
                      g711_of, alaw_encode, free_port)

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "conf", "prompts", "make-prompt-pack.sh")

t = Test("spoken")
with t:
    pack = os.path.join(os.path.dirname(t.ctid_bin), "prompts", "zh")
    if not os.path.isdir(pack):
        t.log("no pack at %s: making one" % pack)
        subprocess.run([SCRIPT, t.path("pack"), "zh"], check=True)
        pack = t.path("pack", "zh")
    zh = t.path("prompts", "zh")
    os.makedirs(zh)
    for f in sorted(os.listdir(pack)):
        if f.endswith(".wav"):
            write_wav(os.path.join(zh, f),
                      [s & ~7 for s in read_wav(os.path.join(pack, f))])
    t.check(len(os.listdir(zh)) >= 30, "the zh pack has its 30 recordings",
            "%d files" % len(os.listdir(zh)))
    notice = make_prompt(t.path("prompts", "notice.wav"), 0.47)

    def digit(c):
        return os.path.join(zh, "digit_%s.wav" % c)
    samples = read_wav(digit(4))
    t.check(g711_of(digit(4))[:len(samples)] == bytes(alaw_encode(s) for s in samples),
            "harness: sox A-law equals reference G.711 A-law for digit_4")
    four815 = b"".join(g711_of(digit(c)) for c in "4815")

    ports = {k: free_port("udp") for k in ("A", "B", "C")}
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
        streams = sink.streams()
        if t.check(len(streams) == 1, "RTP: one stream", "%d streams" % len(streams)):
            check_rtp_stream(t, max(streams.values(), key=len), expected, 8, label,
                             rtp_range=(d.rtp_lo, d.rtp_hi))

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
            ([["1", 6]], "invalid params: play_content[0]: type 6 is not supported"),
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

    t.section("shutdown")
    rc = d.stop()
    t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
