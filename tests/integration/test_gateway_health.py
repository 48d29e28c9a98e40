#!/usr/bin/env python3
"""ctid integration test: OPTIONS health checks of gateways (issue 13,
docs/operations.md "Registration and health").

Gateway "ping" has options_interval = 1 and, at first, nothing on its
port; gateway "live" is not probed and has a sipp callee.

A  two failed pings mark "ping" down: one log line; sys.gateways says
   up false, "live" up null.
B  a construct to "ping" alone gets 503 "no usable gateway: ping down
   (OPTIONS)"; with to_uri [ping, live] the down one is skipped and the
   call goes to "live".
C  a sipp UAS answering OPTIONS on ping's port: "ping" up (one log line,
   sys.gateways up true, status 200), then the construct to "ping" is
   placed again.
D  sipp stopped: down again after two missed pings, one line; no line
   per ping while it stays down or up.
E  metrics: ctid_gateway_up{gateway="ping"}, no sample for "live";
   ctid_gateway_calls; ctid_gateway_failovers_total. ctictl gateways
   prints both gateways, with the per-concern REGISTER and OPTIONS
   columns (options_status/options_time of sys.gateways, also checked
   in A and C).
F  a gateway whose host is a DNS name ("localhost"): what it resolves to
   is logged once (looked up off the main loop).
"""
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (HOST, Test, check_construct_result, free_port,  # noqa: E402
                      gateway, http_get, make_prompt)

t = Test("gateway_health")


def gw_state(c, name):
    r = c.result("sys.gateways")
    for g in r or []:
        if g.get("name") == name:
            return g
    return None


def wait_state(c, name, key, want, timeout=8.0):
    deadline = time.time() + timeout
    g = None
    while time.time() < deadline:
        g = gw_state(c, name)
        if g is not None and g.get(key) is want:
            return g
        time.sleep(0.1)
    return g


def _wait(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


with t:
    make_prompt(t.path("prompts", "short.wav"), 0.5)
    ping_port, live_port = free_port("udp"), free_port("udp")
    named_port = free_port("udp")
    metrics_port = free_port("tcp")
    d = t.ctid(gateways=[gateway("ping", ping_port, options_interval=1),
                         gateway("live", live_port),
                         gateway("named", named_port, host="localhost")],
               conf={"metrics_listen": "%s:%d" % (HOST, metrics_port)})
    d.start()
    c = t.client(d.listen_port, "app")

    def log_count(text):
        return d.log_text().count(text)

    def down_first():
        t.check(d.wait_log("gateway ping: down", 8),
                "ping: a down line after two failed pings", d.log_tail(20))
        g = wait_state(c, "ping", "up", False)
        t.check(g is not None and g.get("up") is False,
                "sys.gateways: ping up false", g)
        t.check_eq(g and g.get("registered"), None,
                   "sys.gateways: ping registered null (not registering)")
        t.check_eq(g and g.get("address"), "%s:%d" % (HOST, ping_port),
                   "sys.gateways: ping address")
        t.check_eq(g and g.get("transport"), "udp", "sys.gateways: transport")
        t.check(g is not None and g.get("options_status") in (None, 408, 503)
                and isinstance(g.get("options_time"), int)
                and abs(g["options_time"] - time.time()) < 30,
                "sys.gateways: ping options_status (none, or our stack's "
                "408/503) and options_time now", repr(g))
        t.check(g is not None and g.get("register_status") is None
                and g.get("register_time") is None,
                "sys.gateways: ping register_status/_time null", repr(g))
        live = gw_state(c, "live")
        t.check(live is not None and live.get("up") is None,
                "sys.gateways: live up null (not probed)", live)
        t.check(live is not None and all(
            k in live and live[k] is None for k in (
                "register_status", "register_time", "options_status",
                "options_time")),
            "sys.gateways: live register_*/options_* null", repr(live))
    t.run("A: down after two failed pings", down_first)

    def skipped():
        reply = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(ping_port), "play_content": "short.wav"})
        err = (reply or {}).get("error") or {}
        t.check_eq(err.get("code"), 503, "construct to a down gateway: 503")
        t.check_eq(err.get("message"), "no usable gateway: ping down (OPTIONS)",
                   "construct to a down gateway: the reason")
        sp = t.sipp("uas_busy.xml", port=live_port).start()
        reply = c.call("ext.notify_call.construct", {
            "to_uri": [d.uri(ping_port), d.uri(live_port)],
            "play_content": "short.wav", "user_data": "skip"})
        res_id, _ = check_construct_result(t, reply, d.node_id,
                                           d.uri(live_port), "skip",
                                           label="[ping, live]")
        if res_id:
            ev = c.wait_event(res_id, timeout=20)
            t.check(ev is not None, "[ping, live]: the call ended", ev)
        sp.check_exit(t, "live's sipp took the call")
    t.run("B: a down gateway is skipped; 503 when none is left", skipped)

    opts = {}

    def up():
        opts["sipp"] = t.sipp("uas_options.xml", port=ping_port,
                              calls=100000, timeout=120).start()
        t.check(d.wait_log("gateway ping: up (OPTIONS answered 200)", 8),
                "ping: an up line once sipp answers", d.log_tail(20))
        g = wait_state(c, "ping", "up", True)
        t.check(g is not None and g.get("up") is True,
                "sys.gateways: ping up true", g)
        t.check_eq(g and g.get("status"), 200, "sys.gateways: status 200")
        t.check(isinstance(g and g.get("status_time"), int)
                and abs(g["status_time"] - time.time()) < 30,
                "sys.gateways: status_time is now (epoch seconds)", g)
        t.check_eq(g and g.get("options_status"), 200,
                   "sys.gateways: options_status 200")
        t.check(g is not None and g.get("options_time") == g.get("status_time"),
                "sys.gateways: options_time is the change's time", repr(g))
        t.check_eq(g and g.get("register_status"), None,
                   "sys.gateways: register_status still null")
        time.sleep(3.5)   # a few more pings: no more lines
        t.check_eq(log_count("gateway ping: up"), 1,
                   "one up line, none per ping")
    t.run("C: up when sipp answers OPTIONS", up)

    def metrics_and_ctictl():
        _, _, body = http_get(metrics_port, "/metrics")
        t.check('ctid_gateway_up{gateway="ping"} 1' in body,
                "metrics: ctid_gateway_up ping 1", body[-1500:])
        t.check('ctid_gateway_up{gateway="live"}' not in body,
                "metrics: no ctid_gateway_up sample for an unprobed gateway")
        t.check('ctid_gateway_registered{' not in body,
                "metrics: no ctid_gateway_registered sample (none registers)")
        t.check('ctid_gateway_calls{gateway="live"} 0' in body,
                "metrics: ctid_gateway_calls live 0")
        t.check('ctid_gateway_failovers_total{gateway="ping"} 0' in body,
                "metrics: ctid_gateway_failovers_total ping 0")
        ctictl = os.path.join(os.path.dirname(t.ctid_bin), "ctictl")
        r = subprocess.run([ctictl, "--connect", "%s:%d" % (HOST, d.listen_port),
                            "gateways"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        out = r.stdout.decode()
        t.check_eq(r.returncode, 0, "ctictl gateways: exit 0")
        t.check(re.search(r"^NAME +ADDRESS +TRANSPORT +UP +REGISTERED", out,
                          re.M) is not None, "ctictl gateways: header", out)
        t.check(re.search(r"^NAME .* FAILOVERS +REGISTER +OPTIONS$", out,
                          re.M) is not None,
                "ctictl gateways: REGISTER and OPTIONS columns", out)
        t.check(re.search(r"^ping +127\.0\.0\.1:%d +udp +yes +- +200 " %
                          ping_port, out, re.M) is not None,
                "ctictl gateways: ping up, status 200", out)
        t.check(re.search(r"^ping .* +- +200@\d{4}-\d\d-\d\dT\d\d:\d\d:"
                          r"\d\dZ$", out, re.M) is not None,
                "ctictl gateways: ping REGISTER -, OPTIONS 200@time", out)
        t.check(re.search(r"^live +127\.0\.0\.1:%d +udp +- +- +- " %
                          live_port, out, re.M) is not None,
                "ctictl gateways: live not probed", out)
        t.check(re.search(r"^live .* +- +-$", out, re.M) is not None,
                "ctictl gateways: live REGISTER -, OPTIONS -", out)
    t.run("E: metrics and ctictl gateways", metrics_and_ctictl)

    def down_again():
        opts["sipp"].close()
        t.check(d.wait_log("gateway ping: down", 1) and
                _wait(lambda: log_count("gateway ping: down") == 2, 8),
                "ping: down again after sipp stops", d.log_tail(20))
        g = wait_state(c, "ping", "up", False)
        t.check(g is not None and g.get("up") is False,
                "sys.gateways: ping up false again", g)
        time.sleep(3)
        t.check_eq(log_count("gateway ping: down"), 2,
                   "one down line per change, none per ping")
    t.run("D: down after two missed pings", down_again)

    def resolved():
        want = "gateway named: localhost resolves to 127.0.0.1:%d (A)" % named_port
        t.check(d.wait_log(want, 20), "the resolved address is logged",
                d.log_tail(20))
        t.check_eq(d.log_text().count("gateway named: localhost resolves"), 1,
                   "logged once")
        t.check("gateway ping: 127.0.0.1 resolves" not in d.log_text(),
                "a numeric host is not looked up")
    t.run("F: a DNS-name host's addresses logged once", resolved)

