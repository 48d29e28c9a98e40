#!/usr/bin/env python3
"""ctid integration test: faults from the reliability issue.

One daemon (max_connections 1100, max_line 8192, metrics on; no per-address
cap and no handshake_timeout, for section 3) lives through:

1. SIP packet loss. A UDP relay between ctid and sipp drops SIP messages by a
   seeded, deterministic plan (tc netem is not available on the VM this was
   written on: kernel booted with nomodule, no sch_netem built in; netem's
   and nftables' loss would not be reproducible anyway; the relay needs
   nothing and drops the same messages every run). Four concurrent calls: in the first, the first copy of every
   message is lost (INVITE, 100, 180, 200, ACK, BYE, 200 to the BYE); in the
   other three, each copy is lost with probability 0.3 (at most two losses
   per message, and per BYE transaction). Each call must still end
   normally (error null, dropped_by sys, cause 200) with the full RTP
   payload, recovered by retransmission: ctid retransmits the INVITE and
   the BYE, ACKs every retransmitted 200, and starts one stream per call.
2. RTP destination unreachable. (a) The answer's m= names a port where
   nothing listens: every other send() fails with ECONNREFUSED (ICMP port
   unreachable on the connected socket); the prompt must still be paced out
   to the end (every packet, by the metrics) and the call released with
   error null, dropped_by sys. (b) ICMP errors for a callee that does
   receive (port, protocol and host unreachable, administratively
   prohibited, ...; crafted with a raw socket, needs root): each must lose
   one packet and no more; the stream plays to the end. (c) c=IN IP4
   192.0.2.1, which an RTP socket bound to 127.0.0.1 cannot route to
   (connect() fails with EINVAL; a host without a route gets ENETUNREACH):
   nothing can be sent at all, which docs/protocol.md calls "RTP cannot be
   sent after answer": play error, BYE, right away. (d) A normal call
   afterwards plays in full.
3. 1,000 idle connections (RLIMIT_NOFILE raised here, inherited by ctid):
   all accepted, none closed, VmRSS per idle connection reported (bound:
   64 KiB); meanwhile sys.ping and a real call work on another connection,
   and some of the idle ones answer a ping; after they close, the daemon
   still serves.
4. Garbage flood: 20 connections at once, ~1,800 lines each, sent in random
   chunks: random bytes (some past max_line), invalid JSON, JSON that is not
   an object, wrong types, unknown methods, huge numbers, deep nesting, NUL
   bytes, invalid UTF-8, blank lines, notifications, interleaved with valid
   sys.ping and ext.notify_call.exists. Every reply is checked in order
   against what the contract says for its line (match by id for requests,
   id null for lines that are not requests); no connection is closed; then
   a real call plays end to end.

Deterministic: every random choice comes from SEED. CTID_FAULTS_SECTIONS=1,3
(say) runs only those sections, for debugging.
"""
import json
import os
import random
import re
import resource
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (HOST, FRAME, Test, check_construct_result,  # noqa: E402
                      check_released, check_rtp_stream, expected_payload,
                      make_prompt, gateway, free_port, scrape, wait_metric,
                      _short, check_result)

SEED = 20250611
MAX_LINE = 8192
IDLE = 1000
MAX_CONN = 1100
NOFILE = 4096
FLOOD_CONNS = 20
FLOOD_LINES = 1800
LOSSY_CALLS = 4
LOSS = 0.3
SHORT = 1.03                       # seconds
SHORT_FRAMES = 52                  # 8240 samples -> 52 frames of 160
SECTIONS = os.environ.get("CTID_FAULTS_SECTIONS", "1,2,3,4").split(",")


# --------------------------------------------------------------------------
# helpers


def raise_nofile(want):
    """Raises this process's RLIMIT_NOFILE soft limit to want (and the hard
    one when allowed and needed); ctid started afterwards inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    inf = resource.RLIM_INFINITY
    if hard != inf and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            want = hard
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != inf and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def proc_status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def proc_nofile(pid):
    """(soft, hard) open files limit of a process, -1 for unlimited."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                v = line.split()[3:5]
                return tuple(-1 if x == "unlimited" else int(x) for x in v)
    return None


def _csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def send_icmp_unreachable(code, src_port, dst_port, host=HOST):
    """Sends `host` an ICMP destination unreachable (type 3) with `code`,
    quoting a 172-byte UDP datagram src_port -> dst_port on host, as a
    router or firewall would about one RTP packet of that flow. The kernel
    hands it to the socket connected that way; on a connected UDP socket
    the next send() fails with the matching errno. Needs CAP_NET_RAW."""
    a = socket.inet_aton(host)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 172, 0, 0x4000, 64,
                     17, 0, a, a)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + 172, 0)
    msg = struct.pack("!BBHI", 3, code, 0, 0) + ip + udp
    msg = msg[:2] + struct.pack("!H", _csum(msg)) + msg[4:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        s.sendto(msg, (host, 0))
    finally:
        s.close()


class PortHold:
    """UDP ports for the callees, chosen at start (ctid's gateway allow-list
    needs them in its config) and kept bound here until their sipp starts:
    other processes (tests running in parallel) bind ephemeral ports too,
    and this test runs long enough for one of them to take a port that is
    merely free."""

    def __init__(self):
        self.socks = {}

    def take(self, name):
        for _ in range(20):
            port = free_port("udp")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((HOST, port))
            except OSError:
                s.close()
                continue
            self.socks[name] = s
            return port
        raise RuntimeError("no UDP port to hold for %s" % name)

    def release(self, name):
        s = self.socks.pop(name, None)
        if s is not None:
            s.close()

    def close(self):
        for s in self.socks.values():
            s.close()
        self.socks = {}


def raw_sockets_allowed():
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        return True
    except OSError:
        return False


class LossyRelay:
    """A UDP relay standing in for a lossy network between ctid's SIP port
    and sipp. ctid dials the relay's port (a gateway); the scenario's
    Contact names it too (uas_answer_lossy.xml, -key contact_port), so every
    SIP message of the dialog crosses it both ways. Each datagram is
    classified as (call, kind, copy): call = order in which its Call-ID was
    first seen, kind = the method of a request or "<status> <CSeq method>"
    of a response, copy = how many of that (call, kind) came before. plan
    (call, kind, copy) says whether to drop it; the decision depends only on
    those, not on timing or interleaving, so a plan is deterministic."""

    def __init__(self, ctid_addr, sipp_addr, plan, max_group_drops=2):
        self.ctid_addr = ctid_addr
        self.sipp_addr = sipp_addr
        self.plan = plan
        self.max_group_drops = max_group_drops
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.calls = {}      # Call-ID -> index
        self.copies = {}     # (call, kind) -> copies seen
        self.group_drops = {}
        self.record = []     # (call, kind, copy, dropped, branch)
        self.times = []      # when each was seen
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def classify(data):
        text = data.decode("latin-1")
        first = text.split("\r\n", 1)[0]
        cid = re.search(r"^(?:Call-ID|i)\s*:\s*(\S+)", text, re.M | re.I)
        cseq = re.search(r"^CSeq\s*:\s*\d+\s+(\S+)", text, re.M | re.I)
        via = re.search(r"^(?:Via|v)\s*:.*?branch=([^;\s,]+)", text, re.M | re.I)
        if first.startswith("SIP/2.0 "):
            parts = first.split()
            kind = "%s %s" % (parts[1] if len(parts) > 1 else "?",
                              cseq.group(1) if cseq else "?")
        else:
            kind = first.split(" ", 1)[0] or "?"
        return (cid.group(1) if cid else None, kind,
                via.group(1) if via else None)

    @staticmethod
    def group(kind):
        return "BYE" if kind in ("BYE", "200 BYE") else kind

    def _run(self):
        while not self._stop:
            try:
                data, src = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            to_ctid = src == self.sipp_addr
            cid, kind, branch = self.classify(data)
            with self.lock:
                call = self.calls.setdefault(cid, len(self.calls))
                copy = self.copies.get((call, kind), 0)
                self.copies[(call, kind)] = copy + 1
                g = (call, self.group(kind))
                drop = (self.group_drops.get(g, 0) < self.max_group_drops and
                        self.plan(call, kind, copy))
                if drop:
                    self.group_drops[g] = self.group_drops.get(g, 0) + 1
                self.record.append((call, kind, copy, drop, branch))
                self.times.append(time.time())
            if not drop:
                try:
                    self.sock.sendto(data, self.ctid_addr if to_ctid
                                     else self.sipp_addr)
                except OSError:
                    pass

    def snapshot(self):
        with self.lock:
            return list(self.record)

    def dump(self):
        """The whole record, one line per datagram, for a failure."""
        with self.lock:
            t0 = self.times[0] if self.times else 0
            return "\n".join("  %7.3f call%d %-12s #%d %s" % (
                at - t0, cl, kd, cp, "DROPPED" if dr else "passed")
                for (cl, kd, cp, dr, _), at in zip(self.record, self.times))

    def close(self):
        self._stop = True
        self._thread.join(1)
        self.sock.close()


def check_stream_with_losses(t, pkts, expected, pt, n_lost, label):
    """A stream that lost n_lost single packets on the way: every received
    packet is the frame its sequence number says, timestamps follow the
    sequence numbers, and the last frame of the last play arrived."""
    if not t.check(len(pkts) > 0, "%s: packets received" % label):
        return
    total = len(expected) // FRAME
    seq0, ts0 = pkts[0].seq, pkts[0].ts
    idx = [(p.seq - seq0) & 0xFFFF for p in pkts]
    t.check(len(set(p.ssrc for p in pkts)) == 1, "%s: one SSRC" % label)
    t.check(all(p.pt == pt for p in pkts), "%s: payload type %d" % (label, pt))
    t.check([i for i, p in enumerate(pkts) if p.marker] == [0],
            "%s: marker bit on the first packet only" % label)
    t.check(idx == sorted(set(idx)), "%s: in order, no duplicates" % label)
    bad_ts = [i for p, i in zip(pkts, idx)
              if (p.ts - ts0) & 0xFFFFFFFF != i * FRAME]
    t.check(not bad_ts, "%s: timestamp = 160 x sequence offset (a lost "
            "packet leaves a gap in both)" % label, "at %s" % bad_ts[:5])
    t.check(idx[0] == 0 and idx[-1] == total - 1,
            "%s: first and last frame of the %d-frame play list arrived "
            "(played to the end)" % (label, total),
            "offsets %d..%d" % (idx[0], idx[-1]))
    missing = sorted(set(range(total)) - set(idx))
    t.check(len(missing) == n_lost,
            "%s: exactly %d packet(s) lost, one per ICMP error" % (label, n_lost),
            "missing frames %s" % missing)
    t.check(all(b - a > 1 for a, b in zip(missing, missing[1:])),
            "%s: each ICMP error lost a single packet" % label,
            "missing frames %s" % missing)
    bad = [i for p, i in zip(pkts, idx)
           if i < total and p.payload != expected[i * FRAME:(i + 1) * FRAME]]
    t.check(not bad, "%s: every received payload is its frame of the prompt"
            % label, "%d differ, first frames %s" % (len(bad), bad[:5]))


# --------------------------------------------------------------------------
# the garbage flood's lines and what each must get back


NULL = None                 # the id of a reply to a line that is no request
ANY = object()              # any id


class Expect:
    """What one line must get back: nothing (alts empty) or exactly one
    reply matching one of alts, each (id, "result", value) or
    (id, "error", {codes})."""

    def __init__(self, desc, *alts):
        self.desc = desc
        self.alts = alts

    def matches(self, m):
        if m.get("jsonrpc") != "2.0" or "id" not in m:
            return False
        for id_, what, val in self.alts:
            if id_ is not ANY and (m["id"] != id_ or type(m["id"]) != type(id_)):
                continue
            if what == "result" and "error" not in m and m.get("result") == val \
                    and type(m.get("result")) == type(val):
                return True
            if what == "error" and "result" not in m and \
                    isinstance(m.get("error"), dict) and \
                    m["error"].get("code") in val and \
                    isinstance(m["error"].get("message"), str):
                return True
        return False


def ok(desc, id_, result):
    return Expect(desc, (id_, "result", result))


def err(desc, id_, *codes):
    return Expect(desc, (id_, "error", set(codes)))


# bytes that cannot start a JSON text nor a blank line
_JSON_START = set(b' \t\r\n\f\v{["-0123456789tfn')
JUNK_START = bytes(b for b in range(256) if b not in _JSON_START)
NOT_NL = bytes(b for b in range(256) if b != 0x0A)
BAD_UTF8 = [b"\xff", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82",
            b"\xf8\x88\x80\x80\x80", b"\x80", b"abc\xc3", b"\xf4\x90\x80\x80"]


def gen_flood(rng, conn, n, node_id):
    """[(line bytes without terminator, terminator, Expect)] for one
    connection; Expect.alts empty for lines that get no reply."""
    out = []
    counter = [0]

    def new_id():
        counter[0] += 1
        k = conn * 100000 + counter[0]
        r = rng.random()
        if r < 0.6:
            return k
        if r < 0.9:
            return "c%d-%d-\u00e9\u2713" % (conn, counter[0])
        return k + 0.5

    def dumps(obj):
        # random key order, random white space, raw UTF-8
        if isinstance(obj, dict) and rng.random() < 0.5:
            items = list(obj.items())
            rng.shuffle(items)
            obj = dict(items)
        sep = rng.choice([(",", ":"), (", ", ": "), (" ,\t", " : ")])
        return json.dumps(obj, separators=sep, ensure_ascii=rng.random() < 0.3
                          ).encode()

    def req(method, params=None, id_=None, jsonrpc=True, notification=False):
        obj = {}
        if jsonrpc:
            obj["jsonrpc"] = "2.0"
        if not notification:
            obj["id"] = id_
        obj["method"] = method
        if params is not None:
            obj["params"] = params
        return obj

    def ping():
        i = new_id()
        params = rng.choice([None, None, {}, [], "null"])
        obj = req("sys.ping", None if params == "null" else params, i,
                  jsonrpc=rng.random() < 0.7)
        if params == "null":
            obj["params"] = None
        return dumps(obj), ok("sys.ping", i, "pong")

    def exists():
        i = new_id()
        if rng.random() < 0.5:
            rid = "%s-ext.notify_call-%d" % (node_id, rng.randrange(1, 2 ** 53))
        else:
            rid = "".join(rng.choice("abc-.0123456789\u00e9") for _ in
                          range(rng.randrange(0, 40)))
        params = {"res_id": rid} if rng.random() < 0.7 else [rid]
        return dumps(req("ext.notify_call.exists", params, i)), \
            ok("exists of an unknown res_id", i, False)

    def junk():
        n_ = rng.randrange(0, 400)
        b = bytes([rng.choice(JUNK_START)]) + bytes(rng.choice(NOT_NL)
                                                    for _ in range(n_))
        return b, err("random bytes", NULL, -32700)

    def oversize():
        n_ = rng.randrange(MAX_LINE + 1, 3 * MAX_LINE)
        if rng.random() < 0.5:
            b = bytes(rng.choice(NOT_NL) for _ in range(n_))
        else:   # a real request, too long: its id cannot be known
            i = new_id()
            b = dumps(req("sys.ping", {"pad": "x" * n_}, i))
        return b, err("line over max_line", NULL, -32600)

    def boundary():
        i = new_id()
        base = dumps(req("sys.ping", {"pad": ""}, i))
        n_ = rng.choice([MAX_LINE, MAX_LINE + 1])
        b = base.replace(b'""', b'"' + b"y" * (n_ - len(base)) + b'"', 1)
        assert len(b) == n_
        if n_ == MAX_LINE:
            return b, ok("ping of exactly max_line bytes", i, "pong")
        return b, err("ping of max_line + 1 bytes", NULL, -32600)

    def invalid_json():
        i = new_id()
        good = dumps(req("sys.ping", None, i))
        k = rng.randrange(8)
        if k == 0:
            b = good[:rng.randrange(1, len(good))]       # cut short
        elif k == 1:
            b = good[:-1] + b",}"                        # trailing comma
        elif k == 2:
            b = good.replace(b'"', b"'")                 # single quotes
        elif k == 3:
            b = good + b" " + good                       # two values
        elif k == 4:
            b = good.replace(b'"id"', b"id", 1)          # unquoted key
        elif k == 5:
            b = b'{"id":NaN,"method":"sys.ping"}'
        elif k == 6:
            b = b'{"id":007,"method":"sys.ping"}'        # leading zeros
        else:
            b = good + b"}"
        return b, err("invalid JSON (%d)" % k, NULL, -32700)

    def not_object():
        k = rng.randrange(8)
        i = new_id()
        v = [b"42", b"-1.5e3", b'"sys.ping"', b"true", b"false", b"null",
             b"[]", dumps([req("sys.ping", None, i)])][k]
        if rng.random() < 0.2:   # nested arrays, within jansson's depth
            d_ = rng.randrange(1, 1000)
            v = b"[" * d_ + v + b"]" * d_
        return v, err("JSON that is not an object", NULL, -32600)

    def deep():
        d_ = rng.randrange(2100, 4000)
        if rng.random() < 0.5:
            # valid JSON, not an object; past jansson's depth limit it is
            # a parse error instead: either is an error for id null
            return (b"[" * d_ + b"]" * d_,
                    err("%d nested arrays" % d_, NULL, -32700, -32600))
        i = new_id()
        b = dumps(req("sys.ping", {"x": "PLACE"}, i)).replace(
            b'"PLACE"', b"[" * d_ + b"]" * d_)
        return b, Expect("ping with %d nested arrays in params" % d_,
                         (NULL, "error", {-32700}), (i, "result", "pong"))

    def deep_ok():
        i = new_id()
        d_ = rng.randrange(10, 1000)
        b = dumps(req("sys.ping", {"x": "PLACE"}, i)).replace(
            b'"PLACE"', b"[" * d_ + b"1" + b"]" * d_)
        return b, ok("ping with %d nested arrays in params" % d_, i, "pong")

    def nul():
        i = new_id()
        good = dumps(req("sys.ping", None, i))
        k = rng.randrange(4)
        if k == 0:
            b = good + b"\x00"
        elif k == 1:
            b = good.replace(b"sys.ping", b"sys\x00.ping")
        elif k == 2:
            b = b"\x00"
        else:
            p = rng.randrange(1, len(good))
            b = good[:p] + b"\x00" + good[p:]
        return b, err("NUL byte (%d)" % k, NULL, -32700)

    def bad_utf8():
        i = new_id()
        bad = rng.choice(BAD_UTF8)
        where = rng.randrange(3)
        if where == 0:
            b = dumps(req("sys.ping", {"x": "PLACE"}, i)).replace(b"PLACE", bad)
        elif where == 1:
            b = dumps(req("sys.ping", None, "PLACE")).replace(b"PLACE", bad)
        else:
            b = dumps(req("sys.PLACE", None, i)).replace(b"PLACE", bad)
        return b, err("invalid UTF-8 %r" % bad, NULL, -32700)

    def wrong_type():
        i = new_id()
        k = rng.randrange(12)
        if k == 0:
            return dumps(req(rng.choice([5, None, {}, [], True]), None, i)), \
                err("method not a string", i, -32600)
        if k == 1:
            return dumps(req("sys.ping", rng.choice([5, "x", True, 1.5]), i)), \
                err("params neither object nor array", i, -32600)
        if k == 2:
            o = req("sys.ping", None, rng.choice([True, False, [1], {"a": 1}]))
            return dumps(o), err("id of a wrong type", NULL, -32600)
        if k == 3:
            o = req("sys.ping", None, i)
            o["jsonrpc"] = rng.choice(["1.0", 2, None, "2"])
            return dumps(o), err("jsonrpc not \"2.0\"", i, -32600)
        if k == 4:
            return dumps(req("ext.notify_call.exists",
                             {"res_id": rng.choice([5, None, [], {}, True])}, i)), \
                err("exists: res_id not a string", i, -32602)
        if k == 5:
            return dumps(req("ext.notify_call.exists", rng.choice([{}, []]), i)), \
                err("exists: res_id missing", i, -32602)
        if k == 6:
            return dumps(req("ext.notify_call.drop", {"res_id": 7}, i)), \
                err("drop: res_id not a string", i, -32602)
        if k == 7:
            rid = "%s-ext.notify_call-%d" % (node_id, rng.randrange(1, 2 ** 53))
            return dumps(req("ext.notify_call.drop", [rid], i)), \
                err("drop of an unknown res_id", i, 404)
        if k == 8:
            # never a valid construct: play_content is missing
            params = rng.choice([{"to_uri": 5}, {"to_uri": []}, {},
                                 {"to_uri": "1@127.0.0.1:9", "play_repeat": "x"},
                                 [None, 5]])
            return dumps(req("ext.notify_call.construct", params, i)), \
                err("construct with bad params", i, -32602)
        if k == 9:
            return dumps(req("sys.subscribe", {"since": rng.choice(
                [-1, "x", 1.5, True])}, i)), err("subscribe: bad since", i, -32602)
        if k == 10:
            return dumps({"id": i}), err("no method", i, -32600)
        return dumps(req("sys.ping", None, i)).replace(b'"sys.ping"', b"12"), \
            err("method a number", i, -32600)

    def unknown_method():
        i = new_id()
        m = rng.choice(["sys.pong", "ext.notify_call.constrict", "", "SYS.PING",
                        "sys.ping ", "a" * 300, "ext.notify_call", "\u00e9"])
        return dumps(req(m, {}, i)), err("unknown method", i, -32601)

    def huge():
        k = rng.randrange(5)
        if k == 0:   # fits in int64: echoed exactly
            i = rng.choice([2 ** 63 - 1, -2 ** 63, 2 ** 53 + 1])
            return dumps(req("sys.ping", None, i)), ok("int64 id", i, "pong")
        if k == 1:   # a double: echoed as the same double
            i = rng.choice([1e300, -2.5e-300, 1.7976931348623157e308])
            return dumps(req("sys.ping", None, i)), ok("huge real id", i, "pong")
        # past int64 / past double: jansson refuses the number, so the
        # line is a parse error; a reply with the id would be fine too
        num = rng.choice([b"9223372036854775808", b"1" + b"0" * 400,
                          b"-99999999999999999999", b"1e400", b"-1e999"])
        i = new_id()
        if k == 2:
            b = b'{"jsonrpc":"2.0","id":' + num + b',"method":"sys.ping"}'
            return b, Expect("id %s" % num[:20], (NULL, "error", {-32700}),
                             (ANY, "result", "pong"))
        if k == 3:
            b = dumps(req("ext.notify_call.exists", {"res_id": "PLACE"}, i)
                      ).replace(b'"PLACE"', num)
            return b, Expect("exists res_id %s" % num[:20],
                             (NULL, "error", {-32700}), (i, "error", {-32602}))
        b = dumps(req("sys.ping", {"n": "PLACE"}, i)).replace(b'"PLACE"', num)
        return b, Expect("ping with %s in params" % num[:20],
                         (NULL, "error", {-32700}), (i, "result", "pong"))

    def notification():
        k = rng.randrange(3)
        if k == 0:
            o = req("sys.ping", None, notification=True)
        elif k == 1:
            o = req("no.such.method", {"a": 1}, notification=True)
        else:
            o = req("ext.notify_call.exists", {"res_id": "x"}, notification=True)
        return dumps(o), Expect("notification")

    def blank():
        return rng.choice([b"", b" ", b"\t\t", b"\r", b" \r", b"\f\v "]), \
            Expect("blank line")

    kinds = [(ping, 30), (exists, 5), (junk, 12), (oversize, 1), (boundary, 1),
             (invalid_json, 8), (not_object, 6), (deep, 1), (deep_ok, 2),
             (nul, 3), (bad_utf8, 4), (wrong_type, 8), (unknown_method, 4),
             (huge, 3), (notification, 4), (blank, 3)]
    fns = [f for f, _ in kinds]
    weights = [w for _, w in kinds]
    for _ in range(n):
        f = rng.choices(fns, weights)[0]
        line, exp = f()
        term = b"\n"
        # CRLF sometimes; never after a line at the limit (the CR counts)
        if rng.random() < 0.1 and len(line) < MAX_LINE - 1 and \
                not line.endswith(b"\r"):
            term = b"\r\n"
        out.append((line, term, exp))
    end_id = "end-%d" % conn
    out.append((json.dumps({"id": end_id, "method": "sys.ping"}).encode(), b"\n",
                ok("the last ping", end_id, "pong")))
    return out


# --------------------------------------------------------------------------

t = Test("faults")
with t:
    t0_all = time.time()
    soft, hard = raise_nofile(NOFILE)
    t.log("RLIMIT_NOFILE of the test (ctid inherits it): soft %s, hard %s" % (
        soft, hard))
    short = make_prompt(t.path("prompts", "short.wav"), SHORT)
    pay1 = expected_payload(short, 8, 0)
    pay2 = expected_payload(short, 8, 1)
    t.check(len(pay1) == SHORT_FRAMES * FRAME,
            "harness: the prompt is %d frames" % SHORT_FRAMES, "%d" % len(pay1))

    names = ["closed", "icmp", "unroutable", "after_rtp", "idle_call", "flood_call"]
    hold = t.add_cleanup(PortHold())
    port = {n: hold.take(n) for n in names}
    lossy_sipp_port = hold.take("lossy_sipp")
    mport = free_port("tcp")
    gws = [gateway("gw_" + n, port[n]) for n in names]
    d = t.ctid(gateways=gws, conf={
        "max_connections": MAX_CONN, "max_line": MAX_LINE,
        # the 1,000 idle connections of section 3 all come from 127.0.0.1
        # and stay silent for as long as the section runs
        "max_connections_per_ip": 0, "handshake_timeout": 0,
        "metrics_listen": "%s:%d" % (HOST, mport)})

    def plan(call, kind, copy):
        if call == 0:
            return copy == 0        # the first copy of every message
        return random.Random("%d:%d:%s:%d" % (SEED, call, kind, copy)).random() < LOSS

    relay = t.add_cleanup(LossyRelay((HOST, d.sip_port), (HOST, lossy_sipp_port),
                                     plan))
    # the relay (it needs ctid's SIP port, chosen with the config) is a
    # gateway too: appended to the generated config
    with open(d.conf_path, "a") as f:
        f.write("\n[gateway gw_relay]\nhost = %s\nport = %d\n" % (HOST, relay.port))
    d.start()
    c = t.client(d.listen_port, "main")

    def construct(client, gw_port, play="short.wav", repeat=0, user="u"):
        to_uri = d.uri(gw_port)
        t0 = time.time()
        r = client.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": play, "play_repeat": repeat,
            "user_data": user})
        res_id, _ = check_construct_result(t, r, d.node_id, to_uri, user,
                                           label="construct %s" % user)
        return res_id, t0

    def full_call(gw_name, label):
        """One normal call end to end: event null/sys/200, BYE, full RTP."""
        sink = t.rtp_sink(label)
        hold.release(gw_name)
        sp = t.sipp("uas_answer_wait_bye.xml", port=port[gw_name],
                    rtp_sink_port=sink.port).start()
        res_id, t0 = construct(c, port[gw_name], user=label)
        if not res_id:
            return
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, label, None, "sys", cause=200,
                       answered=True, t_before=t0, t_after=time.time(),
                       label="%s event" % label)
        sp.check_exit(t, "%s: the callee got the BYE" % label)
        sink.wait_quiet(0.4, 5)
        streams = list(sink.streams().values())
        if t.check(len(streams) == 1, "%s: one RTP stream" % label,
                   "%d" % len(streams)):
            check_rtp_stream(t, streams[0], pay1, 8, "%s RTP" % label)

    # ---------------------------------------------------------------- 1
    def sip_loss():
        failed0 = t.failed
        try:
            sip_loss_body()
        finally:
            if t.failed > failed0:
                t.log("relay record (s since the first datagram):\n" + relay.dump())

    def sip_loss_body():
        sink = t.rtp_sink("lossy")
        hold.release("lossy_sipp")
        sp = t.sipp("uas_answer_lossy.xml", port=lossy_sipp_port,
                    rtp_sink_port=sink.port, calls=LOSSY_CALLS,
                    extra=["-key", "contact_port", str(relay.port)]).start()
        ids = []
        for k in range(LOSSY_CALLS):
            res_id, t0 = construct(c, relay.port, repeat=1, user="lossy%d" % k)
            if res_id:
                ids.append((res_id, "lossy%d" % k, t0))
        for res_id, ud, t0 in ids:
            ev = c.wait_event(res_id, timeout=40)
            check_released(t, ev, res_id, ud, None, "sys", cause=200,
                           answered=True, t_before=t0, t_after=time.time(),
                           label="%s event" % ud)
        sp.check_exit(t, "sipp: all %d calls got their BYE" % LOSSY_CALLS,
                      timeout=40)
        sink.wait_quiet(0.4, 5)
        streams = sorted(sink.streams().values(), key=lambda p: p[0].at)
        t.check(len(streams) == LOSSY_CALLS,
                "one RTP stream per call (a retransmitted 200 starts no second "
                "one)", "%d streams" % len(streams))
        for k, pkts in enumerate(streams):
            check_rtp_stream(t, pkts, pay2, 8, "lossy RTP %d" % k)

        rec = relay.snapshot()
        dropped = [(cl, kd, cp) for cl, kd, cp, dr, _ in rec if dr]
        t.log("relay: %d SIP messages, %d dropped: %s" % (
            len(rec), len(dropped), ", ".join("call%d %s#%d" % x for x in dropped)))
        t.check(len(set(cl for cl, _, _, _, _ in rec)) == LOSSY_CALLS,
                "every call crossed the relay")
        first = sorted(kd for cl, kd, cp, dr, _ in rec if cl == 0 and cp == 0 and dr)
        want = sorted(["INVITE", "100 INVITE", "180 INVITE", "200 INVITE", "ACK",
                       "BYE", "200 BYE"])
        t.check(first == want, "call 0: the first copy of each of its messages "
                "was lost", "%s" % first)
        t.check(any(cl > 0 for cl, _, _ in dropped) and
                any(kd in ("INVITE", "ACK", "BYE") for cl, kd, _ in dropped
                    if cl > 0) and
                any(kd[0].isdigit() for cl, kd, _ in dropped if cl > 0),
                "calls 1-%d: random losses both ways" % (LOSSY_CALLS - 1))
        # every lost INVITE, 200, BYE and 200 to the BYE was recovered by a
        # retransmission that got through; a lost ACK by another ACK (ctid
        # answering the 200's retransmission) or by the BYE
        passed = {(cl, kd) for cl, kd, cp, dr, _ in rec if not dr}
        for cl, kd, cp in dropped:
            if kd in ("INVITE", "200 INVITE", "BYE", "200 BYE"):
                t.check((cl, kd) in passed, "call %d: a later copy of the lost "
                        "%s got through" % (cl, kd))
        acks = [(cp, dr) for cl, kd, cp, dr, _ in rec if cl == 0 and kd == "ACK"]
        t.check(len(acks) >= 2 and not acks[1][1],
                "call 0: ctid ACKed the retransmitted 200 again (the first "
                "ACK was lost)", "%s" % acks)
        okays = [cp for cl, kd, cp, dr, _ in rec if cl == 0 and kd == "200 INVITE"]
        t.check(len(okays) >= 2, "call 0: sipp retransmitted its 200",
                "%d copies" % len(okays))
        for cl in range(LOSSY_CALLS):
            br = set(b for c_, kd, _, _, b in rec if c_ == cl and kd == "INVITE")
            t.check(len(br) == 1, "call %d: every INVITE copy is the same "
                    "transaction (one branch)" % cl, "%s" % br)
            bb = set(b for c_, kd, _, _, b in rec if c_ == cl and kd == "BYE")
            t.check(len(bb) == 1, "call %d: every BYE copy is the same "
                    "transaction (one branch)" % cl, "%s" % bb)
        n_inv = len(sp.received("INVITE"))
        t.check(n_inv >= LOSSY_CALLS, "sipp saw the INVITEs that got through "
                "(%d)" % n_inv)
    if "1" in SECTIONS:
        t.run("1. SIP loss through a lossy relay (seed %d)" % SEED, sip_loss)
        t.log("section 1 done at %.1f s" % (time.time() - t0_all))

    # ---------------------------------------------------------------- 2
    def log_since(mark):
        return d.log_text()[mark:]

    def rtp_closed():
        closed = free_port("udp")
        hold.release("closed")
        sp = t.sipp("uas_answer_wait_bye.xml", port=port["closed"],
                    rtp_sink_port=closed).start()
        mark = len(d.log_text())
        sent0 = scrape(mport).get("ctid_rtp_packets_sent_total")
        res_id, t0 = construct(c, port["closed"], repeat=1, user="closed")
        if not res_id:
            return
        ev = c.wait_event(res_id, timeout=30)
        t1 = time.time()
        check_released(t, ev, res_id, "closed", None, "sys", cause=200,
                       answered=True, t_before=t0, t_after=t1)
        want = 2 * SHORT_FRAMES
        t.check(t1 - t0 >= want * 0.020 - 0.1,
                "the call lasted the whole prompt, twice (%.2f s)" % (t1 - t0))
        sp.check_exit(t, "the callee got the BYE")
        got = wait_metric(mport, "ctid_rtp_packets_sent_total", sent0 + want, 3)
        t.check(got == sent0 + want, "ctid paced out all %d packets "
                "(ctid_rtp_packets_sent_total +%d)" % (want, want),
                "+%s" % (None if got is None else got - sent0))
        t.check("send: Connection refused; packet lost" in log_since(mark),
                "the fault was real: ctid saw ECONNREFUSED from the ICMP port "
                "unreachable")
    if "2" in SECTIONS:
        t.run("2a. RTP to a port where nothing listens", rtp_closed)

    def rtp_icmp():
        if not t.check(raw_sockets_allowed(), "2b needs raw sockets (root or "
                       "CAP_NET_RAW, as CI has)"):
            return
        sink = t.rtp_sink("icmp")
        hold.release("icmp")
        sp = t.sipp("uas_answer_wait_bye.xml", port=port["icmp"],
                    rtp_sink_port=sink.port).start()
        mark = len(d.log_text())
        res_id, t0 = construct(c, port["icmp"], repeat=1, user="icmp")
        if not res_id:
            return
        # ICMP type 3 codes a connected UDP socket reports on the next send:
        # 13 administratively prohibited (EHOSTUNREACH; a firewall's REJECT),
        # 10 host prohibited, 9 net prohibited (ENETUNREACH), 7 host unknown
        # (EHOSTDOWN), 2 protocol unreachable (ENOPROTOOPT), 3 port
        # unreachable (ECONNREFUSED)
        codes = [13, 10, 9, 7, 2, 3]
        sent = []
        if sink.wait_packets(8, 10):
            src_port = sink.snapshot()[0].src[1]
            for code in codes:
                # one error at a time: the socket keeps only the last one,
                # so the next waits until this one has cost its packet
                # (3 more packets arrived after it)
                n = sink.count()
                send_icmp_unreachable(code, src_port, sink.port)
                sent.append(code)
                if not sink.wait_packets(n + 3, 5):
                    break
                time.sleep(0.06)
        t.check(sent == codes, "ICMP errors %s sent while the prompt played" % codes,
                "sent %s" % sent)
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "icmp", None, "sys", cause=200,
                       answered=True, t_before=t0, t_after=time.time())
        sp.check_exit(t, "the callee got the BYE")
        sink.wait_quiet(0.4, 5)
        streams = list(sink.streams().values())
        if t.check(len(streams) == 1, "one RTP stream", "%d" % len(streams)):
            check_stream_with_losses(t, streams[0], pay2, 8, len(sent),
                                     "RTP through ICMP errors")
        t.check("packet lost, the prompt plays on" in log_since(mark),
                "ctid logged the lost packet")
    if "2" in SECTIONS:
        t.run("2b. ICMP errors mid-stream lose single packets", rtp_icmp)

    def rtp_unroutable():
        hold.release("unroutable")
        sp = t.sipp("uas_answer_rtp_host.xml", port=port["unroutable"],
                    rtp_sink_port=4000,
                    extra=["-key", "rtp_host", "192.0.2.1"]).start()
        sent0 = scrape(mport).get("ctid_rtp_packets_sent_total")
        res_id, t0 = construct(c, port["unroutable"], repeat=1, user="unroutable")
        if not res_id:
            return
        ev = c.wait_event(res_id, timeout=30)
        t1 = time.time()
        check_released(t, ev, res_id, "unroutable", "play error", "sys",
                       cause=200, answered=True, t_before=t0, t_after=t1)
        t.check(t1 - t0 < 1.5, "released right after the answer, not after a "
                "prompt's worth of silence (%.2f s)" % (t1 - t0))
        sp.check_exit(t, "the callee got the BYE")
        time.sleep(0.1)
        got = scrape(mport).get("ctid_rtp_packets_sent_total")
        t.check(got == sent0, "no RTP packet counted as sent", "+%s" % (got - sent0))
    if "2" in SECTIONS:
        t.run("2c. c= 192.0.2.1, not routable from the RTP socket", rtp_unroutable)

    def rtp_after():
        full_call("after_rtp", "after-rtp")
        r = c.call("sys.ping")
        check_result(t, r, "pong", "sys.ping")
        t.check(d.alive(), "ctid is alive")
    if "2" in SECTIONS:
        t.run("2d. a normal call after the RTP faults", rtp_after)
        t.log("section 2 done at %.1f s" % (time.time() - t0_all))

    # ---------------------------------------------------------------- 3
    def idle():
        pid = d.proc.pid
        lim = proc_nofile(pid)
        t.check(lim is not None and (lim[0] == -1 or lim[0] >= MAX_CONN + 200),
                "ctid may open %d+ files (its limits: soft %s, hard %s)" % (
                    MAX_CONN + 200, lim[0], lim[1]))
        soft_, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if not t.check(soft_ == resource.RLIM_INFINITY or soft_ >= IDLE + 200,
                       "the test may open %d+ files (soft limit %s)" % (
                           IDLE + 200, soft_)):
            return
        base = scrape(mport).get("ctid_rpc_connections")
        rss0 = proc_status_kib(pid, "VmRSS")
        socks = []
        t_open = time.time()
        try:
            for _ in range(IDLE):
                socks.append(socket.create_connection((HOST, d.listen_port),
                                                      timeout=5))
            got = wait_metric(mport, "ctid_rpc_connections", base + IDLE, 15)
            t.check(got == base + IDLE, "all %d idle connections accepted "
                    "(ctid_rpc_connections %s -> %s, %.2f s)" % (
                        IDLE, base, got, time.time() - t_open))
            time.sleep(0.2)
            rss1 = proc_status_kib(pid, "VmRSS")
            per = (rss1 - rss0) * 1024.0 / IDLE
            t.log("VmRSS %d KiB -> %d KiB with %d idle connections: %.0f bytes "
                  "(%.2f KiB) per connection" % (rss0, rss1, IDLE, per, per / 1024))
            t.check(per < 64 * 1024, "memory per idle connection < 64 KiB "
                    "(%.2f KiB)" % (per / 1024))

            r = c.call("sys.ping")
            check_result(t, r, "pong", "sys.ping on another connection")
            other = t.client(d.listen_port, "idle-new")
            r = other.call("sys.ping")
            check_result(t, r, "pong",
                         "sys.ping on a new connection (%d open)" % (base + IDLE + 1))
            other.close()
            full_call("idle_call", "idle-call")

            closed, chatty = [], []
            for i, s in enumerate(socks):
                s.setblocking(False)
                try:
                    data = s.recv(1)
                    (chatty if data else closed).append(i)
                except BlockingIOError:
                    pass
                except OSError:
                    closed.append(i)
                s.setblocking(True)
            t.check(not closed, "no idle connection was closed by ctid",
                    "%d closed, first %s" % (len(closed), closed[:5]))
            t.check(not chatty, "no idle connection was sent anything",
                    "%d got data" % len(chatty))
            bad = []
            for i in range(0, IDLE, 100):
                s = socks[i]
                s.settimeout(5)
                s.sendall(b'{"id":%d,"method":"sys.ping"}\n' % i)
                try:
                    line = s.makefile("rb").readline()
                    rep = json.loads(line)
                    if rep.get("id") != i or rep.get("result") != "pong":
                        bad.append((i, rep))
                except (OSError, ValueError) as e:
                    bad.append((i, repr(e)))
            t.check(not bad, "every 100th idle connection answers a ping",
                    _short(bad))
        finally:
            for s in socks:
                s.close()
        got = wait_metric(mport, "ctid_rpc_connections", base, 10)
        t.check(got == base, "all closed again (ctid_rpc_connections %s)" % got)
        rss2 = proc_status_kib(pid, "VmRSS")
        t.log("VmRSS after closing them: %d KiB" % rss2)
        r = c.call("sys.ping")
        check_result(t, r, "pong", "sys.ping after they closed")
        t.check(d.alive(), "ctid is alive")
    if "3" in SECTIONS:
        t.run("3. %d idle connections" % IDLE, idle)
        t.log("section 3 done at %.1f s" % (time.time() - t0_all))

    # ---------------------------------------------------------------- 4
    def flood():
        mark = len(d.log_text())
        conns, plans, datas = [], [], []
        for k in range(FLOOD_CONNS):
            rng = random.Random("%d:flood:%d" % (SEED, k))
            lines = gen_flood(rng, k, FLOOD_LINES, d.node_id)
            data = b"".join(ln + term for ln, term, _ in lines)
            cuts, pos = [], 0
            while pos < len(data):
                n_ = rng.randrange(1, 4096)
                cuts.append(data[pos:pos + n_])
                pos += n_
            plans.append([e for _, _, e in lines if e.alts])
            datas.append(cuts)
            conns.append(t.client(d.listen_port, "flood%02d" % k))
        n_lines = sum(FLOOD_LINES + 1 for _ in conns)
        n_bytes = sum(sum(len(x) for x in cuts) for cuts in datas)
        errors = []

        def sender(k):
            try:
                for chunk in datas[k]:
                    conns[k].send_raw(chunk)
            except OSError as e:
                errors.append((k, repr(e)))
        t_send = time.time()
        threads = [threading.Thread(target=sender, args=(k,)) for k in range(FLOOD_CONNS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        t.check(not errors, "every connection took all its bytes", _short(errors))
        replies = []
        for k, cl in enumerate(conns):
            want = len(plans[k])
            msgs = cl.wait_count(want, 30)
            replies.append(msgs)
        elapsed = time.time() - t_send
        time.sleep(0.3)
        t.log("flood: %d lines, %.1f MB over %d connections; replies in %.2f s" % (
            n_lines, n_bytes / 1e6, FLOOD_CONNS, elapsed))
        total_bad = 0
        for k, cl in enumerate(conns):
            msgs = [m for m in cl.all_msgs() if "method" not in m]
            evs = [m for m in cl.all_msgs() if "method" in m]
            plan_ = plans[k]
            mism = [(i, e.desc, m.raw[:200]) for i, (e, m) in
                    enumerate(zip(plan_, msgs)) if not e.matches(m)]
            ok_ = t.check(len(msgs) == len(plan_) and not mism and not evs,
                          "flood%02d: %d replies, each the right one for its line, "
                          "in order" % (k, len(plan_)),
                          "%d replies for %d expected, %d events; first "
                          "mismatches: %s" % (len(msgs), len(plan_), len(evs),
                                              _short(mism[:3], 900)))
            total_bad += 0 if ok_ else 1
            t.check(not cl.bad_lines, "flood%02d: every line ctid wrote is JSON" % k,
                    _short(cl.bad_lines[:3]))
            t.check(not cl.closed, "flood%02d: connection still open" % k)
        n_ids = sum(1 for p in plans for e in p
                    if any(a[0] is not NULL for a in e.alts))
        t.log("flood: %d replies checked (%d to requests with an id)" % (
            sum(len(p) for p in plans), n_ids))
        t.check("connection closed" not in log_since(mark),
                "ctid closed no connection during the flood")
        t.check("over max_output_bytes" not in log_since(mark),
                "no connection went over max_output_bytes")
        for k, cl in enumerate(conns):
            r = cl.call("sys.ping", timeout=5)
            if not check_result(t, r, "pong", "flood%02d answers a ping afterwards" % k):
                break
        t.check(d.alive(), "ctid is alive")
        full_call("flood_call", "flood-call")
    if "4" in SECTIONS:
        t.run("4. garbage flood on %d connections" % FLOOD_CONNS, flood)
        t.log("section 4 done at %.1f s" % (time.time() - t0_all))

    t.section("end")
    rc = d.stop()
    t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
    t.log("total %.1f s" % (time.time() - t0_all))
