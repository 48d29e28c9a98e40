#!/usr/bin/env python3
"""ctid integration test: a real phone (baresip) answers, holds, resumes
(issue 10; docs/reliability.md, "A real phone (baresip)").

The phone is baresip 1.0 (tests/integration/baresip.py), driven through its
ctrl_tcp module, answering through a gateway entry of ctid's config.
What it heard is its sndfile recording: the PCM its G.711 decoder produced
from every RTP packet it accepted, in arrival order, with no jitter buffer,
PLC or resampler in between (baresip.py explains the config). So the check
is exact: the prompt's A-law (sox, as in the sipp tests: expected_payload)
decoded to 16-bit linear (audioop.alaw2lin, or ctidtest's G.711 table where
audioop is gone; the harness checks they agree) must appear sample for
sample.

A  answer and listen: ctid calls the phone with a 3 s prompt, play_repeat
   0; the phone accepts through ctrl_tcp. The event says error null,
   dropped_by sys, cause 200; the call ends with ctid's BYE; the recording
   equals the decoded prompt exactly, every sample of it, nothing else.
B  hold and resume: a 10 s prompt; 2.5 s after the call is established the
   phone puts it on hold (re-INVITE a=sendonly), 3.5 s later resumes
   (re-INVITE a=sendrecv). Both re-INVITEs get 200 with ctid's SDP (to
   the hold recvonly or inactive, to the resume one that lets ctid send)
   and the call lives on (ctid before issue 10 answered 403 and tore the
   call down); the call ends with ctid's BYE and error null, sys, 200. While on hold the phone
   discards what arrives (its local direction is sendonly), so its
   recording is: the prompt from its start up to the hold, then, from the
   resume, the prompt's continuation to its end, exact, starting where the
   prompt's timeline has got to (ctid pauses sending during hold while the
   timeline runs on; a ctid that resumed where it paused would be 3.5 s
   behind). The positions are checked with 1.5 s of slack either way: the
   phone's clock is the test's event arrival, on a shared VM.
"""
import os
import shutil
import struct
import sys
import time
import warnings

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      expected_payload, make_prompt, gateway, ALAW_TABLE, FRAME)
from baresip import Baresip  # noqa: E402

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop   # stdlib up to Python 3.12
except ImportError:
    audioop = None

A_SECONDS = 3.0
B_SECONDS = 10.0
HOLD_AFTER = 2.5      # seconds after the call is established
HOLD_FOR = 3.5
SLACK = 1.5           # seconds either way for positions in the recording
SAMPLE = 2            # bytes per 16-bit sample


def alaw_to_pcm(alaw):
    """16-bit little-endian linear PCM of A-law bytes."""
    if audioop is not None:
        return audioop.alaw2lin(alaw, 2)
    return struct.pack("<%dh" % len(alaw), *[ALAW_TABLE[b] for b in alaw])


def secs(nbytes):
    return nbytes / SAMPLE / 8000.0


def leading_frames(pcm, want):
    """How many whole 20 ms frames at the start of pcm equal want's."""
    n, fb = 0, FRAME * SAMPLE
    while (n + 1) * fb <= min(len(pcm), len(want)) and \
            pcm[n * fb:(n + 1) * fb] == want[n * fb:(n + 1) * fb]:
        n += 1
    return n


def find_sample_aligned(hay, needle):
    """Byte offset of needle in hay on a sample boundary, or -1."""
    i = hay.find(needle)
    while i >= 0 and i % SAMPLE:
        i = hay.find(needle, i + 1)
    return i


def describe(pcm, want):
    """Where the recording's frames are found in the prompt (for failure
    messages): runs of consecutive frames as 'rec 0.00-2.10 s = prompt
    0.00-2.10 s', unmatched frames counted."""
    fb = FRAME * SAMPLE
    index = {}
    for i in range(0, len(want) - fb + 1, SAMPLE):
        index.setdefault(want[i:i + fb], i)
    runs, unmatched, prev = [], 0, None
    for r in range(0, len(pcm) - fb + 1, fb):
        w = index.get(pcm[r:r + fb])
        if w is None:
            unmatched += 1
            prev = None
            continue
        if prev is not None and runs and w == prev + fb:
            runs[-1][1] = r + fb
            runs[-1][3] = w + fb
        else:
            runs.append([r, r + fb, w, w + fb])
        prev = w
    text = ", ".join("rec %.2f-%.2f s = prompt %.2f-%.2f s" % tuple(secs(x) for x in run)
                     for run in runs[:8])
    return "recording %.2f s, prompt %.2f s; %s%s; %d frames match no prompt frame" % (
        secs(len(pcm)), secs(len(want)), text or "no frame matches",
        " ..." if len(runs) > 8 else "", unmatched)


def main(t):
    if shutil.which("baresip") is None:
        t.fail("tools on PATH", "baresip missing (.ci/setup installs baresip-core)")
        return
    prompt_a = make_prompt(t.path("prompts", "phone-a.wav"), A_SECONDS)
    prompt_b = make_prompt(t.path("prompts", "phone-b.wav"), B_SECONDS)
    want_a = alaw_to_pcm(expected_payload(prompt_a, 8, 0))
    want_b = alaw_to_pcm(expected_payload(prompt_b, 8, 0))
    alaw = expected_payload(prompt_a, 8, 0)
    t.check(want_a == struct.pack("<%dh" % len(alaw), *[ALAW_TABLE[b] for b in alaw]),
            "harness: audioop.alaw2lin equals ctidtest's G.711 A-law table"
            if audioop else "harness: decoding with ctidtest's G.711 A-law table")

    # one phone per case: a failure in A leaves B a fresh phone
    phone_a = t.add_cleanup(Baresip(t, "phone-a", codecs=("PCMA",)))
    phone_b = t.add_cleanup(Baresip(t, "phone-b", codecs=("PCMA",)))
    d = t.ctid(gateways=[gateway("phone_a", phone_a.sip_port),
                         gateway("phone_b", phone_b.sip_port)])
    d.start()
    c = t.client(d.listen_port, "app")

    def ring_and_answer(phone, prompt, ud):
        """construct, the phone rings and accepts; returns (res_id,
        established event) or (None, None)."""
        phone.start()
        to_uri = d.uri(phone.sip_port, "phone")
        reply = c.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": os.path.basename(prompt),
            "play_repeat": 0, "user_data": ud}, timeout=10)
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, ud)
        if res_id is None:
            return None, None
        inc = phone.wait_event("CALL_INCOMING", timeout=30)
        if not t.check(inc is not None, "the phone rings (CALL_INCOMING)",
                       "no CALL_INCOMING within 30 s"):
            return None, None
        t.check("sip:ctid@" in str(inc.get("peeruri")),
                "the caller is ctid's default_from", str(inc.get("peeruri")))
        r = phone.command("accept")
        t.check(r is not None and r.get("ok"), "the phone accepts (ctrl_tcp accept)",
                repr(r))
        est = phone.wait_event("CALL_ESTABLISHED", timeout=30)
        t.check(est is not None, "the call is established at the phone",
                "no CALL_ESTABLISHED within 30 s")
        return res_id, est

    def ended_by_ctid(phone, closed, label):
        """The phone's call closed because ctid sent BYE (and the phone
        sent none)."""
        t.check(closed is not None, "%s: the phone's call closed" % label,
                "no CALL_CLOSED")
        byes_in = phone.requests("BYE", "in")
        byes_out = phone.requests("BYE", "out")
        t.check(len(byes_in) == 1 and not byes_out,
                "%s: ctid hung up with one BYE, the phone sent none" % label,
                "BYE received %d, sent %d" % (len(byes_in), len(byes_out)))

    def check_recording(phone, label):
        rate, ch, pcm = phone.recording()
        t.check(rate == 8000 and ch == 1, "%s: recording is 8 kHz mono" % label,
                "%s Hz, %s channels" % (rate, ch))
        return pcm

    def case_a():
        res_id, est = ring_and_answer(phone_a, prompt_a, "phone-a")
        if res_id is None or est is None:
            return
        ev = c.wait_event(res_id, timeout=A_SECONDS + 30)
        check_released(t, ev, res_id, "phone-a", None, "sys", cause=200,
                       answered=True)
        closed = phone_a.wait_event("CALL_CLOSED", timeout=15)
        ended_by_ctid(phone_a, closed, "A")
        t.check(phone_a.responses("INVITE", "out")[-1:] == [200],
                "A: the phone answered the INVITE 200",
                str(phone_a.responses("INVITE", "out")))
        pcm = check_recording(phone_a, "A")
        t.check(pcm == want_a, "A: the phone heard the prompt exactly: %d samples "
                "of decoded A-law, sample for sample, nothing more" % (
                    len(want_a) // SAMPLE),
                "" if pcm == want_a else describe(pcm, want_a))
    t.run("A: the phone answers and hears the prompt", case_a)

    def case_b():
        res_id, est = ring_and_answer(phone_b, prompt_b, "phone-b")
        if res_id is None or est is None:
            return
        t_est = est["_at"]
        time.sleep(max(0.0, t_est + HOLD_AFTER - time.time()))
        n0 = len(phone_b.events())
        t_hold = time.time()
        r = phone_b.command("hold")
        t.check(r is not None and r.get("ok"), "B: hold accepted by the phone",
                repr(r))
        time.sleep(max(0.0, t_hold + HOLD_FOR - time.time()))
        early = phone_b.events("CALL_CLOSED")
        t.check(not early, "B: the call survives the hold re-INVITE",
                "CALL_CLOSED %.2f s after the hold: %s" % (
                    early[0]["_at"] - t_hold, early[0].get("param")) if early else "")
        t_resume = time.time()
        r = phone_b.command("resume")
        t.check(r is not None and r.get("ok"), "B: resume accepted by the phone",
                repr(r))
        ev = c.wait_event(res_id, timeout=B_SECONDS + 30)
        check_released(t, ev, res_id, "phone-b", None, "sys", cause=200,
                       answered=True)
        closed = phone_b.wait_event("CALL_CLOSED", timeout=15, since=n0)
        ended_by_ctid(phone_b, closed, "B")
        if closed is not None:
            t.log("B: call lasted %.2f s at the phone (prompt %.2f s)" % (
                closed["_at"] - t_est, B_SECONDS))
        reinv = phone_b.responses("INVITE", "in")
        finals = [s for s in reinv if s >= 200]
        t.check(finals == [200, 200], "B: ctid answered both re-INVITEs (hold, "
                "resume) with 200", "final responses %s" % finals)
        sdps = phone_b.answers("INVITE", "in")
        dirs = [[ln for ln in sdp if ln in ("a=sendrecv", "a=sendonly", "a=recvonly",
                                             "a=inactive")] for sdp in sdps]
        if len(sdps) == 2 and t.check(
                all(any(ln.startswith("m=audio ") for ln in sdp) for sdp in sdps),
                "B: both 200s carry ctid's SDP", repr(sdps)):
            t.check(dirs[0] in (["a=recvonly"], ["a=inactive"]),
                    "B: the answer to the hold (sendonly) is recvonly or inactive "
                    "(RFC 3264 6.1)", "direction lines %s" % dirs[0])
            t.check(dirs[1] in ([], ["a=sendrecv"], ["a=sendonly"]),
                    "B: the answer to the resume lets ctid send (sendrecv or "
                    "sendonly)", "direction lines %s" % dirs[1])
        pcm = check_recording(phone_b, "B")
        where = describe(pcm, want_b)   # for the failure messages
        fb = FRAME * SAMPLE
        k = leading_frames(pcm, want_b)
        held_at = t_hold - t_est
        hint = ""
        if secs(k * fb) > held_at + SLACK:
            hint = (" -- no gap at the hold: the prompt resumed where it had "
                    "paused (its timeline stood still), or the phone never held")
        t.check(k > 0 and abs(secs(k * fb) - held_at) <= SLACK,
                "B: before the hold the phone heard the prompt from its start "
                "exactly up to the hold (%.2f s in)" % held_at,
                "%.2f s exact from the start; %s%s" % (secs(k * fb), where, hint))
        rest = pcm[k * fb:]
        if not t.check(secs(len(rest)) >= 1.0,
                       "B: the phone heard the prompt again after the resume",
                       "%.2f s recorded after the first %.2f s; %s" % (
                           secs(len(rest)), secs(k * fb), where)):
            return
        at = find_sample_aligned(want_b, rest)
        t.check(at >= 0 and at + len(rest) == len(want_b),
                "B: after the resume the phone heard the prompt's continuation "
                "exactly, to the end (%.2f s)" % secs(len(rest)), where)
        if at >= 0:
            resumed_at = t_resume - t_est
            t.check(abs(secs(at) - resumed_at) <= SLACK,
                    "B: the continuation starts where the prompt's timeline "
                    "was at the resume (%.2f s in)" % resumed_at,
                    "it starts at %.2f s of the prompt" % secs(at))
    t.run("B: hold and resume", case_b)


t = Test("phone")
with t:
    main(t)
