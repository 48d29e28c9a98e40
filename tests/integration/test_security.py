#!/usr/bin/env python3
"""ctid integration test: access control and secrets (auth_token, the
loopback rule, the gateway allow-list, no secret in logs).

Start-up rule: listen on 0.0.0.0 / [::] (config file or --listen flag)
without auth_token, or with a token under 16 characters, is refused with exit
status 1 and a message naming auth_token (both --check-config and a real
start); loopback without a token and 0.0.0.0 with a token are accepted, and
--check-config never prints the token or a gateway password.

Daemon "secure" (auth_token set, listen 0.0.0.0, default allow-list):
before sys.auth every request (even an unknown method) gets 401 "call
sys.auth with the token first"; notifications (construct, sys.subscribe)
before auth get no reply and do nothing (no INVITE, no event, no
subscription); missing / non-string tokens are -32602 and do not count as
failures; wrong tokens (also the token minus / plus one character) are 401
"wrong token"; sys.auth by name and by position work; auth is per
connection; three wrong tokens close the connection and a right token
pipelined after them is not honoured. After auth a real construct plays
(and one through a digest-authenticated gateway). A to_uri (or any entry of
an array) that is not a configured gateway is refused with -32602 "... is
not a configured gateway", without an event and without an INVITE reaching
the sipp listening there. While a long call is in flight, other connections
send garbage, wrong tokens, a 60 KB token, deep nesting, an oversize line;
the call still plays byte for byte and ends normally.

Daemon "open" (no token, loopback, allow_unlisted_gateways = yes): no auth
needed, sys.auth returns true, the unlisted to_uri places a real call.

Daemon "rotate": auth_token changed by SIGHUP; an authenticated
connection gets 401 until it calls sys.auth with the new token (the old
one is now wrong), a subscriber authenticated with the old token is
closed, a new connection needs sys.auth (issue 10).

Finally neither log holds the token, a tried wrong token or the gateway
password.
"""
import json
import os
import secrets
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (HOST, Test, check_construct_result, check_released,  # noqa: E402
                      check_rtp_stream, expected_payload, make_prompt, gateway,
                      free_port, header, digest_params, digest_ok, _short, check_result)

AUTH_FIRST = "not authenticated: call sys.auth with the token first"
WRONG_MSG = "not authenticated: wrong token"
SHORT = 1.03
LONG = 3.01
QUIET = 1.0   # how long "nothing follows" is watched

TOKEN = "Tk-" + secrets.token_hex(14)          # 31 printable chars
NEW_TOKEN = "Tn-" + secrets.token_hex(14)      # after the SIGHUP of "rotate"
PASSWORD = "Pw-" + secrets.token_hex(10)
WRONG = ["Wr-" + secrets.token_hex(14),         # plain wrong tokens
         "Wx-" + secrets.token_hex(14),
         "Wy-" + secrets.token_hex(14),
         "Wz-" + secrets.token_hex(14)]
NEAR = [TOKEN[:-1], TOKEN + "x"]                # one char short / long
BIG_MARK = "Big-" + secrets.token_hex(8)        # inside the 60 KB token
OPEN_MARK = "Op-" + secrets.token_hex(10)       # token sent to the open daemon

t = Test("security")
with t:
    short = make_prompt(t.path("prompts", "short.wav"), SHORT)
    long_ = make_prompt(t.path("prompts", "long.wav"), LONG, synth=("sine", "440"))
    port = {n: free_port("udp") for n in ("a", "auth", "long", "unlisted", "open")}
    d = t.ctid(name="secure",
               gateways=[gateway("gw_a", port["a"]),
                         gateway("gw_auth", port["auth"], username="alice",
                                 password=PASSWORD),
                         gateway("gw_long", port["long"])],
               conf={"auth_token": TOKEN})
    # listen on every address: allowed because a token is set
    with open(d.conf_path) as f:
        conf_text = f.read()
    lines = conf_text.splitlines()
    top_end = next((i for i, ln in enumerate(lines) if ln.startswith("[")),
                   len(lines))
    top = [ln for ln in lines[:top_end] if not ln.startswith("listen =")]
    sections = lines[top_end:]
    with open(d.conf_path, "w") as f:
        f.write("\n".join(top + ["listen = 0.0.0.0:%d" % d.listen_port] + sections)
                + "\n")

    def variant(name, listen, token=None):
        """A config like the secure daemon's with another listen and token
        (None: none), its own state dir; returns its path."""
        keep = [ln for ln in top if not ln.startswith(("auth_token =", "state_dir ="))]
        extra = ["listen = %s" % listen, "state_dir = %s" % t.path("state-" + name)]
        if token is not None:
            extra.append("auth_token = %s" % token)
        path = t.path("%s.conf" % name)
        with open(path, "w") as f:
            f.write("\n".join(keep + extra + sections) + "\n")
        return path

    def run_ctid(args, timeout=5.0):
        p = subprocess.Popen([t.ctid_bin] + args, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             cwd=t.tmp)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return "still running after %.0f s" % timeout, out.decode(), err.decode()
        return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    # ------------------------------------------------------------------
    def startup_rule():
        wport = free_port("tcp")
        wild = variant("wild", "0.0.0.0:%d" % wport)
        for what, args in (
                ("--check-config, listen 0.0.0.0, no token",
                 ["--config", wild, "--check-config"]),
                ("start, listen 0.0.0.0, no token", ["--config", wild]),
                ("--check-config, listen [::], no token",
                 ["--config", variant("wild6", "[::]:%d" % wport), "--check-config"]),
                ("start, loopback config but --listen 0.0.0.0",
                 ["--config", variant("loop", "127.0.0.1:%d" % wport),
                  "--listen", "0.0.0.0:%d" % wport]),
                ("--check-config, listen 0.0.0.0, 15-char token",
                 ["--config", variant("shorttok", "0.0.0.0:%d" % wport, TOKEN[:15]),
                  "--check-config"])):
            rc, out, err = run_ctid(args)
            t.check(rc == 1, "%s: exit status 1" % what, "got %r, stderr %r" % (rc, err))
            t.check("auth_token" in err, "%s: stderr names auth_token" % what,
                    "stderr %r" % err)
            t.log("%s: %s" % (what, err.strip()))
        # nobody is listening on the port the refused configs named
        try:
            s = socket.create_connection((HOST, wport), timeout=0.5)
            s.close()
            t.fail("refused start: port %d not listening" % wport)
        except OSError:
            t.check(True, "refused start: port %d not listening" % wport)
        # the positive controls
        rc, out, err = run_ctid(["--config", variant("loop2", "127.0.0.1:%d" % wport),
                                 "--check-config"])
        t.check(rc == 0, "--check-config, loopback without token: exit 0",
                "got %r, stderr %r" % (rc, err))
        rc, out, err = run_ctid(["--config", d.conf_path, "--check-config"])
        t.check(rc == 0, "--check-config, listen 0.0.0.0 with token: exit 0",
                "got %r, stderr %r" % (rc, err))
        t.check("listen = 0.0.0.0:%d" % d.listen_port in out and
                "auth_token = (set)" in out,
                "--check-config shows listen 0.0.0.0 and auth_token (set)", out)
        t.check(TOKEN not in out + err and PASSWORD not in out + err,
                "--check-config prints neither the token nor the gateway password",
                out)
    t.run("start-up: non-loopback listen needs auth_token", startup_rule)

    d.start()
    sink_a = t.rtp_sink("rtp-a")
    sp_a = t.sipp("uas_answer_wait_bye.xml", port=port["a"],
                  rtp_sink_port=sink_a.port).start()
    sp_un = t.sipp("uas_answer_wait_bye.xml", port=port["unlisted"]).start()
    sub = t.client(d.listen_port, "sub")
    c1 = t.client(d.listen_port, "c1")
    accepted = []      # res_ids the secure daemon accepted

    def listening_on_any(p):
        want = ":%04X" % p
        try:
            with open("/proc/net/tcp") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            return None
        return any(r.split()[1] == "00000000" + want and r.split()[3] == "0A"
                   for r in rows)

    def err_of(r):
        return (r or {}).get("error") or {}

    def check_401(r, what, msg=AUTH_FIRST, id=None):
        e = err_of(r)
        ok = t.check(r is not None and e.get("code") == 401 and "result" not in r,
                     "%s: error 401" % what,
                     _short(r) if r is not None else "no reply")
        if ok:
            t.check_eq(e.get("message"), msg, "%s: message" % what)
            if id is not None:
                t.check(r.get("id") == id, "%s: reply id %r" % (what, id), _short(r))
        return ok

    def before_auth():
        lo = listening_on_any(d.listen_port)
        t.check(lo is not False, "the daemon listens on 0.0.0.0:%d" % d.listen_port,
                "/proc/net/tcp has no such listener")
        r = sub.call("sys.subscribe")
        check_401(r, "sys.subscribe before auth")
        for method, params in (
                ("sys.ping", None),
                ("ext.notify_call.construct", {"to_uri": d.uri(port["a"]),
                                               "play_content": "short.wav",
                                               "user_data": "before-auth"}),
                ("ext.notify_call.exists",
                 {"res_id": "0.0.0-ext.notify_call-1"}),
                ("ext.notify_call.drop", {"res_id": "0.0.0-ext.notify_call-1"}),
                ("no.such.method", {})):
            i = c1.request(method, params)
            check_401(c1.wait_reply(i), "%s before auth" % method, id=i)
        # notifications: no reply, no effect
        n = len(c1.all_msgs())
        c1.request("ext.notify_call.construct", {
            "to_uri": d.uri(port["a"]), "play_content": "short.wav",
            "user_data": "notification-before-auth"}, notification=True)
        c1.request("sys.subscribe", notification=True)
        c1.request("sys.ping", notification=True)
        i = c1.request("sys.ping")
        r = c1.wait_reply(i)
        check_401(r, "sys.ping after the notifications", id=i)
        time.sleep(QUIET)
        got = c1.all_msgs()[n:]
        t.check(len(got) == 1 and got[0].get("id") == i,
                "the notifications before auth got no reply", _short(got))
        t.check(not sp_a.received("INVITE"),
                "construct notification before auth sent no INVITE",
                "%d INVITE(s) at gw_a" % len(sp_a.received("INVITE")))
        t.check(not c1.events(), "no event after the notifications", _short(c1.events()))
        # malformed auth params: -32602, not counted as wrong tokens
        for what, params in (("no params", None), ("empty object", {}),
                             ("token a number", {"token": 12345}),
                             ("token null", {"token": None}),
                             ("token an array", {"token": [TOKEN]}),
                             ("empty array", []), ("[null]", [None]),
                             ("[42]", [42])):
            i = c1.request("sys.auth", params)
            r = c1.wait_reply(i)
            e = err_of(r)
            if t.check(e.get("code") == -32602, "sys.auth %s: -32602" % what, _short(r)):
                t.check("token" in e.get("message", ""),
                        "sys.auth %s: message names token" % what, _short(r))
        # two wrong tokens (one char short, one long): 401 wrong token
        for what, tok in (("token minus its last char", NEAR[0]),
                          ("token plus one char", NEAR[1])):
            i = c1.request("sys.auth", {"token": tok})
            check_401(c1.wait_reply(i), "sys.auth %s" % what, msg=WRONG_MSG, id=i)
        r = c1.call("sys.ping")
        check_401(r, "sys.ping after wrong tokens")
        t.check(not c1.closed, "8 malformed + 2 wrong sys.auth: connection open")
    t.run("before sys.auth", before_auth)

    def auth_ok():
        r = c1.call("sys.auth", {"token": TOKEN})
        check_result(t, r, True, "sys.auth {token} with the right token: true")
        r = c1.call("sys.ping")
        check_result(t, r, "pong", "sys.ping after auth: pong")
        r = c1.call("ext.notify_call.exists", {"res_id": "0.0.0-ext.notify_call-1"})
        check_result(t, r, False, "exists after auth: false (not 401)")
        # per connection: sub is still unauthenticated
        r = sub.call("sys.ping")
        check_401(r, "another connection is still unauthenticated")
        r = sub.call("sys.auth", [TOKEN])
        check_result(t, r, True, "sys.auth [token] (positional): true")
        r = sub.call("sys.subscribe")
        check_result(t, r, True, "sys.subscribe after auth: true")
        # a wrong token after auth does not undo it
        r = sub.call("sys.auth", {"token": WRONG[3]})
        check_401(r, "wrong token after auth", msg=WRONG_MSG)
        r = sub.call("sys.ping")
        check_result(t, r, "pong", "still authenticated after a later wrong token")
    t.run("sys.auth", auth_ok)

    def three_wrong():
        c3 = t.client(d.listen_port, "c3")
        # three wrong tokens, then the right one and a ping, in one send
        data = "".join(json.dumps({"jsonrpc": "2.0", "id": 10 + k, "method": "sys.auth",
                                   "params": {"token": tok}}) + "\n"
                       for k, tok in enumerate(WRONG[:3]))
        data += json.dumps({"jsonrpc": "2.0", "id": 20, "method": "sys.auth",
                            "params": {"token": TOKEN}}) + "\n"
        data += json.dumps({"jsonrpc": "2.0", "id": 21, "method": "sys.ping"}) + "\n"
        c3.send_raw(data)
        deadline = time.time() + 5
        while time.time() < deadline and not c3.closed:
            time.sleep(0.05)
        t.check(c3.closed, "the daemon closed the connection after 3 wrong tokens")
        msgs = c3.all_msgs()
        for k in range(3):
            r = c3.wait_reply(10 + k, timeout=0.1)
            check_401(r, "pipelined wrong token #%d" % (k + 1), msg=WRONG_MSG, id=10 + k)
        t.check(not any(m.get("id") in (20, 21) for m in msgs),
                "the right token and ping sent after them were not answered",
                _short(msgs))
        # one at a time, waiting for each reply
        c4 = t.client(d.listen_port, "c4")
        for k in range(3):
            r = c4.call("sys.auth", {"token": WRONG[k]})
            check_401(r, "c4 wrong token #%d" % (k + 1), msg=WRONG_MSG)
        deadline = time.time() + 3
        while time.time() < deadline and not c4.closed:
            time.sleep(0.05)
        t.check(c4.closed, "c4 closed after its third wrong token")
        r = sub.call("sys.ping")
        check_result(t, r, "pong", "other connections unaffected")
    t.run("three wrong tokens", three_wrong)

    def real_calls():
        to_a = d.uri(port["a"])
        t0 = time.time()
        r = c1.call("ext.notify_call.construct", {"to_uri": to_a,
                                                  "play_content": "short.wav",
                                                  "play_repeat": 0, "user_data": "ua"})
        res_a, _ = check_construct_result(t, r, d.node_id, to_a, "ua",
                                          label="construct after auth")
        sink_auth = t.rtp_sink("rtp-auth")
        sp_auth = t.sipp("uas_auth.xml", port=port["auth"],
                         rtp_sink_port=sink_auth.port).start()
        to_auth = d.uri(port["auth"])
        c2 = t.client(d.listen_port, "c2")
        r = c2.call("sys.auth", {"token": TOKEN})
        check_result(t, r, True, "c2 authenticated")
        r = c2.call("ext.notify_call.construct", {"to_uri": to_auth,
                                                  "play_content": "short.wav",
                                                  "play_repeat": 0, "user_data": "uauth"})
        res_auth, _ = check_construct_result(t, r, d.node_id, to_auth, "uauth",
                                             label="construct via the digest gateway")
        if res_a:
            accepted.append(res_a)
            check_released(t, c1.wait_event(res_a, timeout=20), res_a, "ua", None,
                           "sys", cause=200, answered=True, t_before=t0,
                           t_after=time.time(), label="event of the call after auth")
            sp_a.check_exit(t, "gw_a: one call, ended with BYE")
            t.check(len(sp_a.received("INVITE")) == 1, "gw_a got exactly one INVITE",
                    "%d" % len(sp_a.received("INVITE")))
            sink_a.wait_quiet(0.5, 5)
            got = b"".join(p.payload for p in sink_a.snapshot())
            t.check(got == expected_payload(short, 8, 0),
                    "gw_a: the prompt played in full", "%d bytes" % len(got))
        if res_auth:
            accepted.append(res_auth)
            check_released(t, c2.wait_event(res_auth, timeout=20), res_auth, "uauth",
                           None, "sys", cause=200, answered=True,
                           label="event of the digest call")
            sp_auth.check_exit(t, "gw_auth: challenge answered, BYE received")
            inv = sp_auth.received("INVITE")
            val = header(inv[-1], "Proxy-Authorization") if len(inv) == 2 else None
            t.check(val is not None and digest_ok(digest_params(val), "INVITE",
                                                  "alice", PASSWORD),
                    "the configured password was used (digest checks out)",
                    "%d INVITEs, %r" % (len(inv), val))
        # the unauthenticated subscribe notification did nothing
        t.check(not c1.events(res_auth) and not c2.events(res_a),
                "events only to their creators (c1 is not subscribed)",
                _short(c1.events() + c2.events()))
    t.run("calls after auth", real_calls)

    def allow_list():
        to_un = d.uri(port["unlisted"])
        n_sub = len(sub.events())
        cases = [
            ("unlisted to_uri", to_un, "127.0.0.1:%d" % port["unlisted"]),
            ("unlisted with sip: prefix", "sip:" + to_un,
             "127.0.0.1:%d" % port["unlisted"]),
            ("array: listed, then unlisted", [d.uri(port["a"]), to_un],
             "127.0.0.1:%d" % port["unlisted"]),
            ("array: unlisted, then listed", [to_un, d.uri(port["long"])],
             "127.0.0.1:%d" % port["unlisted"]),
            ("listed host, default port 5060", "13800000000@127.0.0.1",
             "127.0.0.1:5060"),
        ]
        for what, to_uri, hp in cases:
            r = c1.call("ext.notify_call.construct", {"to_uri": to_uri,
                                                      "play_content": "short.wav",
                                                      "user_data": "refused"})
            e = err_of(r)
            if t.check(e.get("code") == -32602, "%s: -32602" % what, _short(r)):
                t.check("%s is not a configured gateway" % hp in e.get("message", ""),
                        "%s: message says %s is not a configured gateway" % (what, hp),
                        _short(e))
        time.sleep(QUIET)
        t.check(all(ev["params"].get("user_data") != "refused" for ev in c1.events()),
                "no event for the refused constructs (creator)", _short(c1.events()))
        t.check(len(sub.events()) == n_sub, "no event for them (subscriber)",
                _short(sub.events()[n_sub:]))
        t.check(not sp_un.received("INVITE"), "no INVITE reached the unlisted sipp",
                "%d INVITE(s)" % len(sp_un.received("INVITE")))
        t.check(not sp_a.received("INVITE")[1:],
                "no INVITE at a listed gateway of a refused array",
                "%d INVITE(s) at gw_a" % len(sp_a.received("INVITE")))
    t.run("gateway allow-list", allow_list)

    def bad_while_in_flight():
        sink = t.rtp_sink("rtp-long")
        sp = t.sipp("uas_answer_wait_bye.xml", port=port["long"],
                    rtp_sink_port=sink.port).start()
        to_l = d.uri(port["long"])
        r = c1.call("ext.notify_call.construct", {"to_uri": to_l,
                                                  "play_content": "long.wav",
                                                  "play_repeat": 1,
                                                  "user_data": "in-flight"})
        res_l, _ = check_construct_result(t, r, d.node_id, to_l, "in-flight",
                                          label="in-flight construct")
        if not res_l:
            return
        accepted.append(res_l)
        t.check(sink.wait_packets(10, 15), "in-flight call answered, RTP flowing")
        junk = t.client(d.listen_port, "junk")
        # 8 lines: 3 unparseable, 2 non-objects, a wrong token, a token
        # that is an object, the token + NUL (not JSON for jansson, or a
        # wrong token); each gets exactly one error reply
        junk.send_raw(b"\x00\xff\xfe garbage \x80\x81\n")
        junk.send_raw("not json at all\n{\"id\":1,\"method\":\n[1,2,3]\n42\n")
        junk.send_raw('{"id":2,"method":"sys.auth","params":{"token":"%s"}}\n' % WRONG[0])
        junk.send_raw('{"id":3,"method":"sys.auth","params":{"token":{"%s":1}}}\n'
                      % TOKEN)
        junk.send_raw('{"id":4,"method":"sys.auth","params":["%s\\u0000"]}\n' % TOKEN)
        msgs = junk.wait_count(8)
        codes = [(m.get("id"), err_of(m).get("code")) for m in msgs]
        t.check(codes[:7] == [(None, -32700)] * 3 + [(None, -32600)] * 2 +
                [(2, 401), (3, -32602)],
                "garbage, non-objects, wrong token, object token: the 7 right "
                "error replies", _short(codes))
        t.check(len(msgs) == 8 and "error" in msgs[7] and
                codes[7] in ((None, -32700), (4, 401)),
                "token + NUL char: -32700 or 401, not accepted", _short(msgs[7:]))
        r = junk.call("sys.ping", id=5)
        check_401(r, "after garbage, a nested token and token+NUL: still 401", id=5)
        # big and deep sys.auth params on another connection
        big = t.client(d.listen_port, "big")
        big_tok = (BIG_MARK * (60000 // len(BIG_MARK) + 1))[:60000]
        r = big.call("sys.auth", {"token": big_tok}, id=30)
        check_401(r, "sys.auth with a 60000-char token", msg=WRONG_MSG, id=30)
        deep = '{"jsonrpc":"2.0","id":31,"method":"sys.auth","params":{"token":%s%s}}\n' % (
            "[" * 30000, "]" * 30000)
        n = len(big.all_msgs())
        big.send_raw(deep)
        msgs = big.wait_count(n + 1)
        t.check(len(msgs) > n and "error" in msgs[n] and err_of(msgs[n]).get("code")
                in (-32700, -32600, -32602, 401),
                "sys.auth with 30000-deep nesting: an error reply", _short(msgs[n:]))
        many = json.dumps({"jsonrpc": "2.0", "id": 32, "method": "sys.auth",
                           "params": [WRONG[1]] + ["x"] * 5000})
        r = big.call("sys.auth", [WRONG[1]] + ["x"] * 5000, id=32)
        t.check(r is not None and err_of(r).get("code") in (401, -32602),
                "sys.auth with 5001 positional params: 401 or -32602 (%d bytes)"
                % len(many), _short(r))
        n = len(big.all_msgs())
        big.send_raw('{"jsonrpc":"2.0","id":33,"method":"sys.auth","params":'
                     '{"token":"%s"}}\n' % ("A" * 70000))
        msgs = big.wait_count(n + 1)
        t.check(len(msgs) > n and err_of(msgs[n]).get("code") == -32600,
                "sys.auth line over max_line: -32600", _short(msgs[n:]))
        if not big.closed:
            r = big.call("sys.auth", {"token": TOKEN}, id=34)
            check_result(t, r, True, "the same connection can still authenticate")
        else:
            t.fail("the same connection can still authenticate",
                   "closed after the oversize line (counts as a wrong token?)")
        ev = c1.wait_event(res_l, timeout=20)
        check_released(t, ev, res_l, "in-flight", None, "sys", cause=200,
                       answered=True, label="in-flight call's event")
        sp.check_exit(t, "in-flight call ended with BYE")
        sink.wait_quiet(0.5, 5)
        streams = sink.streams()
        if t.check(len(streams) == 1, "in-flight RTP: one stream", "%d" % len(streams)):
            check_rtp_stream(t, list(streams.values())[0],
                             expected_payload(long_, 8, 1), 8, "in-flight RTP")
        t.check(d.alive(), "the daemon is alive")
        r = sub.call("sys.ping")
        check_result(t, r, "pong", "sub still served")
    t.run("bad input while a call is in flight", bad_while_in_flight)

    def open_daemon():
        o = t.ctid(name="open", gateways=[gateway("gw_o", port["open"])],
                   conf={"allow_unlisted_gateways": "yes"})
        o.start()
        c = t.client(o.listen_port, "open")
        r = c.call("sys.ping")
        check_result(t, r, "pong", "no auth_token: sys.ping works without sys.auth")
        r = c.call("sys.auth", {"token": OPEN_MARK})
        check_result(t, r, True, "no auth_token: sys.auth returns true")
        r = c.call("sys.auth", [OPEN_MARK])
        check_result(t, r, True, "no auth_token: positional sys.auth returns true")
        to_un = o.uri(port["unlisted"])
        r = c.call("ext.notify_call.construct", {"to_uri": to_un,
                                                 "play_content": "short.wav",
                                                 "play_repeat": 0,
                                                 "user_data": "unlisted-ok"})
        res, _ = check_construct_result(t, r, o.node_id, to_un, "unlisted-ok",
                                        label="allow_unlisted_gateways = yes: construct")
        if res:
            check_released(t, c.wait_event(res, timeout=20), res, "unlisted-ok", None,
                           "sys", cause=200, answered=True,
                           label="allow_unlisted_gateways = yes: event")
            sp_un.check_exit(t, "the unlisted sipp got its one call")
            t.check(len(sp_un.received("INVITE")) == 1,
                    "exactly one INVITE there (the open daemon's)",
                    "%d" % len(sp_un.received("INVITE")))
        rc = o.stop()
        t.check(rc == 0, "open daemon exits 0 on SIGTERM", "exit %r" % (rc,))
        log = o.log_text()
        t.check(OPEN_MARK not in log, "open daemon's log lacks the token sent to it")
    t.run("no token, allow_unlisted_gateways = yes", open_daemon)

    def token_change():
        """Issue 10: a new auth_token (SIGHUP) ends the sessions the old
        one opened: their next request gets 401 until sys.auth with the
        new token, and a subscriber (which may never send another request)
        is closed."""
        rd = t.ctid(name="rotate", conf={"auth_token": TOKEN})
        rd.start()
        a = t.client(rd.listen_port, "rot-a")
        s = t.client(rd.listen_port, "rot-sub")
        for c in (a, s):
            r = c.call("sys.auth", {"token": TOKEN})
            check_result(t, r, True, "%s authenticated with the first token" % c.name)
        r = s.call("sys.subscribe")
        check_result(t, r, True, "rot-sub subscribed")
        r = a.call("sys.ping")
        check_result(t, r, "pong", "rot-a: ping before")
        rd.reload(rd.conf_text().replace("auth_token = %s" % TOKEN,
                                         "auth_token = %s" % NEW_TOKEN),
                  timeout=10)
        t.check("SIGHUP: auth_token changed" in rd.log_text(),
                "the token change is logged")
        r = a.call("sys.ping")
        check_401(r, "rot-a: ping after the token changed")
        r = a.call("ext.notify_call.exists", {"res_id": "0.0.0-ext.notify_call-1"})
        check_401(r, "rot-a: exists after the token changed")
        deadline = time.time() + 5
        while time.time() < deadline and not s.closed:
            time.sleep(0.05)
        t.check(s.closed, "the subscriber authenticated with the old token was "
                "closed")
        r = a.call("sys.auth", {"token": TOKEN})
        check_401(r, "rot-a: the old token is now wrong", msg=WRONG_MSG)
        r = a.call("sys.auth", {"token": NEW_TOKEN})
        check_result(t, r, True, "rot-a: sys.auth with the new token")
        r = a.call("sys.ping")
        check_result(t, r, "pong", "rot-a: served again after sys.auth")
        n = t.client(rd.listen_port, "rot-new")
        check_401(n.call("sys.ping"), "a new connection still needs sys.auth")
        rc = rd.stop()
        t.check(rc == 0, "rotate daemon exits 0 on SIGTERM", "exit %r" % (rc,))
        log = rd.log_text()
        t.check(TOKEN not in log and NEW_TOKEN not in log,
                "neither token is in its log")
    t.run("auth_token changed by SIGHUP", token_change)

    def no_secrets():
        rc = d.stop()
        t.check(rc == 0, "secure daemon exits 0 on SIGTERM", "exit %r" % (rc,))
        log = d.log_text()
        t.check(len(log) > 1000, "the log has content (%d bytes)" % len(log))
        t.check("wrong token" in log, "the log records the wrong tokens (not their text)")
        for what, s in ([("the auth token", TOKEN), ("the gateway password", PASSWORD),
                         ("the 60000-char token", BIG_MARK)] +
                        [("wrong token %d" % k, w) for k, w in enumerate(WRONG)] +
                        [("near token %d" % k, w) for k, w in enumerate(NEAR)]):
            t.check(s not in log, "the log does not contain %s" % what,
                    "found at offset %d" % log.find(s))
        t.check(TOKEN[:12] not in log, "nor a 12-char prefix of the token")
    t.run("no secret in the logs", no_secrets)
