#!/usr/bin/env python3
"""ctid integration test: gateway registration against a real registrar
(Kamailio, tests/integration/kamailio.py; issue 13, docs/operations.md
"Registration and health").

Gateway "trunk" registers as alice at Kamailio with register_expires 10.

A  ctid REGISTERs sip:alice@127.0.0.1, answers the 401 challenge, gets
   200: one "registered" log line; sys.gateways registered true, status
   200.
B  nua refreshes before expiry: a second REGISTER saved within 10 s.
C  Kamailio restarts (its bindings are lost): ctid's next REGISTER is
   challenged again and the binding is saved again.
D  SIGHUP with a wrong password: the registration restarts, is refused
   (401 after our credentials): the old binding is removed (expires 0),
   one log line with the next try time,
   sys.gateways registered false, status 401, and a construct to the
   gateway gets 503 with the reason; Kamailio sees a bounded number of
   REGISTERs (no tight loop).
E  SIGHUP with the right password again: registered; at shutdown ctid
   un-REGISTERs (Expires 0).
"""
import os
import re
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import HOST, Test, gateway, make_prompt  # noqa: E402
from kamailio import Kamailio  # noqa: E402

t = Test("gateway_register")


def gw_state(c, name):
    for g in c.result("sys.gateways") or []:
        if g.get("name") == name:
            return g
    return None


def wait_for(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


with t:
    make_prompt(t.path("prompts", "short.wav"), 0.5)
    kam = Kamailio(t, users={"alice": "secret"}, min_expires=10).start()
    gw = gateway("trunk", kam.port("udp"), username="alice",
                 password="secret", register="yes", register_expires=10)
    d = t.ctid(gateways=[gw])
    good_conf = None
    d.start()
    good_conf = d.conf_text()
    c = t.client(d.listen_port, "app")
    aor = "sip:alice@%s" % HOST

    def registered():
        t.check(d.wait_log("gateway trunk: registered as alice@%s (200" % HOST,
                           8), "ctid logs registered", d.log_tail(20))
        regs = kam.requests("REGISTER")
        t.check(len(regs) >= 2, "Kamailio saw the REGISTER and the answer to "
                "its challenge", regs)
        t.check(all(aor in (r.get("to") or "") for r in regs),
                "REGISTER To is the AOR %s" % aor, regs)
        t.check(kam.wait_log(r"KAM REG sip:alice@127\.0\.0\.1 saved", 5)
                is not None, "Kamailio saved the binding", kam.log_tail(10))
        t.check(kam.wait_log(r"KAM AUTH REGISTER ok user=alice", 1)
                is not None, "after digest auth", kam.log_tail(10))
        g = wait_for(lambda: (gw_state(c, "trunk") or {}).get("registered")
                     is True and gw_state(c, "trunk"), 5)
        t.check(bool(g), "sys.gateways: registered true", g)
        t.check_eq(g and g.get("status"), 200, "sys.gateways: status 200")
        t.check_eq(g and g.get("up"), None, "sys.gateways: up null (no pings)")
        t.check_eq(g and g.get("register_status"), 200,
                   "sys.gateways: register_status 200")
        t.check(g is not None and isinstance(g.get("register_time"), int)
                and abs(g["register_time"] - time.time()) < 30,
                "sys.gateways: register_time now", repr(g))
        t.check(g is not None and g.get("options_status") is None
                and g.get("options_time") is None,
                "sys.gateways: options_status/_time null (no pings)", repr(g))
    t.run("A: registers with digest auth", registered)

    def refresh():
        mark = kam.mark()
        t.check(kam.wait_log(r"KAM REG sip:alice@127\.0\.0\.1 saved", 12,
                             since=mark) is not None,
                "a refresh REGISTER saved within register_expires",
                kam.log_tail(10))
        t.check_eq(d.log_text().count("gateway trunk: registered as"), 1,
                   "no new log line for a refresh")
    t.run("B: refreshes before expiry", refresh)

    def restart():
        kam.restart()
        mark = kam.mark()
        t.check(kam.wait_log(r"KAM REG sip:alice@127\.0\.0\.1 saved", 25,
                             since=mark) is not None,
                "registered again after Kamailio restarts", kam.log_tail(15)
                + "\n---- ctid\n" + d.log_tail(15))
        g = wait_for(lambda: (gw_state(c, "trunk") or {}).get("registered")
                     is True and gw_state(c, "trunk"), 5)
        t.check(bool(g), "sys.gateways: registered true after the restart", g)
    t.run("C: re-registers after Kamailio restarts", restart)

    def wrong_password():
        text = good_conf.replace("password = secret", "password = wrong")
        mark0 = kam.mark()
        t.check(d.reload(text), "SIGHUP applied", d.log_tail(10))
        t.check(d.wait_log("gateway trunk: registration refused (401", 8),
                "the refusal is logged", d.log_tail(10))
        mark = kam.mark()
        regs = kam.requests("REGISTER", since=mark0)
        t.check(any(r.get("expires") == "0" for r in regs),
                "the old binding removed (expires 0) when its keys change",
                regs)
        line = [ln for ln in d.log_text().splitlines()
                if "gateway trunk: registration refused" in ln]
        t.check(bool(line) and re.search(r"next try at \d\d:\d\d:\d\dZ "
                                         r"\(in 10 s\)", line[0]),
                "the log line names the next try", line)
        g = wait_for(lambda: (gw_state(c, "trunk") or {}).get("registered")
                     is False and gw_state(c, "trunk"), 5)
        t.check(bool(g), "sys.gateways: registered false", g)
        t.check_eq(g and g.get("status"), 401, "sys.gateways: status 401")
        t.check_eq(g and g.get("register_status"), 401,
                   "sys.gateways: register_status 401")
        reply = c.call("ext.notify_call.construct", {
            "to_uri": d.uri(kam.port("udp")), "play_content": "short.wav"})
        err = (reply or {}).get("error") or {}
        t.check_eq(err.get("code"), 503, "construct: 503")
        t.check_eq(err.get("message"),
                   "no usable gateway: trunk registration refused (401)",
                   "construct: the reason")
        time.sleep(6)
        n = len(kam.requests("REGISTER", since=mark))
        t.check(n <= 1, "no tight loop: %d REGISTERs in 6 s after the "
                "refusal (the next try is 10 s later)" % n)
    t.run("D: a wrong password is reported, not retried in a loop",
          wrong_password)

    def unregister():
        t.check(d.reload(good_conf), "SIGHUP applied", d.log_tail(10))
        t.check(wait_for(lambda: d.log_text().count(
            "gateway trunk: registered as") == 2, 8),
            "registered again with the right password", d.log_tail(10))
        mark = kam.mark()
        t.check_eq(d.stop(), 0, "ctid exits 0")
        regs = kam.requests("REGISTER", since=mark)
        t.check(any(r.get("expires") == "0" or
                    "expires=0" in (r.get("contact") or "") for r in regs),
                "un-REGISTER (expires 0) at shutdown", regs)
    t.run("E: right password again; un-REGISTER at shutdown", unregister)
