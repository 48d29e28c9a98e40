#!/usr/bin/env python3
"""ctid integration test: who gets a connection (issue 10: "Idle
unauthenticated connections hold every slot", "Running out of descriptors
floods the log"; docs/reliability.md, "Connections and the journal").

A  handshake_timeout, with a token (max_connections 20, handshake_timeout
   2 s, no per-address cap): 20 idle sockets fill every slot; a 21st client
   is refused with a JSON-RPC 503 line; within a few seconds ctid closes
   the 20 (one log line each, with the peer address), and the legitimate
   client then authenticates and is served. A connection that did
   authenticate stays open long past the timeout, and so does one that
   sent wrong tokens only until the timeout (it is closed).
B  handshake_timeout, no token: a socket that sends nothing, or only
   garbage, is closed; one that sent a request stays.
C  max_connections_per_ip 5: five connections from 127.0.0.1 are served,
   the sixth gets 503 "too many connections from this address" and is
   closed; one from 127.0.0.2 is still accepted; after one of the five
   closes, 127.0.0.1 may connect again.
D  out of file descriptors (RLIMIT_NOFILE of the running ctid lowered with
   prlimit to what it has open + 20): connections are opened until one is
   refused; the refused client reads 503 "server busy: out of file
   descriptors"; two seconds of hammering (connect, read, close) leave
   fewer than 50 log lines; after ten connections close, a new client is
   served again.
"""
import json
import os
import resource
import secrets
import socket
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import HOST, Test, _short, check_result  # noqa: E402

TOKEN = "Tk-" + secrets.token_hex(14)


def connect(port, src=None, timeout=3.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect((HOST, port))
    return s


def read_line(s, timeout=3.0):
    """One line from s (None on timeout, b"" on EOF without a line)."""
    s.settimeout(timeout)
    buf = b""
    try:
        while b"\n" not in buf:
            d = s.recv(4096)
            if not d:
                return buf
            buf += d
    except socket.timeout:
        return None
    except OSError:
        return buf
    return buf.split(b"\n", 1)[0]


def closed_by_peer(s, timeout=0.2):
    """True when s reads EOF (or a reset) within timeout."""
    s.settimeout(timeout)
    try:
        return s.recv(4096) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def rpc(s, method, params=None, id=1, timeout=5.0):
    obj = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        obj["params"] = params
    s.sendall((json.dumps(obj) + "\n").encode())
    line = read_line(s, timeout)
    try:
        return json.loads(line) if line else None
    except ValueError:
        return None


def refusal(line):
    """The error of a refusal line, or None."""
    try:
        v = json.loads(line)
    except (TypeError, ValueError):
        return None
    e = v.get("error") if isinstance(v, dict) else None
    return e if v.get("id", 0) is None and isinstance(e, dict) else None


def start(d):
    """Starts d and waits until it has seen the readiness probe's
    connection close, so that it does not count against a limit."""
    d.start()
    d.wait_log("connection closed", timeout=10)
    return d


t = Test("admission")
with t:
    socks = []

    def keep(s):
        socks.append(s)
        return s

    def sub_a():
        d = t.ctid(name="tok", conf={"auth_token": TOKEN, "max_connections": 20,
                                     "handshake_timeout": 2,
                                     "max_connections_per_ip": 0})
        start(d)
        good = keep(connect(d.listen_port))
        r = rpc(good, "sys.auth", {"token": TOKEN})
        check_result(t, r, True, "A: an early client authenticates")
        wrong = keep(connect(d.listen_port))
        r = rpc(wrong, "sys.auth", {"token": "Wr-" + secrets.token_hex(14)})
        t.check(r is not None and r.get("error", {}).get("code") == 401,
                "A: a client with a wrong token gets 401", _short(r))
        t0 = time.time()
        idle = [keep(connect(d.listen_port)) for _ in range(18)]
        time.sleep(0.3)
        late = keep(connect(d.listen_port))
        line = read_line(late, 3)
        e = refusal(line)
        t.check(e is not None and e.get("code") == 503,
                "A: with every slot taken a new client reads a 503 line",
                _short(line))
        t.check(e is not None and e.get("data") == {"ipsc_info":
                                                    {"node_id": d.node_id}},
                "A: the refusal's data names the node", _short(line))
        t.check(closed_by_peer(late, 2), "A: ...and is closed")
        # the idle ones (and the wrong-token one) go after handshake_timeout
        deadline = t0 + 15
        left = list(idle) + [wrong]
        while left and time.time() < deadline:
            left = [s for s in left if not closed_by_peer(s, 0.05)]
        t.check(not left, "A: ctid closed the 18 idle sockets and the "
                "wrong-token one after handshake_timeout (%.1f s)"
                % (time.time() - t0), "%d still open" % len(left))
        log = d.log_text()
        n = log.count("no sys.auth within handshake_timeout 2s")
        t.check(n == 19, "A: one log line each, naming the peer (%d)" % n,
                "\n".join(ln for ln in log.splitlines() if "handshake" in ln)[:2000])
        c = keep(connect(d.listen_port))
        r = rpc(c, "sys.auth", {"token": TOKEN})
        check_result(t, r, True, "A: the legitimate client is served now")
        r = rpc(c, "sys.ping", id=2)
        check_result(t, r, "pong", "A: its ping")
        r = rpc(good, "sys.ping", id=2)
        check_result(t, r, "pong",
                     "A: the authenticated client idled %.0f s and is still served"
                     % (time.time() - t0))
        t.check(d.alive(), "A: ctid alive")
    t.run("A: handshake_timeout with a token", sub_a)

    def sub_b():
        d = t.ctid(name="open", conf={"handshake_timeout": 2})
        start(d)
        silent = keep(connect(d.listen_port))
        junk = keep(connect(d.listen_port))
        junk.sendall(b"not json\n{\"id\":1,\n")
        talker = keep(connect(d.listen_port))
        r = rpc(talker, "sys.ping")
        check_result(t, r, "pong", "B: ping")
        t0 = time.time()
        left = [silent, junk]
        while left and time.time() < t0 + 15:
            left = [s for s in left if not closed_by_peer(s, 0.05)]
        t.check(not left, "B: the silent and the garbage-only sockets were "
                "closed (%.1f s)" % (time.time() - t0), "%d open" % len(left))
        t.check("no complete request within handshake_timeout 2s" in d.log_text(),
                "B: logged")
        time.sleep(max(0, t0 + 3 - time.time()))
        r = rpc(talker, "sys.ping", id=2)
        check_result(t, r, "pong",
                     "B: the one that sent a request stays past the timeout")
    t.run("B: handshake_timeout without a token", sub_b)

    def sub_c():
        d = t.ctid(name="perip", conf={"max_connections_per_ip": 5})
        start(d)
        five = [keep(connect(d.listen_port)) for _ in range(5)]
        ok = [rpc(s, "sys.ping") for s in five]
        t.check(all(r is not None and r.get("result") == "pong" for r in ok),
                "C: five connections from 127.0.0.1 served", _short(ok))
        sixth = keep(connect(d.listen_port))
        line = read_line(sixth, 3)
        e = refusal(line)
        t.check(e is not None and e.get("code") == 503 and
                e.get("message") == "too many connections from this address",
                "C: the sixth reads 503 \"too many connections from this "
                "address\"", _short(line))
        t.check(closed_by_peer(sixth, 2), "C: ...and is closed")
        try:
            other = keep(connect(d.listen_port, src="127.0.0.2"))
            r = rpc(other, "sys.ping")
            check_result(t, r, "pong", "C: a connection from 127.0.0.2 is accepted")
        except OSError as ex:
            t.check(False, "C: a connection from 127.0.0.2 is accepted",
                    "cannot connect from 127.0.0.2: %s" % ex)
        five[0].close()
        time.sleep(0.3)
        again = keep(connect(d.listen_port))
        r = rpc(again, "sys.ping")
        check_result(t, r, "pong", "C: after one closed, 127.0.0.1 may connect again")
        t.check("max_connections_per_ip reached" in d.log_text(),
                "C: the refusal is logged")
    t.run("C: max_connections_per_ip", sub_c)

    def sub_d():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < 400:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
        d = t.ctid(name="nofile", conf={"handshake_timeout": 60})
        start(d)
        pid = d.proc.pid
        n_open = len(os.listdir("/proc/%d/fd" % pid))
        limit = n_open + 20
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
        t.log("D: ctid has %d descriptors open; RLIMIT_NOFILE now %d" % (
            n_open, limit))
        held, refused_line = [], None
        for _ in range(60):
            s = keep(connect(d.listen_port))
            r = rpc(s, "sys.ping", timeout=3)
            if r is not None and r.get("result") == "pong":
                held.append(s)
                continue
            refused_line = json.dumps(r) if r is not None else None
            if r is None:
                refused_line = read_line(s, 3)
            break
        t.log("D: %d connections served before the first refusal" % len(held))
        t.check(5 <= len(held) <= 25, "D: about 20 connections fit (%d)" % len(held))
        e = refusal(refused_line) if refused_line else None
        t.check(e is not None and e.get("code") == 503 and
                e.get("message") == "server busy: out of file descriptors",
                "D: the refused client reads 503 \"server busy: out of file "
                "descriptors\"", _short(refused_line))
        mark = len(d.log_text().splitlines())
        t0 = time.time()
        n_try, n_told = 0, 0
        while time.time() < t0 + 2.0:
            try:
                s = connect(d.listen_port, timeout=2)
                line = read_line(s, 2)
                s.close()
            except OSError:
                line = None
            n_try += 1
            e = refusal(line) if line else None
            n_told += e is not None and "file descriptors" in e.get("message", "")
        time.sleep(1.5)   # let the last counts be logged
        lines = d.log_text().splitlines()[mark:]
        t.log("D: %d connection attempts in 2 s, %d told why; %d log lines"
              % (n_try, n_told, len(lines)))
        t.check(len(lines) < 50, "D: fewer than 50 log lines for 2 s of "
                "hammering (%d)" % len(lines), "\n".join(lines[:20]))
        t.check(n_told >= 1, "D: the hammering clients were told why (%d of %d)"
                % (n_told, n_try))
        t.check(any("refused" in ln and "out of file descriptors" in ln
                    for ln in lines), "D: the refusals are counted in the log",
                "\n".join(lines[:10]))
        for s in held[:10]:
            s.close()
        served = None
        deadline = time.time() + 10
        while time.time() < deadline and served is None:
            try:
                s = keep(connect(d.listen_port))
                r = rpc(s, "sys.ping", timeout=3)
                if r is not None and r.get("result") == "pong":
                    served = r
            except OSError:
                pass
            if served is None:
                time.sleep(0.2)
        t.check(served is not None, "D: after ten closed, a new client is served")
        r = rpc(held[-1], "sys.ping", id=9)
        check_result(t, r, "pong", "D: a connection held throughout is still served")
        t.check(d.alive(), "D: ctid alive")
    t.run("D: out of file descriptors", sub_d)

    for s in socks:
        try:
            s.close()
        except OSError:
            pass
