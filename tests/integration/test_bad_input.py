#!/usr/bin/env python3
"""ctid integration test: bad and odd input never hurts anyone else (§2, §3, §6).

One call is in flight (3 s prompt, play_repeat 2) and a second, idle client is
connected (sys.subscribe'd, so it sees every event). On a third connection:
malformed JSON (-32700, id null), a non-object (-32600), an unknown method
(-32601; also one with a multi-byte character across the 200-byte cut of the
error message), invalid construct params (-32602 naming the param; a missing
prompt 404), issue 14's keys / request_key / progress refused naming the field
(keys.then naming a missing prompt: 404) with no INVITE and no event, an
oversize line (max_line = 4096: -32600, connection still usable), a line split
across two sends, three requests in one send, blank lines and \\r\\n, a
notification (no reply), "jsonrpc" omitted, and a positional-params construct
that really plays. Afterwards the in-flight call still completes normally with
its full payload, the idle client still answers, the daemon is alive, and no
rejected construct produced an event or an INVITE.
"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      check_rtp_stream, expected_payload, make_prompt, gateway,
                      free_port, _short, check_result)

MAX_LINE = 4096
LONG = 3.01
LONG_REPEAT = 2

t = Test("bad_input")
with t:
    long_ = make_prompt(t.path("prompts", "long.wav"), LONG, synth=("sine", "440"))
    short = make_prompt(t.path("prompts", "short.wav"), 1.03)
    os.symlink("/etc/passwd", t.path("prompts", "evil.wav"))

    gw = free_port("udp")
    d = t.ctid(gateways=[gateway("gw", gw)], conf={"max_line": MAX_LINE})
    d.start()
    sink = t.rtp_sink()
    sp = t.sipp("uas_answer_wait_bye.xml", port=gw, rtp_sink_port=sink.port,
                calls=2).start()
    to_uri = d.uri(gw)
    idle = t.client(d.listen_port, "idle")
    creator = t.client(d.listen_port, "creator")
    bad = t.client(d.listen_port, "bad")
    known_ids = []
    state = {}

    def start_call():
        r = idle.call("sys.subscribe")
        check_result(t, r, True, "idle client subscribed")
        reply = creator.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": "long.wav", "play_repeat": LONG_REPEAT,
            "user_data": "in-flight", "appid ": "extra key, ignored",
            "unknown_param": [1, 2, 3]})
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, "in-flight",
                                           label="in-flight construct (with unknown "
                                           "params)")
        if res_id:
            known_ids.append(res_id)
            state["inflight"] = res_id
            state["t0"] = time.time()
        t.check(sink.wait_packets(10, 15), "in-flight call answered, RTP flowing")
    t.run("call in flight", start_call)

    def nxt(client, n_before, timeout=5.0):
        msgs = client.wait_count(n_before + 1, timeout)
        return msgs[n_before] if len(msgs) > n_before else None

    def expect_error(what, data, code, param=None, id=None, data_param=None,
                     message=None):
        """Sends data (a dict -> JSON line, or raw str) on `bad` and checks the
        reply: the error code, the id (None: null), the param in the message,
        and the error's data: ipsc_info.node_id always, param for -32602
        (data_param when the message names a field of it: keys.max is
        param keys). message: a text the message must contain."""
        n = len(bad.all_msgs())
        if isinstance(data, dict):
            data = json.dumps(data) + "\n"
        bad.send_raw(data)
        r = nxt(bad, n)
        if not t.check(r is not None, "%s: a reply" % what, "none within 5 s"):
            return None
        err = r.get("error")
        ok = t.check(isinstance(err, dict) and err.get("code") == code,
                     "%s: error %d" % (what, code), _short(r))
        t.check("id" in r and r["id"] == id and type(r["id"]) == type(id),
                "%s: reply id %r" % (what, id), "id %r" % (r.get("id", "<absent>"),))
        t.check(r.get("jsonrpc") == "2.0" and "result" not in r,
                "%s: jsonrpc 2.0, no result" % what, _short(r))
        if ok and param is not None:
            msg = err.get("message", "")
            t.check(isinstance(msg, str) and param in msg,
                    "%s: message names %s (%r)" % (what, param, msg),
                    "message %r" % (msg,))
        data = err.get("data") if isinstance(err, dict) else None
        info = data.get("ipsc_info") if isinstance(data, dict) else None
        t.check(isinstance(info, dict) and info.get("node_id") == d.node_id,
                "%s: data.ipsc_info.node_id %s" % (what, d.node_id), _short(r))
        if ok and param is not None and code == -32602:
            want = data_param or param
            t.check(data.get("param") == want,
                    "%s: data.param %s" % (what, want), _short(r))
        if ok and message is not None:
            msg = err.get("message", "")
            t.check(isinstance(msg, str) and message in msg,
                    "%s: message has %r" % (what, message),
                    "message %r" % (msg,))
        return r

    def framing_errors():
        expect_error("malformed JSON", '{"jsonrpc":"2.0","id":1,"method":\n', -32700)
        expect_error("not an object (42)", "42\n", -32600)
        expect_error("unknown method", {"jsonrpc": "2.0", "id": 3,
                                        "method": "no.such.method", "params": {}},
                     -32601, id=3)
        # issue 10 bug 5: a 3-byte character across the 200-byte cut of the
        # message used to make the reply unbuildable and close the connection
        cut = "a" * 199 + "\u4e2d" + "b" * 50
        r = expect_error("unknown method with a character at the 200-byte cut",
                         {"jsonrpc": "2.0", "id": 4, "method": cut}, -32601, id=4)
        if r is not None:
            msg = r["error"].get("message", "")
            t.check(msg == "method not found: " + "a" * 199,
                    "the message is cut before the split character", _short(msg))
        t.check(not bad.closed, "the connection is still open after it")
    t.run("JSON-RPC errors", framing_errors)

    def construct_errors():
        base = {"to_uri": to_uri, "play_content": "short.wav"}
        rel_passwd = os.path.relpath("/etc/passwd", d.prompt_dir)
        cases = [
            ("missing to_uri", {"play_content": "short.wav"}, -32602, "to_uri"),
            ("to_uri a number", dict(base, to_uri=13800000000), -32602, "to_uri"),
            ("to_uri with CR/LF", dict(base, to_uri=to_uri + "\r\nX-Injected: 1"),
             -32602, "to_uri"),
            ("to_uri with <>", dict(base, to_uri="<sip:%s>" % to_uri), -32602, "to_uri"),
            ("to_uri with a space", dict(base, to_uri="1380 0000000@127.0.0.1:%d" % gw),
             -32602, "to_uri"),
            ("to_uri with quotes", dict(base, to_uri='"13800000000"@127.0.0.1:%d' % gw),
             -32602, "to_uri"),
            ("to_uri empty array", dict(base, to_uri=[]), -32602, "to_uri"),
            ("to_uri empty string", dict(base, to_uri=""), -32602, "to_uri"),
            ("play_content missing", {"to_uri": to_uri}, -32602, "play_content"),
            ("play_content type 4 item", dict(base, play_content=[
                ["2025-13-02 03:04:05", 4, ""]]), -32602, "play_content"),
            ("play_content ../../etc/passwd", dict(base, play_content="../../etc/passwd"),
             -32602, "play_content"),
            ("play_content %s (exists, outside)" % rel_passwd,
             dict(base, play_content=rel_passwd), -32602, "play_content"),
            ("play_content /etc/passwd", dict(base, play_content="/etc/passwd"),
             -32602, "play_content"),
            ("play_content symlink out of prompt_dir", dict(base, play_content="evil.wav"),
             -32602, "play_content"),
            ("play_content 31 items", dict(base, play_content=[["short.wav", 0, ""]] * 31),
             -32602, "play_content"),
            ("play_content a number", dict(base, play_content=7), -32602, "play_content"),
            ("prompt file missing", dict(base, play_content="no-such-prompt.wav"), 404,
             None),
            ("play_repeat -1", dict(base, play_repeat=-1), -32602, "play_repeat"),
            ("play_repeat \"1.5\"", dict(base, play_repeat="1.5"), -32602, "play_repeat"),
            ("play_repeat 1.5", dict(base, play_repeat=1.5), -32602, "play_repeat"),
            ("max_ring_seconds 0", dict(base, max_ring_seconds=0), -32602,
             "max_ring_seconds"),
            ("max_ring_seconds \"30s\"", dict(base, max_ring_seconds="30s"), -32602,
             "max_ring_seconds"),
            # user_data takes any JSON value now (issue 12); its 4096-byte
            # bound needs a line over this test's max_line: tests/unit/test_api.c
            ("from_uri 5", dict(base, from_uri=5), -32602, "from_uri"),
            ("from_uri with CR/LF", dict(base, from_uri="ctid\r\nX-Injected: 1"), -32602,
             "from_uri"),
        ]
        for i, (what, params, code, param) in enumerate(cases):
            rid = 1000 + i
            r = expect_error("construct " + what, {"jsonrpc": "2.0", "id": rid,
                                                   "method": "ext.notify_call.construct",
                                                   "params": params}, code, param, id=rid)
            if what == "play_content type 4 item" and r is not None:
                msg = (r.get("error") or {}).get("message", "")
                t.check("4" in msg, "construct %s: message names the type (4)" % what,
                        "message %r" % (msg,))
    t.run("construct param errors", construct_errors)

    def issue14_errors():
        # issue 14's named params: each bad value is refused naming the
        # field, and nothing else happens: no INVITE, no event, the
        # connection stays open and the daemon answers
        base = {"to_uri": to_uri, "play_content": "short.wav"}
        invites = len(sp.received("INVITE"))
        n_idle = len(idle.events())
        cases = [
            ("keys.max 0", dict(base, keys={"max": 0}), -32602, "keys.max",
             "keys", "must be between 1 and 32"),
            ("keys.max 33", dict(base, keys={"max": 33}), -32602, "keys.max",
             "keys", "must be between 1 and 32"),
            ("keys.wait_seconds 61", dict(base, keys={"wait_seconds": 61}),
             -32602, "keys.wait_seconds", "keys", "must be between 0 and 60"),
            ("keys with an unknown field", dict(base, keys={"max": 1,
                                                            "digits": 4}),
             -32602, "keys", "keys", 'unknown field "digits"'),
            ("keys.end \"x\"", dict(base, keys={"end": "x"}), -32602,
             "keys.end", "keys", "must be one key"),
            ("keys.then naming a missing file",
             dict(base, keys={"then": "no-such-thanks.wav"}), 404, None, None,
             "keys.then: prompt not found"),
            ("request_key of 129 bytes", dict(base, request_key="k" * 129),
             -32602, "request_key", None, "longer than 128 bytes"),
            ("request_key empty", dict(base, request_key=""), -32602,
             "request_key", None, None),
            ("progress \"yes\"", dict(base, progress="yes"), -32602,
             "progress", None, "must be true or false"),
        ]
        for i, (what, params, code, param, data_param, message) in \
                enumerate(cases):
            rid = 2000 + i
            expect_error("construct " + what,
                         {"jsonrpc": "2.0", "id": rid,
                          "method": "ext.notify_call.construct",
                          "params": params}, code, param, id=rid,
                         data_param=data_param, message=message)
        t.check(not bad.closed, "the connection is still open")
        # an explicit id: bad's automatic ids (1, 2, ...) would meet the
        # raw requests' id 3 above
        check_result(t, bad.call("sys.ping", None, id=2100), "pong",
                     "the same connection still answers ping")
        check_result(t, idle.call("sys.ping", None), "pong",
                     "the idle client still answers ping")
        time.sleep(1.0)  # an INVITE or an event would have come by now
        t.check_eq(len(sp.received("INVITE")), invites,
                   "the gateway saw no new INVITE (%d before)" % invites)
        t.check_eq(len(idle.events()), n_idle,
                   "the subscriber saw no new event")
        t.check(d.alive(), "ctid is alive")
    t.run("issue 14 param errors (keys, request_key, progress)",
          issue14_errors)

    def oversize():
        pad = "x" * (10000 - 80)
        line = '{"jsonrpc":"2.0","id":50,"method":"sys.ping","params":{"pad":"%s"}}' % pad
        t.check(len(line) > MAX_LINE, "harness: the line is %d bytes" % len(line))
        r = expect_error("line of %d bytes (max_line %d)" % (len(line), MAX_LINE),
                         line + "\n", -32600)
        if r is not None:
            t.log("oversize reply: %s" % _short(r))
        r = bad.call("sys.ping", None, id=51)
        check_result(t, r, "pong",
                     "sys.ping on the same connection after the oversize line")
        # an oversize line that arrives in pieces
        n = len(bad.all_msgs())
        bad.send_raw(line[:3000])
        time.sleep(0.2)
        bad.send_raw(line[3000:7000])
        time.sleep(0.2)
        bad.send_raw(line[7000:] + "\n")
        r = nxt(bad, n)
        t.check(r is not None and (r.get("error") or {}).get("code") == -32600,
                "oversize line sent in three pieces: -32600", repr(r))
        r = bad.call("sys.ping", None, id=52)
        check_result(t, r, "pong", "sys.ping after the piecewise oversize line")
        n = len(bad.all_msgs())
        time.sleep(0.3)
        extra = bad.all_msgs()[n:]
        t.check(not extra, "nothing else was replied for the discarded lines",
                _short(extra))
    t.run("oversize line", oversize)

    def framing_ok():
        line = json.dumps({"jsonrpc": "2.0", "id": 60, "method": "sys.ping"}) + "\n"
        n = len(bad.all_msgs())
        bad.send_raw(line[:17])
        time.sleep(0.5)
        t.check(len(bad.all_msgs()) == n, "no reply to half a line")
        bad.send_raw(line[17:])
        r = bad.wait_reply(60)
        check_result(t, r, "pong", "a line split across two sends is one request")

        n = len(bad.all_msgs())
        bad.send_raw("".join(json.dumps(o) + "\n" for o in (
            {"jsonrpc": "2.0", "id": 70, "method": "sys.ping"},
            {"jsonrpc": "2.0", "id": 71, "method": "ext.notify_call.exists",
             "params": {"res_id": "%s-ext.notify_call-1" % d.node_id}},
            {"jsonrpc": "2.0", "id": 72, "method": "sys.ping"})))
        msgs = bad.wait_count(n + 3, 5)[n:]
        t.check([m.get("id") for m in msgs] == [70, 71, 72],
                "three requests in one send: three replies in order",
                _short([m.get("id") for m in msgs]))
        if len(msgs) == 3:
            t.check(msgs[0].get("result") == "pong" and msgs[1].get("result") is False
                    and msgs[2].get("result") == "pong",
                    "three requests in one send: the right results", _short(msgs))

        n = len(bad.all_msgs())
        bad.send_raw('\n\r\n   \n{"jsonrpc":"2.0","id":73,"method":"sys.ping"}\r\n')
        msgs = bad.wait_count(n + 1, 5)[n:]
        time.sleep(0.3)
        msgs = bad.all_msgs()[n:]
        t.check(len(msgs) == 1 and msgs[0].get("id") == 73 and
                msgs[0].get("result") == "pong",
                "blank lines ignored, \\r\\n accepted", _short(msgs))

        n = len(bad.all_msgs())
        bad.send_raw('{"jsonrpc":"2.0","method":"sys.ping"}\n')
        bad.send_raw('{"jsonrpc":"2.0","method":"ext.notify_call.construct",'
                     '"params":{"play_content":"short.wav"}}\n')
        bad.send_raw('{"id":81,"method":"sys.ping"}\n')
        r = bad.wait_reply(81)
        time.sleep(0.3)
        msgs = bad.all_msgs()[n:]
        t.check(r is not None and r.get("result") == "pong" and
                r.get("jsonrpc") == "2.0",
                "\"jsonrpc\" omitted: answered, reply carries jsonrpc 2.0", repr(r))
        t.check(len(msgs) == 1, "notifications (ping, bad construct) got no reply",
                _short(msgs))
    t.run("framing that must work", framing_ok)

    def positional():
        reply = bad.call("ext.notify_call.construct",
                         [None, to_uri, "short.wav", 0, 30, "positional"])
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, "positional",
                                           label="positional construct")
        if not res_id:
            return
        known_ids.append(res_id)
        ev = bad.wait_event(res_id, timeout=20)
        check_released(t, ev, res_id, "positional", None, "sys", cause=200,
                       answered=True)
        state["positional_src"] = True
    t.run("positional params", positional)

    def aftermath():
        res_id = state.get("inflight")
        if not t.check(res_id is not None, "the in-flight call was constructed"):
            return
        ev = creator.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "in-flight", None, "sys", cause=200,
                       answered=True, t_before=state["t0"], t_after=time.time())
        sp.check_exit(t, "sipp: both calls ended with the daemon's BYE")
        sink.wait_quiet(0.5, 5)
        streams = sorted(sink.streams().values(), key=len)
        t.check(len(streams) == 2, "two RTP streams (in-flight, positional)",
                "%d" % len(streams))
        if len(streams) == 2:
            check_rtp_stream(t, streams[1], expected_payload(long_, 8, LONG_REPEAT), 8,
                             "in-flight RTP (3 plays)")
            check_rtp_stream(t, streams[0], expected_payload(short, 8, 0), 8,
                             "positional RTP (play_repeat 0 at position 3)")
        r = idle.call("sys.ping")
        check_result(t, r, "pong", "idle client still answers")
        r = bad.call("sys.ping")
        check_result(t, r, "pong", "the abused connection still answers")
        t.check(d.alive(), "ctid is alive")
        time.sleep(0.5)
        evs = idle.events()
        ids = [e.get("params", {}).get("res_id") for e in evs]
        t.check(sorted(ids) == sorted(known_ids),
                "events only for the two real calls, one each (subscriber saw %d)" %
                len(evs), _short(ids))
        t.check(not bad.bad_lines and not idle.bad_lines and not creator.bad_lines,
                "every line the daemon wrote is JSON",
                _short(bad.bad_lines + idle.bad_lines + creator.bad_lines))
        invites = sp.received("INVITE")
        t.check(len(invites) == 2, "only the two real calls reached the gateway",
                "%d INVITEs" % len(invites))
        t.check(not any("X-Injected" in m for d_, m in sp.messages()),
                "no injected header ever reached SIP")
    t.run("the others are unharmed", aftermath)

    t.section("shutdown")
    rc = d.stop()
    t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % (rc,))
