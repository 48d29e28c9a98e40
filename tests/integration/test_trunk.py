#!/usr/bin/env python3
"""ctid integration test: reaching a carrier trunk (issue 13), on the wire,
with sipp as the carrier.

A  UDP trunk named in to_uri ("13800000000@carrier"): the result echoes
   the entry as sent; Request-URI and To at the trunk's domain (no port),
   packets still to host:port; From caller_id@domain; P-Asserted-Identity;
   the configured extra headers (a value with ';' params kept whole);
   public_address in Contact and Via; media_public_address in SDP c= and
   o=; the call plays and ends with ctid's BYE.
B  the same trunk, from_uri "anonymous": From anonymous, Privacy: id, and
   PAI carrying the real caller_id.
C  a TCP trunk (sipp -t t1): the INVITE over TCP (Via SIP/2.0/TCP,
   Contact ;transport=tcp), answered, BYE over TCP.
D  an outbound proxy: Route: <sip:PROXY;transport=udp;lr> on the INVITE,
   Request-URI at the trunk's domain, the packets to the proxy though the
   trunk's host does not resolve.
E  the allow-list by name: "user@carrier:5060" and "user@nosuch" are not
   configured gateways; a gateway's address without a port still matches.
F  bad trunk keys (transport, headers, proxy, tls_ca_file): each refused at
   start with FILE:LINE (ctid --check-config) and at SIGHUP with FILE:LINE:
   reason in the log and the running configuration kept (after each, the
   next call through the gateway is the old one: same headers, no Route).
"""
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      make_prompt, gateway, header, free_port)

PUBLIC = "203.0.113.5"
MEDIA_PUBLIC = "198.51.100.7"


def headers_all(msg, name):
    return [ln.split(":", 1)[1].strip() for ln in msg.splitlines()
            if ln.lower().startswith(name.lower() + ":")]


def place(t, c, to_uri, label, from_uri=None, scenario="uas_answer_wait_bye.xml",
          port=None, transport="u1", want_to_uri=None):
    """One call through sipp; returns sipp's INVITE text (or "")."""
    sp = t.sipp(scenario, port=port, transport=transport).start()
    reply = c.call("ext.notify_call.construct", {
        "from_uri": from_uri, "to_uri": to_uri, "play_content": "notice.wav",
        "play_repeat": 0})
    res_id, _ = check_construct_result(t, reply, "0.0.0", want_to_uri or to_uri,
                                       None, label=label)
    if res_id is None:
        return ""
    ev = c.wait_event(res_id, timeout=20)
    check_released(t, ev, res_id, None, None, "sys", cause=200, answered=True,
                   label=label)
    sp.check_exit(t, "%s: sipp got the INVITE and ctid's BYE" % label)
    inv = sp.received("INVITE")
    return inv[0] if inv else ""


def main(t):
    make_prompt(t.path("prompts", "notice.wav"), 0.3)
    p_udp, p_tcp, p_proxy = free_port("udp"), free_port("tcp"), free_port("udp")
    gws = [
        gateway("carrier", p_udp, domain="carrier.example", caller_id="4001",
                pai="yes",
                headers="X-Account: 42; X-Uri: <sip:a@b;user=phone>;lr"),
        gateway("tcptrunk", p_tcp, transport="tcp", domain="tcp.example"),
        gateway("proxied", None, host="trunk.invalid",
                proxy="127.0.0.1:%d" % p_proxy),
    ]
    d = t.ctid(gateways=gws, conf={"public_address": PUBLIC,
                                   "media_public_address": MEDIA_PUBLIC})
    d.start()
    c = t.client(d.listen_port)

    def case_a():
        inv = place(t, c, "13800000000@carrier", "A", port=p_udp)
        first = inv.split("\n", 1)[0]
        t.check_eq(first, "INVITE sip:13800000000@carrier.example SIP/2.0",
                   "A: Request-URI at the trunk's domain, no port")
        t.check_eq(header(inv, "To"), "<sip:13800000000@carrier.example>",
                   "A: To at the trunk's domain")
        frm = header(inv, "From") or ""
        t.check(frm.startswith("<sip:4001@carrier.example>;tag="),
                "A: From is caller_id at the trunk's domain", frm)
        t.check_eq(header(inv, "P-Asserted-Identity"),
                   "<sip:4001@carrier.example>", "A: P-Asserted-Identity")
        t.check(header(inv, "Privacy") is None, "A: no Privacy header")
        t.check_eq(header(inv, "X-Account"), "42", "A: extra header X-Account")
        t.check_eq(header(inv, "X-Uri"), "<sip:a@b;user=phone>;lr",
                   "A: extra header X-Uri with its ';' params")
        t.check(PUBLIC in (header(inv, "Contact") or ""),
                "A: public_address in Contact", header(inv, "Contact") or "")
        via = header(inv, "Via") or ""
        t.check(via.startswith("SIP/2.0/UDP %s:%d" % (PUBLIC, d.sip_port)),
                "A: public_address in Via", via)
        t.check("c=IN IP4 %s" % MEDIA_PUBLIC in inv,
                "A: media_public_address in SDP c=", inv[-400:])
        t.check(any(ln.startswith("o=") and ln.endswith("IN IP4 " + MEDIA_PUBLIC)
                    for ln in inv.splitlines()),
                "A: media_public_address in SDP o=", inv[-400:])
    t.run("A: UDP trunk by name", case_a)

    def case_b():
        inv = place(t, c, "13800000000@carrier", "B", from_uri="anonymous",
                    port=p_udp)
        frm = header(inv, "From") or ""
        t.check("sip:anonymous@anonymous.invalid" in frm,
                "B: From stays anonymous", frm)
        t.check_eq(header(inv, "Privacy"), "id", "B: Privacy: id")
        t.check_eq(header(inv, "P-Asserted-Identity"),
                   "<sip:4001@carrier.example>",
                   "B: P-Asserted-Identity carries the real caller_id")
    t.run("B: anonymous with PAI", case_b)

    def case_c():
        inv = place(t, c, "13800000000@tcptrunk", "C", port=p_tcp,
                    transport="t1")
        t.check_eq(inv.split("\n", 1)[0],
                   "INVITE sip:13800000000@tcp.example SIP/2.0",
                   "C: Request-URI at the TCP trunk's domain")
        via = header(inv, "Via") or ""
        t.check(via.startswith("SIP/2.0/TCP "), "C: the INVITE came over TCP",
                via)
        t.check("transport=tcp" in (header(inv, "Contact") or ""),
                "C: Contact says transport=tcp", header(inv, "Contact") or "")
        t.check(header(inv, "P-Asserted-Identity") is None,
                "C: no PAI without pai = yes")
        t.check(header(inv, "From").startswith("<sip:ctid@tcp.example>"),
                "C: From default_from at the trunk's domain",
                header(inv, "From") or "")
    t.run("C: TCP trunk", case_c)

    def case_d():
        inv = place(t, c, "13800000000@proxied", "D", port=p_proxy)
        t.check_eq(inv.split("\n", 1)[0],
                   "INVITE sip:13800000000@trunk.invalid SIP/2.0",
                   "D: Request-URI at the trunk (host, its port unset)")
        t.check_eq(headers_all(inv, "Route"),
                   ["<sip:127.0.0.1:%d;transport=udp;lr>" % p_proxy],
                   "D: Route to the proxy, loose routing")
    t.run("D: outbound proxy", case_d)

    def case_e():
        for to, what in (("13800000000@carrier:5060", "carrier:5060"),
                         ("13800000000@nosuch", "nosuch:5060")):
            r = c.call("ext.notify_call.construct", {
                "to_uri": to, "play_content": "notice.wav"})
            err = r.get("error") or {}
            t.check(err.get("code") == -32602 and
                    "%s is not a configured gateway" % what in err.get("message", ""),
                    "E: %s is refused" % to, str(r))
        inv = place(t, c, "13800000000@127.0.0.1:%d" % p_udp, "E", port=p_udp)
        t.check_eq(inv.split("\n", 1)[0],
                   "INVITE sip:13800000000@carrier.example SIP/2.0",
                   "E: the address of a trunk dials through that trunk")
    t.run("E: allow-list", case_e)

    def case_f():
        for line, why in (
                ("transport = sctp", "transport: expected udp, tcp or tls"),
                ("headers = X-A: 1; Via: x", "headers: 'Via' is a header ctid "
                 "writes itself"),
                ("proxy = a b", "proxy: expected HOST[:PORT]"),
                ("tls_ca_file = /nonexistent.pem",
                 "tls_ca_file: /nonexistent.pem: No such file")):
            path = t.path("bad.conf")
            with open(path, "w") as f:
                f.write("[gateway g]\nhost = 127.0.0.1\n%s\n" % line)
            r = subprocess.run([t.ctid_bin, "--config", path, "--check-config"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out = r.stdout.decode(errors="replace")
            t.check(r.returncode != 0 and "%s:3: %s" % (path, why) in out,
                    "F: refused at start: %s" % line, out[-400:])
        good = d.conf_text()
        # The same four at SIGHUP: each bad line put into the running
        # [gateway carrier] (after its caller_id line, or the headers
        # line changed in place) must be refused with FILE:LINE: reason,
        # and the next call through carrier must still be the old one
        # (its X-Account 42; a bad transport/proxy/CA applied would move
        # or break it).
        lines = good.split("\n")
        at = lines.index("caller_id = 4001")
        for n, (line, why) in enumerate((
                ("transport = sctp", "transport: expected udp, tcp or tls"),
                ("headers = X-Account: 43; Route: <sip:x>",
                 "headers: 'Route' is a header ctid writes itself"),
                ("proxy = a b", "proxy: expected HOST[:PORT]"),
                ("tls_ca_file = /nonexistent.pem",
                 "tls_ca_file: /nonexistent.pem: No such file"))):
            if line.startswith("headers ="):
                hl = [i for i, ln in enumerate(lines)
                      if ln.startswith("headers = ")]
                bad_lines = list(lines)
                bad_lines[hl[0]] = line
                lineno = hl[0] + 1
            else:
                bad_lines = lines[:at + 1] + [line] + lines[at + 1:]
                lineno = at + 2
            bad = "\n".join(bad_lines)
            t.check(bad != good, "F: harness: the bad config differs")
            before = d.log_text().count("configuration not reloaded")
            with open(d.conf_path, "w") as f:
                f.write(bad)
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 5
            while (d.log_text().count("configuration not reloaded") == before
                   and time.time() < deadline):
                time.sleep(0.05)
            t.check_eq(d.log_text().count("configuration not reloaded"),
                       before + 1, "F: SIGHUP refuses %s" % line)
            where = "%s:%d: %s" % (d.conf_path, lineno, why)
            t.check(where in d.log_text(),
                    "F: ... and says where and why (%s)" % where,
                    d.log_tail(6))
            t.check(d.alive(), "F: the daemon runs on after %s" % line)
            inv = place(t, c, "13800000000@carrier", "F%d" % n, port=p_udp)
            t.check_eq(header(inv, "X-Account"), "42",
                       "F: after %s the running configuration was kept" % line)
            t.check(header(inv, "Route") is None,
                    "F: ... no Route (no proxy) after %s" % line)
        # back to the good file (what is on disk must not stay bad)
        with open(d.conf_path, "w") as f:
            f.write(good)
        t.check(d.reload(good.replace("X-Account: 42", "X-Account: 44"),
                         wait_for="X-Account: 44"),
                "F: a good SIGHUP logs the changed headers", d.log_tail(10))
        inv = place(t, c, "13800000000@carrier", "F2", port=p_udp)
        t.check_eq(header(inv, "X-Account"), "44",
                   "F: ... and the next INVITE carries them")
    t.run("F: bad keys at start and SIGHUP", case_f)


t = Test("trunk")
with t:
    main(t)
