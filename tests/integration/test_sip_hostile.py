#!/usr/bin/env python3
"""ctid integration test: what a hostile or careless SIP peer sends
(issue 10; docs/reliability.md, "Hardening (issue 10)", "SIP peers").

A  sofia-sip's own messages go through ctid's log: a call to a closed
   port makes tport report the ICMP error; the line is in log_file in
   ctid's format ("warn: sofia-sip tport: tport_udp_error ...") and
   nothing of sofia's reaches raw stderr.
B  a gateway answering 302 with Contact <sip:900premium@127.0.0.1:P> is
   not followed: "dial failed", sys, cause 302, the 302 ACKed, nothing at
   all sent to P; the CDR's callee is the number dialled.
C  out-of-dialog requests (OPTIONS, MESSAGE, stray INVITE, BYE, CANCEL,
   SUBSCRIBE, NOTIFY, INFO, PUBLISH, REFER) in three rounds of ROUND requests:
   each gets exactly one final response with the right status (OPTIONS
   200 with Accept: application/sdp and Allow; stray INVITE 403; BYE,
   CANCEL and INFO 481; REFER 405; the others refused), and ctid's RSS does not grow from
   round 3 to round 4 by more than RSS_BOUND_KB (the old daemon kept a
   nua handle per request: ~1.5 KB each, 7 MB a round). Round 3 carries a
   call (D), whose own allocations (a media arena, the prompt cache) stay
   in RSS; so the bound is read over round 4 alone, which has no call.
D  during round 3 a call plays its whole prompt byte for byte, and stray
   requests naming that call's Call-ID (a new INVITE, an INVITE and a BYE
   with ctid's own tag as From) are refused, and requests inside it that
   ctid does not handle (MESSAGE, INFO, SUBSCRIBE, OPTIONS) are answered,
   without touching it.

ctid's server transactions linger for Timer J (64*T1, which ctid ties to
dial_timeout: here 3/4 of 8 s) after their answer, so RSS is read once
each round's transactions are gone.
"""
import csv
import os
import re
import select
import socket
import sys
import threading
import time
import uuid

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (HOST, Test, check_construct_result, check_released,  # noqa: E402
                      check_rtp_stream, expected_payload, free_port, gateway,
                      header, make_prompt)

ROUND = 5000
RSS_BOUND_KB = 2048
DIAL_TIMEOUT = 8                    # Timer J = 3/4 of it = 6 s
SETTLE = DIAL_TIMEOUT * 3 / 4 + 3   # wait for a round's transactions to end


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def is_asan(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


class UdpTrap:
    """A UDP socket that records every datagram it receives."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, port))
        self.sock.settimeout(0.1)
        self.got = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                self.got.append(self.sock.recv(65536))
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self._stop = True
        self._thread.join(1)
        self.sock.close()


class SipPeer:
    """A UDP socket sending requests to ctid and collecting responses by
    Call-ID."""

    def __init__(self, sip_port):
        self.sip_port = sip_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.finals = {}     # Call-ID -> [(status, text)]
        self.requests = []   # requests ctid sent us (there should be none)

    def request(self, method, call_id, from_tag="peer", to_tag=None,
                extra=""):
        branch = "z9hG4bK" + uuid.uuid4().hex[:20]
        msg = ("%s sip:ctid@%s:%d SIP/2.0\r\n"
               "Via: SIP/2.0/UDP %s:%d;branch=%s;rport\r\n"
               "Max-Forwards: 70\r\n"
               "From: <sip:peer@%s:%d>;tag=%s\r\n"
               "To: <sip:ctid@%s:%d>%s\r\n"
               "Call-ID: %s\r\nCSeq: 1 %s\r\n"
               "Contact: <sip:peer@%s:%d>\r\n%s"
               "Content-Length: 0\r\n\r\n") % (
            method, HOST, self.sip_port, HOST, self.port, branch,
            HOST, self.port, from_tag, HOST, self.sip_port,
            ";tag=" + to_tag if to_tag else "", call_id, method,
            HOST, self.port, extra)
        self.sock.sendto(msg.encode(), (HOST, self.sip_port))
        return branch

    def ack(self, text):
        """ACKs a non-2xx final response to one of our INVITEs."""
        via = header(text, "Via")
        msg = ("ACK sip:ctid@%s:%d SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\n"
               "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\n"
               "Content-Length: 0\r\n\r\n") % (
            HOST, self.sip_port, via, header(text, "From"), header(text, "To"),
            header(text, "Call-ID"))
        self.sock.sendto(msg.encode(), (HOST, self.sip_port))

    def poll(self, timeout):
        """Reads what arrives within timeout; returns the Call-IDs that got
        a final response."""
        done = []
        r, _, _ = select.select([self.sock], [], [], timeout)
        while r:
            data = self.sock.recv(65536).decode("utf-8", "replace")
            m = re.match(r"SIP/2\.0 (\d{3})", data)
            cid = header(data, "Call-ID")
            if m is None:
                self.requests.append(data)
            elif int(m.group(1)) >= 200 and cid is not None:
                self.finals.setdefault(cid, []).append((int(m.group(1)), data))
                if header(data, "CSeq").endswith("INVITE"):
                    self.ack(data)
                done.append(cid)
            r, _, _ = select.select([self.sock], [], [], 0)
        return done

    def close(self):
        self.sock.close()


# Requests of a flood round: (method, extra headers, allowed final statuses)
MIX = [("SUBSCRIBE", "Event: presence\r\nExpires: 60\r\n", (403, 405, 489)),
       ("NOTIFY", "Event: presence\r\nSubscription-State: active\r\n",
        (403, 405, 481)),
       ("INFO", "", (481,)),  # a key for no call (issue 14)
       ("PUBLISH", "Event: presence\r\n", (403, 405)),
       ("INVITE", "", (403,)),
       ("BYE", "", (481,)),
       ("CANCEL", "", (481,)),
       # not in Allow: the stack answers 405, no 202, no NOTIFY
       ("REFER", "Refer-To: <sip:900premium@127.0.0.1:5099>\r\n", (405,))]


def plan(n):
    """The n requests of a round: OPTIONS and MESSAGE, with one of MIX in
    every 50."""
    out = []
    for i in range(n):
        if i % 50 == 25:
            out.append(MIX[(i // 50) % len(MIX)])
        elif i % 2:
            out.append(("OPTIONS", "Accept: application/sdp\r\n", (200,)))
        else:
            out.append(("MESSAGE", "Content-Type: text/plain\r\n", (403, 405)))
    return out


def flood(peer, n, window=100, deadline=90.0):
    """Sends a round (at most `window` unanswered), waits for the answers
    and a little more for duplicates; returns {Call-ID: (method, allowed)}."""
    sent = {}
    todo = plan(n)
    pending = set()
    end = time.time() + deadline
    while (todo or pending) and time.time() < end:
        while todo and len(pending) < window:
            method, extra, allowed = todo.pop()
            cid = "flood-" + uuid.uuid4().hex
            peer.request(method, cid, extra=extra)
            sent[cid] = (method, allowed)
            pending.add(cid)
        for cid in peer.poll(1.0):
            pending.discard(cid)
    peer.poll(0.5)
    return sent


def check_round(t, label, peer, sent):
    missing = [c for c in sent if c not in peer.finals]
    t.check(not missing, "%s: every one of %d requests got a final response"
            % (label, len(sent)), "%d without one, e.g. %s" % (
                len(missing), [sent[c][0] for c in missing[:5]]))
    wrong, extra = [], []
    for cid, (method, allowed) in sent.items():
        got = peer.finals.get(cid, [])
        statuses = sorted(set(s for s, _ in got))
        if got and (len(statuses) != 1 or statuses[0] not in allowed):
            wrong.append((method, statuses))
        # a final response to a non-INVITE is sent once (no retransmission
        # of ours asked for another); an INVITE's is repeated until ACKed
        if method != "INVITE" and len(got) > 1:
            extra.append((method, len(got)))
    t.check(not wrong, "%s: each final status is the right one for its method"
            % label, "%d wrong, e.g. %s" % (len(wrong), wrong[:8]))
    t.check(not extra, "%s: exactly one final response per request" % label,
            "%d duplicated, e.g. %s" % (len(extra), extra[:5]))
    opts = [peer.finals[c][0][1] for c, (m, _) in sent.items()
            if m == "OPTIONS" and c in peer.finals][:20]
    bad = [o for o in opts if "application/sdp" not in (header(o, "Accept") or "")
           or not header(o, "Allow")]
    t.check(opts and not bad, "%s: OPTIONS 200 carries Allow and "
            "Accept: application/sdp" % label, (bad or ["no OPTIONS"])[0][:400])


def read_cdrs(path):
    try:
        with open(path, newline="") as f:
            return list(csv.reader(f))
    except FileNotFoundError:
        return []


t = Test("sip_hostile")
with t:
    asan = is_asan(t.ctid_bin)
    if asan:
        # ASan keeps freed memory in quarantine instead of reusing it:
        # without this every freed transaction would still count as RSS.
        os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                      ":quarantine_size_mb=0").lstrip(":")
    make_prompt(t.path("prompts", "notice.wav"), 3.0)
    ports = {k: free_port("udp") for k in ("closed", "redirect", "play")}
    trap_port = free_port("udp")
    log_file = t.path("ctid-file.log")
    cdr_file = t.path("cdr.csv")
    d = t.ctid(gateways=[gateway("gw_" + k, p) for k, p in ports.items()],
               conf={"log_file": log_file, "cdr_file": cdr_file,
                     "dial_timeout": DIAL_TIMEOUT})
    d.start()
    c = t.client(d.listen_port, "app")

    def construct(port, ud, user="13800000000"):
        reply = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(port, user), "play_content": "notice.wav",
            "play_repeat": 1, "user_data": ud})
        res_id, _ = check_construct_result(t, reply, d.node_id,
                                           d.uri(port, user), ud, label=ud)
        return res_id

    def sofia_log():
        res_id = construct(ports["closed"], "closed")
        ev = c.wait_event(res_id, timeout=20) if res_id else None
        check_released(t, ev, res_id, "closed", "dial error", "sys",
                       cause=(408, 503), answered=False, label="A: closed port")
        time.sleep(0.5)
        try:
            with open(log_file) as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        tport = [ln for ln in lines if "tport_udp_error" in ln]
        t.check(tport and all(re.match(r"^(warn|error|info|debug): sofia-sip "
                                       r"tport: ", ln) for ln in tport),
                "A: tport's ICMP report is in log_file in ctid's format",
                "lines: %r" % tport[:3])
        t.check(len(tport) == 1 and "reported by" in tport[0],
                "A: the report and its continuation are one line", repr(tport))
        raw = [ln for ln in d.log_text().splitlines()
               if re.search(r"tport_udp_error|^\s*reported by|^nta: |^nua: ", ln)]
        t.check(not raw, "A: nothing of sofia-sip's on raw stderr",
                "\n".join(raw[:5]))
    t.run("A: sofia-sip's messages go through ctid's log", sofia_log)

    def redirect():
        trap = t.add_cleanup(UdpTrap(trap_port))
        sp = t.sipp("uas_redirect_302.xml", port=ports["redirect"],
                    extra=["-key", "contact_port", str(trap_port)]).start()
        res_id = construct(ports["redirect"], "redirect")
        ev = c.wait_event(res_id, timeout=20) if res_id else None
        check_released(t, ev, res_id, "redirect", "dial failed", "sys",
                       cause=302, answered=False, label="B: 302")
        sp.check_exit(t, "B: the daemon ACKed the 302")
        time.sleep(2.0)
        t.check(not trap.got, "B: nothing sent to the 302's Contact "
                "(port %d)" % trap_port, "%d datagram(s), first: %r" % (
                    len(trap.got), trap.got[0][:200] if trap.got else b""))
        rows = [r for r in read_cdrs(cdr_file) if res_id in r]
        t.check(len(rows) == 1 and d.uri(ports["redirect"]) in rows[0] and
                not any("900premium" in x for x in rows[0]),
                "B: the CDR names the number dialled, not the Contact",
                repr(rows))
    t.run("B: a 302 is not followed", redirect)

    peer = t.add_cleanup(SipPeer(d.sip_port))
    rss = []

    def round_(i):
        sent = flood(peer, ROUND)
        check_round(t, "C: round %d" % i, peer, sent)
        time.sleep(SETTLE)
        rss.append(vm_rss_kb(d.proc.pid))
        t.log("C: RSS after round %d: %s kB" % (i, rss[-1]))

    t.run("C: flood round 1 (warm-up)", round_, 1)
    t.run("C: flood round 2", round_, 2)

    def in_dialog(call_id, ours, sp):
        """Requests ctid does not handle, inside the live call (the
        callee's tag as From, ctid's as To): each answered, the call goes
        on (its RTP is checked afterwards)."""
        sent = [m for d_, m in sp.messages()
                if d_ == "sent" and m.startswith("SIP/2.0 200")]
        theirs = re.search(r"tag=([^;>\s]+)", header(sent[0], "To") or "") \
            if sent else None
        if not t.check(theirs, "D: the callee's tag known"):
            return
        peer_ = SipPeer(d.sip_port)
        # INFO without a body inside the call: a keepalive, 200 (issue 14)
        want = {"MESSAGE": (403, 405), "INFO": (200,),
                "SUBSCRIBE": (403, 405, 489), "OPTIONS": (200,)}
        for i, m in enumerate(want):
            peer_.request(m, call_id, from_tag=theirs.group(1), to_tag=ours,
                          extra="Event: presence\r\n" if m == "SUBSCRIBE" else "")
        end = time.time() + 5
        while time.time() < end and len(peer_.finals.get(call_id, [])) < len(want):
            peer_.poll(0.5)
        got = {header(x, "CSeq").split()[-1]: st
               for st, x in peer_.finals.get(call_id, [])}
        t.check(all(got.get(m) in ok for m, ok in want.items()),
                "D: requests inside the call answered (%s)" % ", ".join(want),
                repr(got))
        peer_.close()

    def round3_with_call():
        sink = t.rtp_sink()
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["play"],
                    rtp_sink_port=sink.port, codec=8).start()
        round3 = threading.Thread(target=round_, args=(3,))
        round3.start()
        res_id = construct(ports["play"], "play")
        # once the call is answered, stray requests naming its Call-ID
        t.check(sink.wait_packets(10, timeout=15), "D: the call is playing")
        inv = sp.received("INVITE")
        call_id = header(inv[0], "Call-ID") if inv else None
        ours = re.search(r"tag=([^;>\s]+)", header(inv[0], "From") or "") if inv else None
        if t.check(call_id and ours, "D: the call's Call-ID and tag known"):
            stray = SipPeer(d.sip_port)
            stray.request("INVITE", call_id, from_tag="intruder")
            stray.request("INVITE", call_id, from_tag=ours.group(1),
                          to_tag="sipp-side")
            stray.request("BYE", call_id, from_tag=ours.group(1),
                          to_tag="sipp-side")
            end = time.time() + 5
            while time.time() < end and len(stray.finals.get(call_id, [])) < 3:
                stray.poll(0.5)
            got = sorted(s for s, _ in stray.finals.get(call_id, []))
            t.check(got and set(got) <= {403, 481} and 403 in got,
                    "D: stray INVITE/BYE with the call's Call-ID refused "
                    "(403 new INVITE, 481 the others)", repr(got))
            stray.close()
            in_dialog(call_id, ours.group(1), sp)
        ev = c.wait_event(res_id, timeout=30) if res_id else None
        check_released(t, ev, res_id, "play", None, "sys", cause=200,
                       answered=True, label="D: the call")
        sp.check_exit(t, "D: BYE after the prompt")
        sink.wait_quiet()
        check_rtp_stream(t, sink.snapshot(), expected_payload(
            t.path("prompts", "notice.wav"), 8, 1), 8, label="D: RTP")
        round3.join(120)
    t.run("D: flood round 3 with a call playing", round3_with_call)
    t.run("C: flood round 4 (no call: the RSS bound is read over it)",
          round_, 4)

    def rss_bound():
        t.check(len(rss) == 4 and None not in rss, "C: RSS read each round",
                repr(rss))
        if len(rss) == 4 and None not in rss:
            grow = rss[3] - rss[2]
            t.check(grow < RSS_BOUND_KB, "C: RSS grows less than %d kB from "
                    "round 3 to round 4 (%d requests)" % (RSS_BOUND_KB, ROUND),
                    "grew %d kB (%s kB after rounds 1..4)" % (grow, rss))
        t.check(not peer.requests, "C: ctid sent the flooding peer no request",
                "%d, first %r" % (len(peer.requests),
                                  peer.requests[0][:300] if peer.requests else ""))
        with open(log_file) as f:
            flood_lines = [ln for ln in f if "requests outside any call" in ln]
        t.check(flood_lines and flood_lines[0].startswith("info: "),
                "C: the flood is logged at info (a line per 100 in 10 s)",
                repr(flood_lines[:2]))
        t.check(d.alive(), "C: the daemon is alive")
    t.run("C: memory", rss_bound)
    c.close()
