#!/usr/bin/env python3
"""ctid integration test: RTCP (issue 10, bug 1: the RTCP port and sender
reports).

A  A 12 s prompt to a sipp callee whose RTP sink also listens on RTP + 1.
   While the call plays, ctid's own RTCP port (its offered RTP port + 1) is
   bound: datagrams sent to it from a connected socket draw no ICMP port
   unreachable (no ConnectionRefusedError). The sink's RTCP port receives
   compound packets from ctid's RTP port + 1: SR (version 2, PT 200, no
   report blocks) + SDES CNAME, SSRC = the RTP stream's, packet and octet
   counts matching what the sink had received by then, NTP time = now,
   RTP timestamp on the stream's clock, at least two reports during the
   prompt at RFC 3550 intervals (2.05-6.16 s; checked within generous
   bounds), then SR + SDES + BYE when the prompt ends, counting every RTP
   packet. Both ports are released after the call.
B  The callee hangs up 1.5 s into the prompt: the stopped stream still
   says goodbye (SR + SDES + BYE with the packets sent so far).
C  The answer names its RTCP port (a=rtcp:P IN IP4 127.0.0.1, RFC 3605):
   reports go to P, none to RTP + 1.
"""
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, construct, check_released,  # noqa: E402
                      make_prompt, gateway, free_port, udp_port_bound, HOST)

PROMPT_SECONDS = 12.0
NTP_UNIX = 2208988800


def parse_rtcp(data):
    """A compound RTCP packet as a list of dicts, or None when its lengths
    do not add up."""
    out, off = [], 0
    while off + 4 <= len(data):
        b0, pt, length = struct.unpack("!BBH", data[off:off + 4])
        end = off + 4 * (length + 1)
        if end > len(data):
            return None
        part = {"version": b0 >> 6, "padding": (b0 >> 5) & 1,
                "count": b0 & 0x1F, "pt": pt, "length": length,
                "body": data[off + 4:end]}
        body = part["body"]
        if pt == 200 and len(body) >= 24:
            (part["ssrc"], hi, lo, part["rtp_ts"], part["packets"],
             part["octets"]) = struct.unpack("!IIIIII", body[:24])
            part["ntp"] = hi + lo / 2 ** 32 - NTP_UNIX   # Unix seconds
        elif pt == 202 and len(body) >= 4:
            part["ssrc"] = struct.unpack("!I", body[:4])[0]
            items, i = {}, 4
            while i + 2 <= len(body) and body[i] != 0:
                typ, n = body[i], body[i + 1]
                items[typ] = body[i + 2:i + 2 + n]
                i += 2 + n
            part["items"] = items
        elif pt == 203:
            part["ssrcs"] = [struct.unpack("!I", body[k:k + 4])[0]
                             for k in range(0, 4 * part["count"], 4)]
        out.append(part)
        off = end
    return out if off == len(data) else None


def offered_rtp_port(sp):
    """ctid's RTP port from the SDP offer in the INVITE sipp received."""
    inv = sp.received("INVITE")
    for line in (inv[0] if inv else "").splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    return None


def probe_bound(port, n=5):
    """Sends n datagrams to 127.0.0.1:port from a connected socket and
    returns None when no ICMP port unreachable came back, else the error."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((HOST, port))
        s.settimeout(0.3)
        for _ in range(n):
            s.send(b"\x80\xc9\x00\x01probe")   # an RR-looking datagram
            time.sleep(0.05)
        try:
            s.recv(100)
            return "a reply came back"
        except socket.timeout:
            pass
        s.send(b"again")
        time.sleep(0.1)
        s.send(b"again")
        return None
    except ConnectionRefusedError as e:
        return "ConnectionRefusedError (ICMP port unreachable): %s" % e
    finally:
        s.close()


def check_compound(t, label, parts, ssrc, bye):
    """Layout of one compound packet from ctid; returns (sr, cname)."""
    ok = t.check(parts is not None, "%s: lengths add up" % label)
    if not ok:
        return None, None
    want = [200, 202, 203] if bye else [200, 202]
    t.check([p["pt"] for p in parts] == want, "%s: packet types %s" % (label, want),
            "got %s" % [p["pt"] for p in parts])
    t.check(all(p["version"] == 2 and p["padding"] == 0 for p in parts),
            "%s: version 2, no padding" % label)
    sr = parts[0] if parts and parts[0]["pt"] == 200 else None
    if sr is None:
        return None, None
    t.check(sr["count"] == 0 and sr["length"] == 6,
            "%s: SR without report blocks (RC 0, length 6)" % label,
            "RC %d length %d" % (sr["count"], sr["length"]))
    t.check(sr.get("ssrc") == ssrc, "%s: SR SSRC is the RTP stream's %08x" % (
        label, ssrc), "got %08x" % sr.get("ssrc", 0))
    t.check(sr.get("octets") == 160 * sr.get("packets", -1),
            "%s: octet count = 160 x packet count" % label,
            "packets %s octets %s" % (sr.get("packets"), sr.get("octets")))
    cname = None
    if len(parts) > 1 and parts[1]["pt"] == 202:
        sdes = parts[1]
        cname = sdes.get("items", {}).get(1)
        t.check(sdes["count"] == 1 and sdes.get("ssrc") == ssrc and cname,
                "%s: SDES has one chunk with the SSRC and a CNAME" % label,
                "count %d ssrc %s items %r" % (sdes["count"], sdes.get("ssrc"),
                                               sdes.get("items")))
    if bye and len(parts) > 2:
        t.check(parts[2].get("ssrcs") == [ssrc], "%s: BYE names the SSRC" % label,
                "got %r" % parts[2].get("ssrcs"))
    return sr, cname


t = Test("rtcp")
with t:
    make_prompt(t.path("prompts", "long.wav"), PROMPT_SECONDS)
    make_prompt(t.path("prompts", "short.wav"), 4.0)
    ports = {k: free_port("udp") for k in ("A", "B", "C")}
    d = t.ctid(gateways=[gateway("gw" + k, p) for k, p in ports.items()])
    d.start()
    c = t.client(d.listen_port, "client")

    def call_a():
        sink = t.rtp_sink("A")
        sp = t.sipp("uas_answer_wait_bye.xml", port=ports["A"],
                    rtp_sink_port=sink.port, codec=8).start()
        to_uri = d.uri(ports["A"])
        res_id = construct(t, c, d, to_uri, "long.wav", play_repeat=0,
                           user_data="rtcp-a")
        if res_id is None:
            return
        if not t.check(sink.wait_packets(1, 15), "RTP arrives"):
            return
        rtp_port = offered_rtp_port(sp)
        if not t.check(rtp_port is not None, "the SDP offer names ctid's RTP port"):
            return
        t.check(sink.snapshot()[0].src == (HOST, rtp_port),
                "RTP comes from the offered port %d" % rtp_port,
                "from %r" % (sink.snapshot()[0].src,))
        # ctid's own RTCP port during the call
        t.check(udp_port_bound(rtp_port + 1),
                "ctid's RTCP port %d (RTP + 1) is bound during the call" % (rtp_port + 1))
        err = probe_bound(rtp_port + 1)
        t.check(err is None, "datagrams to ctid's RTCP port meet no ICMP port "
                "unreachable", err or "")
        ev = c.wait_event(res_id, timeout=PROMPT_SECONDS + 30)
        check_released(t, ev, res_id, "rtcp-a", None, "sys", cause=200, answered=True)
        sp.check_exit(t, "sipp received the daemon's BYE")
        sink.wait_quiet(0.5, 5)
        time.sleep(0.5)
        pkts = sink.snapshot()
        rtcp = sink.rtcp_snapshot()
        t.log("RTP packets %d, RTCP packets %d" % (len(pkts), len(rtcp)))
        # the ports go back once the call is over
        deadline = time.time() + 5
        while time.time() < deadline and (udp_port_bound(rtp_port) or
                                          udp_port_bound(rtp_port + 1)):
            time.sleep(0.1)
        t.check(not udp_port_bound(rtp_port) and not udp_port_bound(rtp_port + 1),
                "RTP and RTCP ports %d/%d are released after the call" % (
                    rtp_port, rtp_port + 1))
        if not t.check(len(rtcp) >= 3, "RTCP: at least two reports and a BYE "
                       "arrived on the sink's RTP + 1", "got %d" % len(rtcp)):
            return
        ssrc = pkts[0].ssrc
        t.check(all(src == (HOST, rtp_port + 1) for _, src, _ in rtcp),
                "RTCP comes from ctid's RTP port + 1 (%d)" % (rtp_port + 1),
                "sources %s" % sorted(set(src for _, src, _ in rtcp)))
        # the stream's clock: RTP timestamp minus 8000 x arrival time,
        # median over all packets (robust to a late packet or two)
        offsets = sorted(p.ts - 8000 * p.at for p in pkts)
        clock = offsets[len(offsets) // 2]
        reports, cnames = [], set()
        for i, (data, _src, at) in enumerate(rtcp):
            last = i == len(rtcp) - 1
            label = "RTCP %d%s" % (i, " (last)" if last else "")
            sr, cname = check_compound(t, label, parse_rtcp(data), ssrc, bye=last)
            cnames.add(cname)
            if sr is None:
                continue
            reports.append((at, sr))
            got = sum(1 for p in pkts if p.at <= at)
            t.check(abs(sr["packets"] - got) <= 10,
                    "%s: packet count %d matches the %d RTP packets received by "
                    "then (+-10)" % (label, sr["packets"], got))
            t.check(abs(sr["ntp"] - at) < 1.0,
                    "%s: NTP timestamp is now (%.3f s off)" % (label, sr["ntp"] - at))
            want_ts = (clock + 8000 * sr["ntp"]) % 2 ** 32
            diff = (sr["rtp_ts"] - want_ts + 2 ** 31) % 2 ** 32 - 2 ** 31
            t.check(abs(diff) <= 1600,
                    "%s: RTP timestamp is the stream's clock at the NTP time "
                    "(%+d samples, +-200 ms)" % (label, diff))
        t.check(len(cnames) == 1 and None not in cnames,
                "one CNAME in every report", repr(cnames))
        if len(reports) != len(rtcp):
            return
        t.check(reports[-1][1]["packets"] == len(pkts),
                "the BYE's SR counts every RTP packet (%d)" % len(pkts),
                "SR says %d" % reports[-1][1]["packets"])
        ntps = [sr["ntp"] for _, sr in reports]
        t.check(all(a < b for a, b in zip(ntps, ntps[1:])),
                "NTP timestamps increase", repr(ntps))
        regular = [at for at, _ in reports[:-1]]
        t.check(len(regular) >= 2, "at least two reports during a %.0f s prompt "
                "(before the BYE)" % PROMPT_SECONDS, "got %d" % len(regular))
        first = regular[0] - pkts[0].at
        t.check(0.5 <= first <= 4.5,
                "the first report comes %.2f s after the first RTP packet "
                "(RFC 3550: 1.03-3.08 s; allowed 0.5-4.5)" % first)
        gaps = [b - a for a, b in zip(regular, regular[1:])]
        t.check(all(1.5 <= g <= 8.0 for g in gaps),
                "intervals between reports %s s within 1.5-8 (RFC 3550: "
                "2.05-6.16 s)" % ["%.2f" % g for g in gaps])
        t.check(pkts[-1].at <= reports[-1][0] <= pkts[-1].at + 1.0,
                "the BYE follows the last RTP packet")
    t.run("A: reports during a 12 s prompt, BYE at its end", call_a)

    def call_b():
        sink = t.rtp_sink("B")
        sp = t.sipp("uas_answer_hangup.xml", port=ports["B"],
                    rtp_sink_port=sink.port, codec=0).start()
        to_uri = d.uri(ports["B"])
        res_id = construct(t, c, d, to_uri, "short.wav", play_repeat=0,
                           user_data="rtcp-b")
        if res_id is None:
            return
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "rtcp-b", None, "usr", cause=200, answered=True)
        sp.check_exit(t, "sipp's BYE was answered")
        sink.wait_quiet(0.5, 5)
        time.sleep(0.5)
        pkts = sink.snapshot()
        rtcp = sink.rtcp_snapshot()
        t.check(0 < len(pkts) < 200, "RTP stopped early (%d packets of 200)"
                % len(pkts))
        if not t.check(len(rtcp) >= 1, "RTCP arrived", "none"):
            return
        sr, _ = check_compound(t, "last RTCP", parse_rtcp(rtcp[-1][0]),
                               pkts[0].ssrc if pkts else -1, bye=True)
        if sr is not None:
            t.check(sr["packets"] == len(pkts),
                    "the BYE's SR counts the %d RTP packets sent" % len(pkts),
                    "SR says %d" % sr["packets"])
    t.run("B: the callee hangs up: BYE for the stopped stream", call_b)

    def call_c():
        sink = t.rtp_sink("C")
        other = t.add_cleanup(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        other.bind((HOST, 0))
        other.settimeout(0.2)
        rtcp_port = other.getsockname()[1]
        sp = t.sipp("uas_answer_rtcp_attr.xml", port=ports["C"],
                    rtp_sink_port=sink.port, codec=8,
                    extra=("-key", "rtcp_port", str(rtcp_port))).start()
        to_uri = d.uri(ports["C"])
        res_id = construct(t, c, d, to_uri, "short.wav", play_repeat=0,
                           user_data="rtcp-c")
        if res_id is None:
            return
        ev = c.wait_event(res_id, timeout=30)
        check_released(t, ev, res_id, "rtcp-c", None, "sys", cause=200, answered=True)
        sp.check_exit(t, "sipp received the daemon's BYE")
        sink.wait_quiet(0.5, 5)
        got = []
        while True:
            try:
                got.append(other.recv(2048))
            except socket.timeout:
                break
        pkts = sink.snapshot()
        t.check(len(got) >= 2, "reports and BYE arrive at the a=rtcp port %d" % rtcp_port,
                "got %d" % len(got))
        t.check(not sink.rtcp_snapshot(), "nothing goes to RTP + 1",
                "got %d" % len(sink.rtcp_snapshot()))
        if got and pkts:
            check_compound(t, "last RTCP at the a=rtcp port", parse_rtcp(got[-1]),
                           pkts[0].ssrc, bye=True)
    t.run("C: a=rtcp in the answer names the RTCP port", call_c)
