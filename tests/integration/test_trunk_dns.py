#!/usr/bin/env python3
"""ctid integration test: a gateway `host` that is a DNS name (issue 13:
"without a `port` it is resolved the way RFC 3263 says (SRV, then
A/AAAA); the resolved addresses appear in the log once").

A DNS server of the test (dnsharness.py) answers for the zone trunk.test
on 127.x.y.z:53; ctid runs in a private mount namespace (unshare -m) with
a resolv.conf naming that server bind-mounted over /etc/resolv.conf, so
both glibc (the log line's thread) and sofia-sip's own resolver (sres,
which reads /etc/resolv.conf and never /etc/hosts) ask it. Without
unshare or root this test FAILS (it cannot show anything otherwise).

A  udp trunk "trunk.test", no port: SRV _sip._udp.trunk.test gives
   gw1:P1 (priority 10) and gw2:P2 (priority 20); "13800000000@srv" is
   answered by the sipp on P1 and plays; the start-up log line names both
   SRV targets, once; sofia asked NAPTR, then SRV, then gw1's A.
B  the same with nothing on the priority-10 port: the ICMP refusal makes
   sofia try the priority-20 target (RFC 3263 4.3) within the same
   INVITE; the call is answered there; the event is an answered call.
C  tcp trunk: SRV _sip._tcp.HOST is used (a _sip._udp record for the
   same name points at a port with nothing on it); the INVITE comes over
   TCP.
D  no SRV, only an A record: HOST:5060 (the A record names another
   127.x.y.z, so its port 5060 is free); SRV was asked before A.
E  a name that does not resolve: the construct is accepted (resolving
   is the SIP stack's, when it sends), the call ends "dial error", cause
   503, with "503 DNS Error (from our stack)" in the log; the start-up
   line says the host does not resolve; the daemon goes on (a call to A
   again).
F  OPTIONS pings (and REGISTER: the same request URI) to a DNS-named
   gateway without a port go where its SRV record says, like INVITEs; the
   gateway is up.
G  a tls trunk whose name does not resolve: sofia asks SRV _sips._tcp,
   then A; "dial error" 503, and the log says the name did not resolve
   instead of blaming a TLS certificate.
H  a name only /etc/hosts knows (with a port): the start-up line, from
   glibc, shows its address, but the SIP stack asks DNS only and the call
   ends "dial error" 503 DNS Error (docs/configuration.md says so).
I  the start-up line resolves what the SIP stack will: with a port, A/AAAA
   only (no SRV listed); with a proxy, the proxy (a call through a proxy
   named by SRV reaches its target).
"""
import os
import random
import re
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      make_prompt, gateway, header, free_port)
from dnsharness import DnsServer, ns_check, ns_wrap  # noqa: E402

ZONE = "trunk.test"


def call(t, c, to_uri, label, scenario="uas_answer_wait_bye.xml", **sipp_kw):
    """One call to a sipp (None: no sipp); (sipp, event)."""
    sp = t.sipp(scenario, **sipp_kw).start() if sipp_kw.get("port") else None
    reply = c.call("ext.notify_call.construct", {
        "to_uri": to_uri, "play_content": "notice.wav", "play_repeat": 0})
    res_id, _ = check_construct_result(t, reply, "0.0.0", to_uri, None,
                                       label=label)
    ev = c.wait_event(res_id, timeout=45) if res_id else None
    return sp, res_id, ev


def tcp_query(host, name, qtype=33):
    """One query over TCP to the harness (its TCP side is checked too)."""
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(x)]) + x.encode() for x in name.split("."))
    q += b"\0" + struct.pack("!HH", qtype, 1)
    with socket.create_connection((host, 53), timeout=5) as s:
        s.sendall(struct.pack("!H", len(q)) + q)
        n = struct.unpack("!H", s.recv(2, socket.MSG_WAITALL))[0]
        r = s.recv(n, socket.MSG_WAITALL)
    return struct.unpack("!HHHH", r[:8])


def main(t):
    make_prompt(t.path("prompts", "notice.wav"), 0.3)
    try:
        dns = t.add_cleanup(DnsServer(ZONE).start())
    except RuntimeError as e:
        t.fail("the test's DNS server listens on 127.x.y.z:53 (this test "
               "needs root: it cannot work without it)", str(e))
        return
    t.log("DNS server on %s:53" % dns.host)
    p = {k: free_port("udp") for k in
         ("a1", "a2", "dead", "b2", "c", "c_udp", "f", "h", "i")}
    # A: two SRV targets, by priority
    dns.srv("_sip._udp.trunk.test", 10, 0, p["a1"], "gw1.trunk.test")
    dns.srv("_sip._udp.trunk.test", 20, 0, p["a2"], "gw2.trunk.test")
    dns.a("gw1.trunk.test", "127.0.0.1").a("gw2.trunk.test", "127.0.0.1")
    # B: the first target dead
    dns.srv("_sip._udp.dead.trunk.test", 10, 0, p["dead"],
            "gw1.dead.trunk.test")
    dns.srv("_sip._udp.dead.trunk.test", 20, 0, p["b2"],
            "gw2.dead.trunk.test")
    dns.a("gw1.dead.trunk.test", "127.0.0.1")
    dns.a("gw2.dead.trunk.test", "127.0.0.1")
    # C: tcp; a udp SRV for the same name to a port with nothing on it
    dns.srv("_sip._tcp.tcp.trunk.test", 10, 0, p["c"], "gw.tcp.trunk.test")
    dns.srv("_sip._udp.tcp.trunk.test", 10, 0, p["c_udp"],
            "gw.tcp.trunk.test")
    dns.a("gw.tcp.trunk.test", "127.0.0.1")
    # D: an A record only, at an address whose 5060 nobody else has
    d_addr = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 255),
                               random.randint(2, 254))
    dns.a("aonly.trunk.test", d_addr)
    # F: OPTIONS pings by SRV
    dns.srv("_sip._udp.ping.trunk.test", 10, 0, p["f"], "gw.ping.trunk.test")
    dns.a("gw.ping.trunk.test", "127.0.0.1")
    # E: nosuch.trunk.test has no record at all
    # I: an outbound proxy named by SRV
    dns.srv("_sip._udp.proxy.trunk.test", 10, 0, p["i"],
            "gw.proxy.trunk.test")
    dns.a("gw.proxy.trunk.test", "127.0.0.1")

    def harness():
        t.check_eq(tcp_query(dns.host, "_sip._udp.trunk.test")[1:4:2],
                   (0x8500, 2), "harness: an SRV query over TCP is answered "
                   "(QR AA RD, 2 records)")
        t.check_eq(tcp_query(dns.host, "nosuch.trunk.test", 1)[1] & 0xF, 3,
                   "harness: NXDOMAIN for a name with no record")
        t.check_eq(tcp_query(dns.host, "trunk.test", 35)[1:4:2], (0x8500, 0),
                   "harness: NAPTR: NOERROR, no answer")
    t.run("harness", harness)

    rc = dns.write_resolv_conf(t.path("resolv.conf"))
    # H: a name only /etc/hosts knows
    hosts = t.path("hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n::1 localhost\n"
                "127.0.0.1 hostsonly.trunk.test\n")
    ok, detail = ns_check(rc)
    if not t.check(ok, "ctid can run in a private mount namespace with the "
                   "test's resolv.conf over /etc/resolv.conf (needs root and "
                   "unshare(1) of util-linux; this test cannot work "
                   "without it)", detail):
        return

    gws = [gateway("srv", None, host=ZONE),
           gateway("dead", None, host="dead." + ZONE),
           gateway("tcp", None, host="tcp." + ZONE, transport="tcp"),
           gateway("aonly", None, host="aonly." + ZONE),
           gateway("nosuch", None, host="nosuch." + ZONE),
           gateway("ping", None, host="ping." + ZONE, options_interval=1),
           gateway("tlsname", None, host="tls." + ZONE, transport="tls"),
           gateway("hostsonly", p["h"], host="hostsonly." + ZONE),
           gateway("srvport", p["a1"], host=ZONE),
           gateway("viaproxy", None, host="carrier.invalid",
                   proxy="proxy." + ZONE)]
    # F's callee answers OPTIONS from the first ping on: a gateway whose
    # pings failed first (no one at the port) could take longer than F's
    # wait to come up under load (once in 3 loaded runs).
    sp_f = t.sipp("uas_options.xml", port=p["f"], calls=100000).start()
    d = t.ctid(gateways=gws)
    d.wrap = ns_wrap(rc, hosts)
    d.start()
    c = t.client(d.listen_port)
    # The start-up look-ups (glibc, a thread of ctid's) ask the same names
    # as sofia; the query log of each case starts after the last of them.
    deadline = time.time() + 20
    while time.time() < deadline and not all(
            re.search(r"gateway %s: .*resolve" % g["name"], d.log_text())
            for g in gws):
        time.sleep(0.1)
    t.check(all(re.search(r"gateway %s: .*resolve" % g["name"], d.log_text())
                for g in gws),
            "one start-up line per gateway (the look-ups are done)",
            d.log_tail(30))

    def case_a():
        line = "gateway srv: trunk.test resolves to "
        t.check(d.wait_log(line, 10), "A: the start-up log line", d.log_tail(20))
        lines = [ln for ln in d.log_text().splitlines() if line in ln]
        t.check_eq(len(lines), 1, "A: ... once")
        want = ("gw1.trunk.test:%d (SRV _sip._udp.trunk.test), "
                "gw2.trunk.test:%d (SRV _sip._udp.trunk.test)" % (
                    p["a1"], p["a2"]))
        t.check(lines and lines[0].endswith(line + want),
                "A: ... names both SRV targets (in the order DNS gave them)", repr(lines))
        t0 = time.time()
        sp, res_id, ev = call(t, c, "13800000000@srv", "A", port=p["a1"])
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="A")
        sp.check_exit(t, "A: the priority-10 target got the INVITE and the BYE")
        inv = sp.received("INVITE")
        t.check(inv and inv[0].startswith(
            "INVITE sip:13800000000@trunk.test SIP/2.0"),
            "A: Request-URI keeps the name", repr(inv[:1]))
        mine = ("trunk.test", "_sip._udp.trunk.test", "_sip._tcp.trunk.test",
                "gw1.trunk.test", "gw2.trunk.test")
        asked = [q for q in dns.asked(t0) if q[1] in mine]
        t.log("A: sofia asked %r" % asked)
        for q in (("SRV", "_sip._udp.trunk.test"), ("A", "gw1.trunk.test")):
            t.check(q in asked, "A: sofia asked %s %s" % q, repr(asked))
        t.check(("A", "trunk.test") not in asked,
                "A: sofia did not ask the A record of trunk.test itself", repr(asked))
        if ("SRV", "_sip._udp.trunk.test") in asked and \
                ("A", "gw1.trunk.test") in asked:
            t.check(asked.index(("SRV", "_sip._udp.trunk.test")) <
                    asked.index(("A", "gw1.trunk.test")),
                    "A: SRV before the target's A", repr(asked))
        t.check(("NAPTR", "trunk.test") in asked,
                "A: sofia asked NAPTR first (RFC 3263 4.1; empty here)", repr(asked))
    t.run("A: SRV by priority", case_a)

    def case_b():
        t0 = time.time()
        sp, res_id, ev = call(t, c, "13800000000@dead", "B", port=p["b2"])
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="B")
        sp.check_exit(t, "B: the priority-20 target answered and got the BYE")
        asked = dns.asked(t0, "dead.trunk.test")
        t.log("B: sofia asked %r" % asked)
        t.check(("A", "gw1.dead.trunk.test") in asked and
                ("A", "gw2.dead.trunk.test") in asked and
                asked.index(("A", "gw1.dead.trunk.test")) <
                asked.index(("A", "gw2.dead.trunk.test")),
                "B: gw1 was tried first, then gw2", repr(asked))
        t.check("attempts" not in ((ev or {}).get("params") or {}),
                "B: one attempt as far as ctid knows (sofia moved on inside "
                "the transaction)", repr(ev))
    t.run("B: dead priority-10 target", case_b)

    def case_c():
        t0 = time.time()
        sp, res_id, ev = call(t, c, "13800000000@tcp", "C", port=p["c"],
                              transport="t1")
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="C")
        sp.check_exit(t, "C: the _sip._tcp target got the INVITE and the BYE")
        inv = sp.received("INVITE")
        via = header(inv[0], "Via") if inv else ""
        t.check((via or "").startswith("SIP/2.0/TCP "), "C: over TCP", via)
        asked = dns.asked(t0, "tcp.trunk.test")
        t.log("C: sofia asked %r" % asked)
        t.check(("SRV", "_sip._tcp.tcp.trunk.test") in asked,
                "C: SRV _sip._tcp asked", repr(asked))
    t.run("C: tcp trunk", case_c)

    def case_d():
        t0 = time.time()
        sp, res_id, ev = call(t, c, "13800000000@aonly", "D", port=5060,
                              host=d_addr)
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="D")
        sp.check_exit(t, "D: %s:5060 (the A record, default port) got the "
                      "INVITE and the BYE" % d_addr)
        asked = dns.asked(t0, "aonly.trunk.test")
        t.log("D: sofia asked %r" % asked)
        srv = ("SRV", "_sip._udp.aonly.trunk.test")
        a = ("A", "aonly.trunk.test")
        t.check(srv in asked and a in asked and
                asked.index(srv) < asked.index(a),
                "D: SRV asked (empty), then A", repr(asked))
        t.check(d.wait_log("gateway aonly: aonly.trunk.test resolves to "
                           "%s:5060 (A)" % d_addr, 1),
                "D: the start-up line names the A address", d.log_tail(30))
    t.run("D: A record only", case_d)

    def case_e():
        t.check(d.wait_log("gateway nosuch: nosuch.trunk.test does not "
                           "resolve (no SRV, A or AAAA record)", 1),
                "E: the start-up line says it does not resolve",
                d.log_tail(30))
        t0 = time.time()
        _, res_id, ev = call(t, c, "13800000000@nosuch", "E")
        check_released(t, ev, res_id, None, "dial error", "sys", cause=503,
                       answered=False, label="E")
        t.check(res_id and d.wait_log("%s: 503 DNS Error (from our stack)" %
                                      res_id, 2),
                "E: the log says 503 DNS Error (from our stack)",
                d.log_tail(20))
        asked = dns.asked(t0, "nosuch.trunk.test")
        t.log("E: sofia asked %r" % asked)
        t.check(("A", "nosuch.trunk.test") in asked,
                "E: sofia asked as far as the A record", repr(asked))
        t.check(res_id and d.wait_log("%s: the next hop's name did not "
                                      "resolve" % res_id, 2),
                "E: ... and a line saying what that means", d.log_tail(20))
        t.check(d.alive(), "E: the daemon runs on")
        sp, res_id, ev = call(t, c, "13800000000@srv", "E2", port=p["a1"])
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="E2")
        sp.check_exit(t, "E: a call by SRV still works after it")
    t.run("E: a name that does not resolve", case_e)

    def case_f():
        sp = sp_f
        deadline = time.time() + 10
        g = None
        while time.time() < deadline:
            g = next((x for x in c.result("sys.gateways") or []
                      if x.get("name") == "ping"), None)
            if g and g.get("up") is True:
                break
            time.sleep(0.2)
        t.check(g and g.get("up") is True,
                "F: OPTIONS to ping.trunk.test reach its SRV target; up", repr(g))
        t.check(sp.received("OPTIONS"), "F: the SRV target got OPTIONS")
    t.run("F: OPTIONS by SRV", case_f)


    def case_g():
        t0 = time.time()
        _, res_id, ev = call(t, c, "13800000000@tlsname", "G")
        check_released(t, ev, res_id, None, "dial error", "sys", cause=503,
                       answered=False, label="G")
        asked = dns.asked(t0, "tls.trunk.test")
        t.log("G: sofia asked %r" % asked)
        t.check(asked[:2] == [("SRV", "_sips._tcp.tls.trunk.test"),
                              ("A", "tls.trunk.test")],
                "G: SRV _sips._tcp, then A (RFC 3263 for TLS)", repr(asked))
        t.check(res_id and d.wait_log("%s: the next hop's name did not "
                                      "resolve" % res_id, 2),
                "G: the log says the name did not resolve", d.log_tail(20))
        t.check(res_id and "%s: TLS to" % res_id not in d.log_text(),
                "G: ... and does not blame a TLS certificate", d.log_tail(20))
    t.run("G: a tls trunk whose name does not resolve", case_g)


    def case_h():
        t.check(d.wait_log("gateway hostsonly: hostsonly.trunk.test resolves "
                           "to 127.0.0.1:%d (A)" % p["h"], 1),
                "H: the start-up line (glibc) finds it in /etc/hosts",
                d.log_tail(40))
        t0 = time.time()
        _, res_id, ev = call(t, c, "13800000000@hostsonly", "H")
        check_released(t, ev, res_id, None, "dial error", "sys", cause=503,
                       answered=False, label="H")
        t.check(res_id and d.wait_log("%s: 503 DNS Error (from our stack)" %
                                      res_id, 2),
                "H: the SIP stack does not read /etc/hosts: 503 DNS Error",
                d.log_tail(20))
        asked = dns.asked(t0, "hostsonly.trunk.test")
        t.log("H: sofia asked %r" % asked)
        t.check(("A", "hostsonly.trunk.test") in asked and
                not [q for q in asked if q[0] in ("SRV", "NAPTR")],
                "H: it asked DNS for the A record only (a port is given)",
                repr(asked))
    t.run("H: /etc/hosts is not read by the SIP stack", case_h)


    def case_i():
        t.check(d.wait_log("gateway srvport: trunk.test does not resolve (no "
                           "A or AAAA record)", 1),
                "I: with a port, the start-up line shows no SRV record (the "
                "SIP stack asks A/AAAA only)", d.log_tail(40))
        line = ("gateway viaproxy: proxy proxy.trunk.test resolves to "
                "gw.proxy.trunk.test:%d (SRV _sip._udp.proxy.trunk.test)" %
                p["i"])
        t.check(d.wait_log(line, 1), "I: the start-up line resolves the "
                "proxy, where packets go", d.log_tail(40))
        t.check("carrier.invalid" not in "\n".join(
            ln for ln in d.log_text().splitlines() if "resolve" in ln),
            "I: ... not the host behind it")
        t0 = time.time()
        sp, res_id, ev = call(t, c, "13800000000@viaproxy", "I", port=p["i"])
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="I")
        sp.check_exit(t, "I: the proxy's SRV target got the INVITE and BYE")
        inv = sp.received("INVITE")
        t.check_eq(header(inv[0], "Route") if inv else None,
                   "<sip:proxy.trunk.test;transport=udp;lr>",
                   "I: Route names the proxy by name")
        asked = dns.asked(t0, "proxy.trunk.test")
        t.log("I: sofia asked %r" % asked)
        t.check(("SRV", "_sip._udp.proxy.trunk.test") in asked,
                "I: SRV of the proxy asked", repr(asked))
    t.run("I: what the start-up line resolves", case_i)


t = Test("trunk_dns")
with t:
    main(t)
