#!/usr/bin/env python3
"""The Kamailio test harness (tests/integration/kamailio.py,
tests/kamailio/ctid-test.cfg) proven with peers we did not write; ctid
itself is not started. Issue 13's trunk tests stand on it.

A  registrar: baresip registers over UDP with the right password (401
   challenge, then 200), a second baresip with a wrong one is refused and
   says so (REGISTER_FAIL); a sipp call to the registered AOR reaches the
   phone through lookup("location") and is auto-answered.
B  proxy: sipp UAC -> Kamailio -> sipp UAS (the fixed downstream), over
   UDP (the callee hangs up) and TCP (the caller hangs up, UDP beyond
   Kamailio); each BYE goes through Kamailio, which Record-Routes.
C  TLS: openssl s_client verifies the TLS port against the test CA for
   127.0.0.1 and localhost; the wrong-name port fails name verification
   (and only that); an OPTIONS over TLS is answered and logged.
D  switches: restart() on the same ports with OPTIONS answered 503, then
   0 (dropped); 407 on an INVITE with invite_auth.
"""
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import HOST, Sipp, Test, free_port  # noqa: E402
from baresip import Baresip  # noqa: E402
from kamailio import Kamailio  # noqa: E402

USERS = {"alice": "s3cret", "bob": "hunter2"}


class SippUac(Sipp):
    """sipp as the caller: nothing to wait for at start (it starts the
    call); the target (proxy address) and the R-URI user go last."""

    def __init__(self, t, scenario, target, service, transport="udp", **kw):
        extra = ["-s", service] + (["-t", "t1"] if transport == "tcp" else [])
        super().__init__(t, scenario, extra=extra + [target], **kw)
        t.sipps.append(self)
        t.add_cleanup(self)

    def start(self, ready_timeout=5.0):
        out = open(self.out_log, "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        out.close()
        return self


def via_count(msg, addr):
    return sum(1 for ln in msg.splitlines()
               if ln.lower().startswith("via:") and addr in ln)


def case_a(t, kam):
    mark = kam.mark()
    alice = t.add_cleanup(Baresip(t, "alice", user="alice",
                                  registrar=kam.address("udp"),
                                  password=USERS["alice"], answermode="auto"))
    alice.start()
    t.check_eq(alice.wait_registration(), "OK",
               "A: baresip registered with the right password")
    t.check(kam.wait_log(r"KAM REG sip:alice@.* saved", since=mark, timeout=3),
            "A: Kamailio saved alice's contact")
    local = [(r["code"], r["cseq"]) for r in kam.replies(since=mark, local=True)
             if r["cseq"].endswith(" REGISTER")]
    t.check(local[:1] and local[0][0] == 401 and local[-1][0] == 200,
        "A: the first REGISTER was challenged (401), the answered one got 200",
        "Kamailio's own replies: %s" % local)
    regs = kam.requests("REGISTER", since=mark)
    t.check(regs and regs[0]["auth"] is None and regs[-1]["auth"] == "alice"
            and regs[-1]["proto"] == "udp",
            "A: the log shows the REGISTERs (no credentials, then alice's, UDP)",
            "%s" % regs)

    mark = kam.mark()
    bob = t.add_cleanup(Baresip(t, "bob", user="bob", registrar=kam.address("udp"),
                                password="wrong-" + USERS["bob"]))
    bob.start()
    t.check_eq(bob.wait_registration(), "ERR",
               "A: a wrong password is refused (baresip reginfo)")
    t.check(re.search(r"reg: sip:bob@\S+: 401 Unauthorized", bob.log_text()),
            "A: ... baresip reports the 401", bob.log_tail(20))
    t.check(kam.wait_log(r"KAM AUTH REGISTER refused user=bob", since=mark),
            "A: Kamailio logged the refusal")

    # a call to the registered AOR: lookup("location") finds the phone
    mark = kam.mark()
    uac = SippUac(t, "uac_proxied_bye.xml", kam.address("udp"), "alice").start()
    uac.check_exit(t, "A: sipp -> Kamailio -> baresip (auto-answer) -> BYE",
                   timeout=15)
    t.check(kam.wait_log(r"KAM ROUTE location INVITE to sip:alice[^@]*@127\.0\.0\.1:%d"
                         % alice.sip_port, since=mark),
            "A: Kamailio routed the INVITE to the phone's registered contact")
    t.check(alice.wait_event("CALL_CLOSED", timeout=5) is not None,
            "A: the phone saw the call end")
    bye = kam.requests("BYE", since=mark)
    t.check(len(bye) == 1 and bye[0]["src"] == "127.0.0.1:%d" % uac.port,
            "A: the caller's BYE went through Kamailio", "%s" % bye)


def case_b(t, kam, uas_port):
    kaddr = kam.address("udp")
    for transport, uas_sc, uac_sc in (
            ("udp", "uas_proxied_hangup.xml", "uac_proxied_wait_bye.xml"),
            ("tcp", "uas_proxied_wait_bye.xml", "uac_proxied_bye.xml")):
        label = "B %s" % transport
        mark = kam.mark()
        uas = t.sipp(uas_sc, port=uas_port).start()
        uac = SippUac(t, uac_sc, kam.address(transport), "13800000000",
                      transport=transport).start()
        uac.check_exit(t, "%s: the caller's scenario completed" % label, timeout=15)
        uas.check_exit(t, "%s: the callee's scenario completed" % label, timeout=5)
        inv = uas.received("INVITE")
        t.check(inv and "Record-Route:" in inv[0] and kaddr in inv[0]
                and inv[0].startswith("INVITE sip:13800000000@%s " % kaddr),
                "%s: the callee got the INVITE via Kamailio, Record-Routed, "
                "R-URI kept" % label, (inv or ["none"])[0][:600])
        if transport == "tcp":
            t.check(inv and "transport=tcp" in inv[0],
                    "%s: two Record-Routes (TCP in, UDP out)" % label)
            byes = uas.received("BYE")
            t.check(byes and via_count(byes[0], kaddr) == 1,
                    "%s: the caller's BYE reached the callee through Kamailio"
                    % label, (byes or ["none"])[0][:600])
        else:
            byes = uac.received("BYE")
            t.check(byes and via_count(byes[0], kaddr) == 1,
                    "%s: the callee's BYE reached the caller through Kamailio"
                    % label, (byes or ["none"])[0][:600])
        reqs = kam.requests(since=mark)
        inv_k = [r for r in reqs if r["method"] == "INVITE"]
        bye_k = [r for r in reqs if r["method"] == "BYE"]
        t.check(inv_k and inv_k[0]["proto"] == transport
                and "X-Harness: uac" in (inv_k[0]["x"] or ""),
                "%s: Kamailio logged the INVITE (transport, X- header)" % label,
                "%s" % inv_k)
        t.check(len(bye_k) == 1 and bye_k[0]["route"] is not None
                and kaddr in bye_k[0]["route"],
                "%s: Kamailio logged the BYE with its Route" % label, "%s" % bye_k)
        rpl = [r["code"] for r in kam.replies(since=mark)]
        t.check(200 in rpl, "%s: Kamailio logged the relayed replies" % label,
                "%s" % rpl)


def s_client(port, ca, *verify):
    r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (HOST, port),
                        "-CAfile", ca, "-verify_return_error", "-brief"] + list(verify),
                       input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=10)
    return r.returncode, r.stdout.decode(errors="replace")


def case_c(t, kam):
    ca = kam.ca_file
    for what, args in (("localhost", ["-verify_hostname", "localhost"]),
                       ("127.0.0.1", ["-verify_ip", "127.0.0.1"])):
        rc, out = s_client(kam.port("tls"), ca, *args)
        t.check(rc == 0 and "Verification: OK" in out,
                "C: the TLS port verifies with the test CA as %s" % what, out[-600:])
    rc, out = s_client(kam.port("tls_wrong"), ca)
    t.check(rc == 0, "C: the wrong-name certificate chains to the test CA",
            out[-600:])
    rc, out = s_client(kam.port("tls_wrong"), ca, "-verify_hostname", "localhost")
    t.check(rc != 0 and "hostname mismatch" in out,
            "C: the wrong-name port fails name verification (localhost)", out[-600:])
    rc, out = s_client(kam.port("tls_wrong"), ca, "-verify_ip", "127.0.0.1")
    t.check(rc != 0 and "mismatch" in out,
            "C: ... and for 127.0.0.1", out[-600:])
    mark = kam.mark()
    t.check_eq(kam.options("tls"), 200, "C: OPTIONS over TLS")
    req = kam.requests("OPTIONS", since=mark)
    t.check(req and req[0]["proto"] == "tls", "C: Kamailio logged it as TLS",
            "%s" % req)


def case_d(t, kam):
    udp, tls = kam.port("udp"), kam.port("tls")
    kam.options_code = 503
    kam.restart()
    t.check(kam.port("udp") == udp and kam.port("tls") == tls,
            "D: restart keeps the ports")
    t.check_eq(kam.options("udp"), 503, "D: OPTIONS answered 503 after restart")
    kam.options_code = 0
    kam.invite_auth = True
    kam.restart()
    mark = kam.mark()
    t.check_eq(kam.options("tcp", timeout=1.0), None,
               "D: OPTIONS dropped with options_code 0")
    t.check(kam.wait_log(r"KAM OPTIONS dropped", since=mark),
            "D: ... and the drop logged")
    mark = kam.mark()
    uac = SippUac(t, "uac_proxied_bye.xml", kam.address("udp"), "13800000000",
                  timeout=5).start()
    uac.wait(10)
    t.check(kam.wait_log(r"KAM LOC SIP/2.0 407 .*\|cseq=1 INVITE", since=mark),
            "D: invite_auth challenges an INVITE with 407")


def main(t):
    for tool in ("kamailio", "openssl", "baresip"):
        if shutil.which(tool) is None and not (tool == "kamailio" and
                                               os.path.exists("/usr/sbin/kamailio")):
            t.fail("%s installed (.ci/setup)" % tool)
            return
    uas_port = free_port("udp")
    kam = Kamailio(t, users=USERS, tls=True, downstream=uas_port,
                   min_expires=10).start()
    t.run("A: registrar", case_a, t, kam)
    t.run("B: proxy", case_b, t, kam, uas_port)
    t.run("C: TLS", case_c, t, kam)
    t.run("D: switches", case_d, t, kam)


t = Test("kamailio_harness")
with t:
    main(t)
