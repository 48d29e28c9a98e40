#!/usr/bin/env python3
"""ctid integration test: the metrics endpoint (metrics_listen).

A  /metrics before any call: every line is strict Prometheus text (format
   0.0.4: HELP/TYPE before samples, escaped labels, cumulative histogram
   buckets), build_info, the content type; /healthz 200 "ok"; 404 for other
   paths, 405 for other methods; --check-config prints metrics_listen.
B  one answered call (uas_answer_wait_bye) and one rejected (uas_busy), a
   second connection subscribed: during the first call active_calls and its
   gateway's gauge are 1; afterwards constructed +2, answered +1,
   released{none} +1, released{call rejected} +1, the histogram's count +2,
   active 0, rtp_packets_sent_total grew by exactly the packets the sink
   received, events delivered +4 (two events, two receivers), connections.
C  a construct with bad params: construct_refused_total{code="-32602"} +1,
   histogram count +1, constructed unchanged.
D  SIGTERM with a reader that never reads (so the flush lasts 2 s):
   /healthz says 503 "stopping" meanwhile; ctid exits 0.
E  off by default: a daemon without metrics_listen listens on nothing but
   its JSON-RPC port; a metrics_listen that is taken fails start-up.
"""
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      make_prompt, gateway, free_port, http_get, HOST, check_result)

GW_B_NAME = 'b "quoted" \\ name'     # label escaping end to end
GW_B_LABEL = 'b \\"quoted\\" \\\\ name'

# --------------------------------------------------------------------------
# a strict parser of the Prometheus text format 0.0.4

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:\\\\|\\"|\\n|[^"\\\n])*"'   # only \\ \" \n escapes
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)=(%s)' % LABEL_VALUE
LABEL_NC = r'[a-zA-Z_][a-zA-Z0-9_]*=%s' % LABEL_VALUE
SAMPLE_RE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?\})? (\S+)(?: (-?\d+))?$" % (
    NAME, LABEL_NC, LABEL_NC))
HELP_RE = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)


class PromError(Exception):
    pass


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", s):
        raise PromError("bad value %r" % s)
    return float(s)


def parse_prom(text):
    """Returns ({(name, ((label, value), ...)): float}, {family: type}).
    Raises PromError naming the first line that breaks the format."""
    if not text.endswith("\n"):
        raise PromError("does not end with a newline")
    samples, types, helps, seen_sample = {}, {}, {}, set()

    def family(name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and types.get(base) == "histogram":
                return base
        return name

    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (n, line)
        if line == "":
            raise PromError("%s: empty line" % where)
        if line.startswith("#"):
            m = HELP_RE.match(line)
            if m:
                if m.group(1) in helps:
                    raise PromError("%s: second HELP" % where)
                helps[m.group(1)] = m.group(2)
                continue
            m = TYPE_RE.match(line)
            if m:
                if m.group(1) in types:
                    raise PromError("%s: second TYPE" % where)
                if m.group(1) in seen_sample:
                    raise PromError("%s: TYPE after samples" % where)
                types[m.group(1)] = m.group(2)
                continue
            raise PromError("%s: a comment that is neither HELP nor TYPE" % where)
        m = SAMPLE_RE.match(line)
        if not m:
            raise PromError("%s: not a sample line" % where)
        name, labels_text, value = m.group(1), m.group(2), m.group(3)
        labels = tuple(sorted((k, unescape(v[1:-1])) for k, v in
                              re.findall(LABEL, labels_text or "")))
        if len(set(k for k, _ in labels)) != len(labels):
            raise PromError("%s: repeated label" % where)
        fam = family(name)
        if fam not in types:
            raise PromError("%s: no TYPE line before it" % where)
        if types[fam] == "counter" and not name.endswith("_total"):
            raise PromError("%s: counter without _total" % where)
        seen_sample.add(fam)
        key = (name, labels)
        if key in samples:
            raise PromError("%s: duplicate series" % where)
        samples[key] = parse_value(value)
    # histograms: cumulative buckets ending in +Inf == _count
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        buckets = sorted(((parse_value(dict(l)["le"]), v) for (nm, l), v in
                          samples.items() if nm == fam + "_bucket"))
        if not buckets or buckets[-1][0] != math.inf:
            raise PromError("%s: no +Inf bucket" % fam)
        if any(later[1] < earlier[1]
               for earlier, later in zip(buckets, buckets[1:])):
            raise PromError("%s: buckets not cumulative" % fam)
        if buckets[-1][1] != samples.get((fam + "_count", ())):
            raise PromError("%s: +Inf bucket != _count" % fam)
        if (fam + "_sum", ()) not in samples:
            raise PromError("%s: no _sum" % fam)
    return samples, types


# --------------------------------------------------------------------------
# HTTP


def listening_ports(pid):
    """TCP ports the process has in LISTEN state (from /proc)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


t = Test("metrics")
with t:
    make_prompt(t.path("prompts", "notice.wav"), 1.03)
    port_a, port_b = free_port("udp"), free_port("udp")
    mport = free_port("tcp")
    d = t.ctid(gateways=[gateway("gw-a", port_a), gateway(GW_B_NAME, port_b)],
               conf={"metrics_listen": "%s:%d" % (HOST, mport),
                     # part D keeps ~10 MB of replies queued on purpose
                     "max_output_bytes": 64 << 20})
    d.start()
    state = {}

    def scrape_checked(label):
        status, headers, body = http_get(mport, "/metrics")
        t.check_eq(status, 200, "%s: GET /metrics status" % label)
        try:
            samples, types = parse_prom(body)
            t.check(True, "%s: every line parses as Prometheus text (%d samples)" % (
                label, len(samples)))
        except PromError as e:
            t.fail("%s: every line parses as Prometheus text" % label, str(e))
            return {}, {}, headers
        return samples, types, headers

    def val(samples, name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))))

    def part_a():
        samples, types, headers = scrape_checked("before")
        state["before"] = samples
        t.check_eq(headers.get("content-type", "").split(";")[0], "text/plain",
                   "content type text/plain")
        t.check("version=0.0.4" in headers.get("content-type", ""),
                "content type says version=0.0.4", headers.get("content-type"))
        out = subprocess.run([t.ctid_bin, "--version"], stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.split()
        version = out[-1] if out else "?"
        t.check_eq(val(samples, "ctid_build_info", version=version), 1.0,
                   "ctid_build_info{version=%r}" % version)
        want_types = {
            "ctid_build_info": "gauge",
            "ctid_calls_constructed_total": "counter",
            "ctid_calls_answered_total": "counter",
            "ctid_calls_released_total": "counter",
            "ctid_construct_refused_total": "counter",
            "ctid_active_calls": "gauge",
            "ctid_gateway_active_calls": "gauge",
            "ctid_construct_duration_seconds": "histogram",
            "ctid_rtp_packets_sent_total": "counter",
            "ctid_rtp_packets_late_total": "counter",
            "ctid_rpc_connections": "gauge",
            "ctid_rpc_connections_total": "counter",
            "ctid_events_delivered_total": "counter",
            "ctid_events_journaled_total": "counter",
            "ctid_uptime_seconds": "gauge",
        }
        for name, typ in want_types.items():
            t.check_eq(types.get(name), typ, "TYPE of %s" % name)
        t.check_eq(val(samples, "ctid_active_calls"), 0.0, "active_calls 0 at start")
        t.check_eq(val(samples, "ctid_gateway_active_calls", gateway="gw-a"), 0.0,
                   "gateway gw-a at 0")
        t.check_eq(val(samples, "ctid_gateway_active_calls", gateway=GW_B_NAME), 0.0,
                   "gateway with quotes and backslash at 0 (label unescapes)")
        status, headers, body = http_get(mport, "/metrics")
        t.check(('gateway="%s"' % GW_B_LABEL) in body,
                "the gateway label is escaped in the text", GW_B_LABEL)
        t.check(val(samples, "ctid_uptime_seconds") is not None and
                0 <= val(samples, "ctid_uptime_seconds") < 600, "uptime in seconds")

        status, headers, body = http_get(mport, "/healthz")
        t.check_eq((status, body), (200, "ok\n"), "GET /healthz")
        status, _, _ = http_get(mport, "/nothing-here")
        t.check_eq(status, 404, "GET /nothing-here")
        status, _, _ = http_get(mport, "/metrics?x=1")
        t.check_eq(status, 200, "GET /metrics?x=1 (query ignored)")
        status, headers, _ = http_get(mport, "/metrics", method="POST")
        t.check_eq(status, 405, "POST /metrics")
        t.check_eq(headers.get("allow"), "GET, HEAD", "405 says Allow: GET, HEAD")
        status, _, _ = http_get(mport, "/healthz", method="DELETE")
        t.check_eq(status, 405, "DELETE /healthz")
        status, _, body = http_get(mport, "/healthz", method="HEAD")
        t.check_eq((status, body), (200, ""), "HEAD /healthz")

        r = subprocess.run([t.ctid_bin, "--config", d.conf_path, "--check-config"],
                           stdout=subprocess.PIPE, universal_newlines=True)
        t.check("metrics_listen = %s:%d\n" % (HOST, mport) in r.stdout,
                "--check-config prints metrics_listen", r.stdout[-400:])
    t.run("A: before any call", part_a)

    def part_b():
        before = state["before"]
        c1 = t.client(d.listen_port, "creator")
        c2 = t.client(d.listen_port, "subscriber")
        r = c2.call("sys.subscribe", {})
        check_result(t, r, True, "sys.subscribe")

        sink = t.rtp_sink("A")
        sp = t.sipp("uas_answer_wait_bye.xml", port=port_a, rtp_sink_port=sink.port,
                    codec=8, ring_ms=500).start()
        to_uri = d.uri(port_a)
        reply = c1.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": "notice.wav", "play_repeat": 0})
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, None)
        during, _, _ = scrape_checked("during the call")
        t.check_eq(val(during, "ctid_active_calls"), 1.0, "active_calls 1 during the call")
        t.check_eq(val(during, "ctid_gateway_active_calls", gateway="gw-a"), 1.0,
                   "gateway gw-a has the call")
        t.check_eq(val(during, "ctid_gateway_active_calls", gateway="(none)"), 0.0,
                   "no call outside a gateway")
        t.check_eq(val(during, "ctid_rpc_connections"), 2.0, "2 RPC connections open")
        if res_id:
            ev = c1.wait_event(res_id, timeout=30)
            check_released(t, ev, res_id, None, None, "sys", cause=200, answered=True)
        sp.check_exit(t, "sipp got the BYE")

        sp = t.sipp("uas_busy.xml", port=port_b).start()
        to_uri = d.uri(port_b)
        reply = c1.call("ext.notify_call.construct", {
            "to_uri": to_uri, "play_content": "notice.wav"})
        res_id, _ = check_construct_result(t, reply, d.node_id, to_uri, None)
        if res_id:
            ev = c1.wait_event(res_id, timeout=30)
            check_released(t, ev, res_id, None, "call rejected", "usr", cause=486,
                           answered=False)
        sp.check_exit(t, "sipp sent 486")
        t.check(c2.wait_event(res_id, timeout=5) is not None,
                "the subscriber got the second event")
        sink.wait_quiet(0.5, 5)
        received = sink.count()
        t.check(received > 0, "the sink received RTP (%d packets)" % received)

        after, _, _ = scrape_checked("after")
        state["after"] = after

        def delta(name, **labels):
            a, b = val(after, name, **labels), val(before, name, **labels)
            return None if a is None or b is None else a - b
        t.check_eq(delta("ctid_calls_constructed_total"), 2.0, "constructed +2")
        t.check_eq(delta("ctid_calls_answered_total"), 1.0, "answered +1")
        t.check_eq(delta("ctid_calls_released_total", error="none"), 1.0,
                   "released{error=none} +1")
        t.check_eq(delta("ctid_calls_released_total", error="call rejected"), 1.0,
                   "released{error=\"call rejected\"} +1")
        t.check_eq(delta("ctid_calls_released_total", error="dial failed"), 0.0,
                   "released{error=\"dial failed\"} +0")
        t.check_eq(delta("ctid_construct_duration_seconds_count"), 2.0,
                   "construct histogram count +2")
        t.check(0 < delta("ctid_construct_duration_seconds_sum") < 1.0,
                "construct histogram sum grew by under a second",
                repr(delta("ctid_construct_duration_seconds_sum")))
        t.check_eq(delta("ctid_rtp_packets_sent_total"), float(received),
                   "rtp_packets_sent_total grew by the packets received (%d)" % received)
        late = delta("ctid_rtp_packets_late_total")
        t.check(late is not None and 0 <= late <= received,
                "rtp_packets_late_total between 0 and the packets sent (%r)" % late)
        t.check_eq(val(after, "ctid_active_calls"), 0.0, "active_calls 0 after")
        t.check_eq(val(after, "ctid_gateway_active_calls", gateway="gw-a"), 0.0,
                   "gateway gw-a at 0 after")
        t.check_eq(val(after, "ctid_gateway_active_calls", gateway=GW_B_NAME), 0.0,
                   "gateway b at 0 after")
        t.check_eq(delta("ctid_events_delivered_total"), 4.0,
                   "events delivered +4 (2 events x creator and subscriber)")
        t.check_eq(delta("ctid_events_journaled_total"), 2.0,
                   "events journaled +2 (each event once, whoever receives it)")
        t.check_eq(val(after, "ctid_rpc_connections"), 2.0, "2 RPC connections open")
        t.check_eq(delta("ctid_rpc_connections_total"), 2.0, "connections accepted +2")
        t.check(val(after, "ctid_uptime_seconds") > val(before, "ctid_uptime_seconds"),
                "uptime grows")
        c1.close()   # c2 subscribed: kept open even after EOF, by design
        deadline = time.time() + 5
        while time.time() < deadline:
            s, _, _ = scrape_checked("after a close")
            if val(s, "ctid_rpc_connections") == 1.0:
                break
            time.sleep(0.1)
        t.check_eq(val(s, "ctid_rpc_connections"), 1.0,
                   "a closed connection leaves the gauge")
    t.run("B: an answered and a rejected call", part_b)

    def part_c():
        before = state.get("after") or scrape_checked("before C")[0]
        c = t.client(d.listen_port, "bad")
        r = c.call("ext.notify_call.construct", {"to_uri": "not a uri!",
                                                 "play_content": "notice.wav"})
        t.check(r is not None and r.get("error", {}).get("code") == -32602,
                "bad to_uri: -32602", repr(r))
        r = c.call("ext.notify_call.construct", {"to_uri": d.uri(port_a),
                                                 "play_content": "missing.wav"})
        t.check(r is not None and r.get("error", {}).get("code") == 404,
                "missing prompt: 404", repr(r))
        after, _, _ = scrape_checked("after bad constructs")

        def delta(name, **labels):
            a, b = val(after, name, **labels), val(before, name, **labels)
            return None if a is None or b is None else a - b
        t.check_eq(delta("ctid_construct_refused_total", code="-32602"), 1.0,
                   "construct_refused_total{code=\"-32602\"} +1")
        t.check_eq(delta("ctid_construct_refused_total", code="404"), 1.0,
                   "construct_refused_total{code=\"404\"} +1")
        t.check_eq(delta("ctid_construct_refused_total", code="503"), 0.0,
                   "construct_refused_total{code=\"503\"} +0")
        t.check_eq(delta("ctid_calls_constructed_total"), 0.0, "constructed unchanged")
        t.check_eq(delta("ctid_construct_duration_seconds_count"), 2.0,
                   "construct histogram counts refusals too (+2)")
    t.run("C: refused constructs", part_c)

    def part_d():
        # A client that sends many requests and reads none of the replies:
        # 10 MB of replies stay queued in ctid (the kernel takes at most
        # 4 MB, tcp_wmem; max_output_bytes is raised above that for this
        # daemon), so after SIGTERM the flush waits its full 2 s, during
        # which /healthz must say 503.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, d.listen_port))
        t.add_cleanup(s)
        s.sendall(b'{"id":1,"method":"sys.ping"}\n' * 250000)
        time.sleep(0.2)
        d.proc.send_signal(signal.SIGTERM)
        got = None
        deadline = time.time() + 5
        while time.time() < deadline and d.alive():
            try:
                got = http_get(mport, "/healthz", timeout=1)
            except OSError:
                break
            if got[0] == 503:
                break
            time.sleep(0.02)
        t.check(got is not None and got[0] == 503 and got[2] == "stopping\n",
                "/healthz is 503 \"stopping\" after SIGTERM", repr(got))
        # no second SIGTERM: it could land after the handlers are gone
        try:
            rc = d.proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        t.check_eq(rc, 0, "ctid exits 0 after the flush")
        try:
            http_get(mport, "/healthz", timeout=1)
            t.fail("the metrics port is closed after exit")
        except OSError:
            t.check(True, "the metrics port is closed after exit")
    t.run("D: /healthz after SIGTERM", part_d)

    def part_e():
        d2 = t.ctid(name="ctid-off")
        d2.start()
        ports = listening_ports(d2.proc.pid)
        # (and SIP over TCP on the sip port, since issue 13)
        t.check_eq(ports, {d2.listen_port, d2.sip_port},
                   "without metrics_listen only the JSON-RPC and SIP ports "
                   "listen")
        r = subprocess.run([t.ctid_bin, "--config", d2.conf_path, "--check-config"],
                           stdout=subprocess.PIPE, universal_newlines=True)
        t.check("metrics_listen = \n" in r.stdout,
                "--check-config prints an empty metrics_listen", r.stdout[-400:])
        t.check_eq(d2.stop(), 0, "ctid-off exits 0")

        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        taken.bind((HOST, 0))
        taken.listen(1)
        t.add_cleanup(taken)
        d3 = t.ctid(name="ctid-taken",
                    conf={"metrics_listen": "%s:%d" % (HOST, taken.getsockname()[1])})
        try:
            d3.start(ready_timeout=5)
            t.fail("start-up fails when metrics_listen is taken")
        except RuntimeError:
            t.check(True, "start-up fails when metrics_listen is taken")
        t.check(d3.proc.returncode == 1, "exit status 1", repr(d3.proc.returncode))
        t.check("metrics_listen" in d3.log_text(), "the error names metrics_listen",
                d3.log_tail(5))

        with open(d2.conf_path, "a") as f:
            f.write("metrics_listen = 9110\n")
        r = subprocess.run([t.ctid_bin, "--config", d2.conf_path, "--check-config"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        t.check(r.returncode == 1 and "metrics_listen" in r.stderr,
                "--check-config refuses metrics_listen = 9110", r.stderr)
    t.run("E: off by default; a taken port fails start-up", part_e)

    # the parser itself refuses what it should
    def parser_self_test():
        bad = [
            "x 1\n",                                         # no TYPE
            "# TYPE x gauge\nx{a=\"b} 1\n",                  # bad label
            "# TYPE x gauge\nx 1",                           # no final newline
            "# TYPE x gauge\n\nx 1\n",                       # empty line
            "# TYPE x gauge\nx 1\nx 1\n",                    # duplicate
            "# TYPE x counter\nx 1\n",                       # counter w/o _total
            "# TYPE x gauge\nx one\n",                       # bad value
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        ]
        for text in bad:
            try:
                parse_prom(text)
                t.fail("parser refuses %r" % text)
            except PromError:
                t.check(True, "parser refuses %r" % text)
        s, _ = parse_prom('# HELP x a\n# TYPE x gauge\nx{a="q\\"\\\\\\n"} 2.5\n')
        t.check_eq(s.get(("x", (("a", 'q"\\\n'),))), 2.5, "parser unescapes labels")
    t.run("parser self-test", parser_self_test)
