#!/usr/bin/env python3
"""ctid integration test: a carrier trunk behind a real proxy (issue 13),
with Kamailio (tests/integration/kamailio.py) as the carrier's outbound
proxy and sipp or baresip as the callee.

A  ctid -> Kamailio (proxy = its UDP, TCP or TLS address; Record-Route)
   -> sipp: for each transport the INVITE reaches Kamailio over it with
   ctid's preloaded Route, and the callee gets it Record-Routed with the
   Request-URI at the trunk's domain; the callee hangs up and its BYE
   comes back through Kamailio and ctid answers it (event dropped_by
   usr), then ctid hangs up and its BYE goes to Kamailio over the
   trunk's transport.
B  TLS with a certificate for the wrong name (wrong.invalid, same CA):
   with tls_verify = yes the call fails cleanly (event "dial error",
   cause 503, a log line naming the TLS next hop) and no INVITE reaches
   Kamailio; a second ctid with tls_verify = no completes the same call.
C  a real phone: baresip registers to Kamailio as alice, auto-answers;
   ctid dials "alice@kamtrunk" through the trunk; the phone records what
   it hears: the prompt's length, not silence.
D  Kamailio challenges ctid's INVITE with digest auth (407): with the
   gateway's username and password ctid answers once and the call
   completes; with a wrong password the second 407 ends the call
   ("dial failed", cause 407) after exactly two INVITEs, no loop, and
   leaves nothing behind (ctid stops without waiting for it).
E  the whole hosted-trunk flow, over TLS and over TCP: a Kamailio that
   challenges REGISTER (401) and INVITE (407); ctid's gateways have
   register = yes, the transport, proxy = Kamailio's listener of that
   transport (TLS verified against the test CA). ctid registers through
   it (a challenged REGISTER, then one with credentials, saved), then a
   call goes ctid -> Kamailio -> sipp (Kamailio's downstream): the INVITE
   is challenged once and answered with credentials over the same
   transport, the callee answers, the prompt arrives byte for byte at the
   callee's RTP port, and ctid's BYE goes back through Kamailio over the
   trunk's transport. sys.gateways shows registered, register_status 200.
F  failover after a TLS failure: to_uri [kwrong (certificate for the
   wrong name, tls_verify = yes), kudp]: the call plays at the second
   entry (RTP at sipp's sink) and the event carries attempts
   [{kwrong, 503}, {kudp, 200}].
"""
import os
import re
import shutil
import struct
import sys

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      check_one_stream, expected_payload, make_prompt,
                      gateway, header, free_port)
from baresip import Baresip  # noqa: E402
from kamailio import Kamailio, tls_material  # noqa: E402

DOMAIN = "carrier.test"


def call(t, c, to_uri, label, timeout=20):
    reply = c.call("ext.notify_call.construct", {
        "to_uri": to_uri, "play_content": "notice.wav", "play_repeat": 0})
    res_id, _ = check_construct_result(t, reply, "0.0.0", to_uri, None,
                                       label=label)
    if res_id is None:
        return None, None
    return res_id, c.wait_event(res_id, timeout=timeout)


def case_a(t, kam, d, c, uas_port):
    for tr, scenario, who in (("udp", "uas_proxied_hangup.xml", "usr"),
                              ("udp", "uas_proxied_wait_bye.xml", "sys"),
                              ("tcp", "uas_proxied_hangup.xml", "usr"),
                              ("tcp", "uas_proxied_wait_bye.xml", "sys"),
                              ("tls", "uas_proxied_hangup.xml", "usr"),
                              ("tls", "uas_proxied_wait_bye.xml", "sys")):
        label = "A %s %s hangs up" % (tr, "callee" if who == "usr" else "ctid")
        mark = kam.mark()
        uas = t.sipp(scenario, port=uas_port).start()
        res_id, ev = call(t, c, "13800000000@k%s" % tr, label)
        if res_id is None:
            continue
        check_released(t, ev, res_id, None, None, who, cause=200,
                       answered=True, label=label)
        uas.check_exit(t, "%s: the callee's scenario completed" % label)
        inv = kam.requests("INVITE", since=mark)
        t.check(inv and inv[0]["proto"] == tr and inv[0]["route"] is not None
                and kam.address(tr).split(":")[1] in inv[0]["route"],
                "%s: the INVITE reached Kamailio over %s with ctid's Route"
                % (label, tr), "%s" % inv)
        got = uas.received("INVITE")
        first = got[0].split("\n", 1)[0] if got else ""
        t.check_eq(first, "INVITE sip:13800000000@%s SIP/2.0" % DOMAIN,
                   "%s: the callee got the Request-URI at the domain" % label)
        t.check(got and header(got[0], "Record-Route") is not None,
                "%s: ... Record-Routed by Kamailio" % label)
        t.check(kam.wait_log(r"KAM REQ BYE ", since=mark, timeout=5),
                "%s: the BYE went through Kamailio" % label)
        bye = kam.requests("BYE", since=mark)
        if who == "usr":
            t.check(bye and bye[0]["src"].endswith(":%d" % uas_port),
                    "%s: the callee's BYE came to ctid through Kamailio" % label,
                    "%s" % bye)
            t.check(200 in [r["code"] for r in kam.replies(since=mark)
                            if r["cseq"].endswith("BYE")],
                    "%s: ctid answered the BYE 200" % label,
                    "%s" % kam.replies(since=mark))
        else:
            t.check(bye and bye[0]["proto"] == tr,
                    "%s: ctid's BYE went to Kamailio over %s" % (label, tr),
                    "%s" % bye)


def case_b(t, kam, d, c, uas_port):
    mark = kam.mark()
    res_id, ev = call(t, c, "13800000000@kwrong", "B verify")
    if res_id is not None:
        check_released(t, ev, res_id, None, "dial error", "sys", cause=503,
                       answered=False, label="B verify")
    t.check(d.wait_log("TLS to <sip:127.0.0.1:%d;transport=tls;lr> failed "
                       "(503)" % kam.port("tls_wrong")),
            "B: a log line names the TLS next hop that failed", d.log_tail(15))
    t.check(not kam.requests("INVITE", since=mark),
            "B: no INVITE reached Kamailio", "%s" % kam.requests(since=mark))
    # tls_verify = no: the same certificate is taken
    d2 = t.ctid(name="ctid-noverify", gateways=[gateway(
        "kwrong", None, host=DOMAIN, transport="tls", tls_verify="no",
        proxy="127.0.0.1:%d" % kam.port("tls_wrong"),
        tls_ca_file=kam.ca_file)])
    d2.start()
    c2 = t.client(d2.listen_port)
    uas = t.sipp("uas_proxied_wait_bye.xml", port=uas_port).start()
    res_id, ev = call(t, c2, "13800000000@kwrong", "B no verify")
    if res_id is not None:
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="B no verify")
    uas.check_exit(t, "B: with tls_verify = no the call completes")


def case_c(t, kam, d, c):
    phone = t.add_cleanup(Baresip(t, "alice", user="alice",
                                  registrar=kam.address("udp"),
                                  password="s3cret", answermode="auto",
                                  codecs=("PCMA",)))
    phone.start()
    if not t.check_eq(phone.wait_registration(), "OK",
                      "C: baresip registered to Kamailio"):
        return
    res_id, ev = call(t, c, "alice@kudp", "C", timeout=30)
    if res_id is None:
        return
    check_released(t, ev, res_id, None, None, "sys", cause=200, answered=True,
                   label="C")
    t.check(phone.wait_event("CALL_CLOSED", timeout=10) is not None,
            "C: the phone's call closed")
    rate, ch, pcm = phone.recording()
    secs = len(pcm) / 2.0 / rate / ch
    t.check(abs(secs - PROMPT_SECONDS) < 0.3,
            "C: the phone recorded the prompt's length (%.2f s)" % secs,
            "%.2f s recorded, prompt %.2f s" % (secs, PROMPT_SECONDS))
    samples = struct.unpack("<%dh" % (len(pcm) // 2), pcm[:len(pcm) // 2 * 2])
    loud = sum(1 for s in samples if abs(s) > 1000)
    t.check(loud > len(samples) // 4, "C: ... and it is not silence",
            "%d of %d samples above 1000" % (loud, len(samples)))


def case_d(t, uas_port):
    kam = Kamailio(t, name="kamailio-auth", users={"trunkuser": "tr-pw"},
                   invite_auth=True, downstream=uas_port).start()
    d = t.ctid(name="ctid-auth", gateways=[
        gateway("good", None, host="kgood.invalid", domain=DOMAIN,
                proxy=kam.address("udp"), username="trunkuser",
                password="tr-pw"),
        gateway("bad", None, host="kbad.invalid", domain=DOMAIN,
                proxy=kam.address("udp"), username="trunkuser",
                password="wrong")])
    d.start()
    c = t.client(d.listen_port)
    mark = kam.mark()
    uas = t.sipp("uas_proxied_wait_bye.xml", port=uas_port).start()
    res_id, ev = call(t, c, "13800000000@good", "D good")
    if res_id is not None:
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label="D good")
    uas.check_exit(t, "D: the challenged INVITE reached the callee")
    invs = kam.requests("INVITE", since=mark)
    t.check(len(invs) == 2 and invs[0]["auth"] is None
            and invs[1]["auth"] is not None,
            "D: Kamailio saw the INVITE, then one with credentials",
            "%s" % invs)
    t.check(kam.wait_log(r"KAM AUTH INVITE ok user=trunkuser", since=mark,
                         timeout=2), "D: Kamailio accepted the credentials")
    mark = kam.mark()
    res_id, ev = call(t, c, "13800000000@bad", "D bad")
    if res_id is not None:
        check_released(t, ev, res_id, None, "dial failed", "sys", cause=407,
                       answered=False, label="D bad")
    invs = kam.requests("INVITE", since=mark)
    t.check_eq(len(invs), 2, "D: a wrong password: two INVITEs, no loop")
    # The refused INVITE's handle is gone (nua waits for an answer to the
    # challenge forever): ctid stops at once, its SIP stack torn down.
    d.stop()
    t.check("dialogs still open" not in d.log_text(),
            "D: nothing of the refused INVITE is left at shutdown",
            d.log_tail(5))


def gw_state(c, name):
    for g in c.result("sys.gateways") or []:
        if g.get("name") == name:
            return g
    return None


def case_e(t, uas_port):
    """The hosted-trunk flow (module doc, E) over tls and tcp."""
    users = {"tlsuser": "tls-pw", "tcpuser": "tcp-pw"}
    kam = Kamailio(t, name="kamailio-hosted", users=users, tls=True,
                   register_auth=True, invite_auth=True,
                   downstream=uas_port).start()
    gws = [gateway("hosted%s" % tr, None, host="hosted-%s.invalid" % tr,
                   domain=DOMAIN, transport=tr, proxy=kam.address(tr),
                   tls_ca_file=kam.ca_file, register="yes",
                   username="%suser" % tr, password=users["%suser" % tr])
           for tr in ("tls", "tcp")]
    d = t.ctid(name="ctid-hosted", gateways=gws)
    d.start()
    c = t.client(d.listen_port)
    # a first request now: a connection silent for handshake_timeout
    # (10 s) is closed, and waiting for a registration may take that long
    c.result("sys.gateways")
    expected = expected_payload(t.path("prompts", "notice.wav"), 8, 0)
    for tr in ("tls", "tcp"):
        label, user = "E %s" % tr, "%suser" % tr
        aor = "sip:%s@%s" % (user, DOMAIN)
        t.check(d.wait_log("gateway hosted%s: registered as %s@%s (200"
                           % (tr, user, DOMAIN), 10),
                "%s: ctid logs registered" % label, d.log_tail(15))
        t.check(kam.wait_log(r"KAM REG %s saved" % re.escape(aor), 5)
                is not None, "%s: Kamailio saved the binding" % label,
                kam.log_tail(15))
        regs = [r for r in kam.requests("REGISTER")
                if aor in (r.get("to") or "")]
        t.check(len(regs) >= 2 and regs[0]["auth"] is None
                and regs[1]["auth"] == user,
                "%s: the REGISTER was challenged (401), then sent with "
                "credentials" % label, "%s" % regs)
        t.check(regs and all(r["proto"] == tr for r in regs),
                "%s: every REGISTER came over %s" % (label, tr), "%s" % regs)
        t.check(any(r["code"] == 401 and r["cseq"].endswith("REGISTER")
                    for r in kam.replies(local=True)),
                "%s: Kamailio sent the 401" % label)
        g = gw_state(c, "hosted" + tr) or {}
        t.check(g.get("registered") is True and g.get("register_status") == 200
                and g.get("transport") == tr,
                "%s: sys.gateways registered, register_status 200" % label,
                "%s" % g)

        mark = kam.mark()
        sink = t.rtp_sink("hosted-" + tr)
        uas = t.sipp("uas_proxied_wait_bye.xml", port=uas_port,
                     rtp_sink_port=sink.port, codec=8).start()
        res_id, ev = call(t, c, "13800000000@hosted" + tr, label)
        if res_id is None:
            continue
        check_released(t, ev, res_id, None, None, "sys", cause=200,
                       answered=True, label=label)
        uas.check_exit(t, "%s: the callee got the INVITE and ctid's BYE"
                       % label)
        uas.close()   # a failed one must not hold uas_port for the next
        invs = kam.requests("INVITE", since=mark)
        t.check(len(invs) == 2 and invs[0]["auth"] is None
                and invs[1]["auth"] == user
                and all(i["proto"] == tr for i in invs),
                "%s: the INVITE over %s was challenged, then sent with "
                "credentials" % (label, tr), "%s" % invs)
        t.check(any(r["code"] == 407 and r["cseq"].endswith("INVITE")
                    for r in kam.replies(since=mark, local=True)),
                "%s: Kamailio sent the 407" % label)
        t.check(kam.wait_log(r"KAM AUTH INVITE ok user=%s" % user,
                             since=mark, timeout=2),
                "%s: Kamailio accepted the INVITE's credentials" % label)
        got = uas.received("INVITE")
        t.check(got and got[0].startswith(
            "INVITE sip:13800000000@%s SIP/2.0" % DOMAIN)
            and header(got[0], "Record-Route") is not None,
            "%s: the callee got the INVITE at the domain, Record-Routed"
            % label, got[0][:300] if got else "none")
        sink.wait_quiet()
        check_one_stream(t, sink, expected, 8,
                         "%s: RTP at the callee" % label)
        t.check(kam.wait_log(r"KAM REQ BYE ", since=mark, timeout=5),
                "%s: the BYE went through Kamailio" % label)
        bye = kam.requests("BYE", since=mark)
        t.check(bye and bye[0]["proto"] == tr,
                "%s: ctid's BYE went to Kamailio over %s" % (label, tr),
                "%s" % bye)
        t.check(200 in [r["code"] for r in kam.replies(since=mark)
                        if r["cseq"].endswith("BYE")],
                "%s: the callee's 200 to the BYE came back through Kamailio"
                % label, "%s" % kam.replies(since=mark))
    t.check_eq(d.stop(), 0, "E: ctid exits 0")


def case_f(t, kam, d, c, uas_port):
    """Failover after a TLS failure (module doc, F)."""
    sink = t.rtp_sink("tls-failover")
    uas = t.sipp("uas_proxied_wait_bye.xml", port=uas_port,
                 rtp_sink_port=sink.port, codec=8).start()
    mark = kam.mark()
    uris = ["13800000000@kwrong", "13800000000@kudp"]
    reply = c.call("ext.notify_call.construct", {
        "to_uri": uris, "play_content": "notice.wav", "play_repeat": 0})
    res_id, _ = check_construct_result(t, reply, "0.0.0", uris[0], None,
                                       label="F")
    ev = c.wait_event(res_id, timeout=30) if res_id else None
    check_released(t, ev, res_id, None, None, "sys", cause=200,
                   answered=True, label="F")
    att = (ev or {}).get("params", {}).get("attempts")
    t.check(isinstance(att, list) and len(att) == 2
            and att[0].get("gateway") == "kwrong"
            and att[0].get("status") == 503
            and att[1].get("gateway") == "kudp"
            and att[1].get("status") == 200,
            "F: attempts [{kwrong, 503}, {kudp, 200}]", repr(att))
    uas.check_exit(t, "F: the second entry's callee got the call")
    uas.close()   # a failed one must not hold uas_port for D and E
    sink.wait_quiet()
    check_one_stream(t, sink, expected_payload(
        t.path("prompts", "notice.wav"), 8, 0), 8, "F: RTP at the second entry")
    invs = kam.requests("INVITE", since=mark)
    t.check(len(invs) == 1 and invs[0]["proto"] == "udp",
            "F: only the second entry's INVITE reached Kamailio (over udp)",
            "%s" % invs)
    # the gateways' addresses (host, port in effect), not the names
    # written in to_uri as if they were hosts ("kwrong:5060")
    t.check(re.search(r": 503 \(our stack\) from kwrong "
                      r"\(kwrong\.invalid:5061\); "
                      r"trying to_uri\[1\] kudp\.invalid:5060$",
                      d.log_text(), re.M),
            "F: the failover is logged with the gateways' addresses",
            "\n".join(ln for ln in d.log_text().splitlines()
                      if "trying to_uri" in ln))


PROMPT_SECONDS = 2.0


def tls_material_by_ip(t):
    """The harness's CA and certificates (kamailio.tls_material, which
    keeps files already in t.path("tls")), made here first with the good
    certificate naming 127.0.0.1 as a DNS subjectAltName: sofia-sip
    1.12.11 matches a server's name against the DNS subjectAltNames (the
    CN only when there are none), never an IP one, and its resolver does
    not read /etc/hosts, so on loopback the test dials 127.0.0.1 and the
    certificate must name it that way."""
    tls_material(t, server=("127.0.0.1",
                            "DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost"))


def main(t):
    if not os.path.exists("/usr/sbin/kamailio") or not shutil.which("baresip"):
        t.fail("kamailio and baresip installed (.ci/setup)")
        return
    make_prompt(t.path("prompts", "notice.wav"), PROMPT_SECONDS)
    uas_port = free_port("udp")
    tls_material_by_ip(t)
    kam = Kamailio(t, users={"alice": "s3cret"}, tls=True,
                   downstream=uas_port).start()
    gws = [gateway("k%s" % tr, None, host="k%s.invalid" % tr, domain=DOMAIN,
                   transport=tr,
                   proxy=kam.address(tr) if tr != "tls"
                   else "127.0.0.1:%d" % kam.port("tls"),
                   tls_ca_file=kam.ca_file)
           for tr in ("udp", "tcp", "tls")]
    gws.append(gateway("kwrong", None, host="kwrong.invalid", domain=DOMAIN,
                       transport="tls",
                       proxy="127.0.0.1:%d" % kam.port("tls_wrong"),
                       tls_ca_file=kam.ca_file))
    d = t.ctid(gateways=gws)
    d.start()
    c = t.client(d.listen_port)
    t.run("A: UDP, TCP, TLS through Kamailio", case_a, t, kam, d, c, uas_port)
    t.run("B: TLS certificate names", case_b, t, kam, d, c, uas_port)
    t.run("C: a registered phone behind Kamailio", case_c, t, kam, d, c)
    t.run("F: failover after a TLS failure", case_f, t, kam, d, c, uas_port)
    t.run("D: Kamailio challenges the INVITE (407)", case_d, t, uas_port)
    t.run("E: hosted trunk: register and call over TLS and TCP", case_e, t,
          uas_port)


t = Test("trunk_kamailio")
with t:
    main(t)
