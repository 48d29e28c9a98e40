"""ctidtest: shared code of ctid's integration tests (stdlib only).

Each tests/integration/test_*.py starts its own ctid (generated config, free
ports, temp dir), plays the callee with sipp scenarios from tests/sipp, and
checks the contract (shared/spec/notify_call.md: JSON-RPC over TCP, the
construct result, the on_released event, the RTP the daemon sends). Needs
python3 (stdlib only), sipp and sox on PATH; tests run in parallel (ctest -j).

Run one test by hand (from the repository root):

    python3 tests/integration/test_call_play.py --ctid build/ctid \\
        --sipp-dir tests/sipp [--keep] [--verbose]

--keep (or CTID_TEST_KEEP=1) keeps the temp dir (ctid.conf, ctid.log, prompts,
sipp message/error logs) and prints its path; it is also kept whenever a check
failed.  --verbose prints every JSON line sent and received.  Every check
prints one PASS/FAIL line; the last line is "N passed, M failed" and the exit
status is 1 when M > 0.

Pieces: Test (checks, temp dir, cleanup), Daemon (a program run in the
foreground: start, ready, stop, log; Ctid's and kamailio.py's), Ctid
(daemon process: wait_log, wait_exit, reload), Sipp (UAS process:
received, responses), RpcClient (one JSON-RPC connection: replies matched by id, events collected separately,
arrival order kept), request_half_closed (an nc-style client), RtpSink (UDP
socket + thread recording RTP packets; check_one_stream), the metrics
endpoint (http_get, scrape, wait_metric), prompt helpers (sox), G.711
helpers, and the contract checks every test shares (construct,
check_result, check_construct_result, check_released).
"""

import argparse
import atexit
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import wave

HOST = "127.0.0.1"
RES_ID_RE = r"^%s-ext\.notify_call-(\d+)$"
ALAW_SILENCE = 0xD5
ULAW_SILENCE = 0xFF
FRAME = 160  # samples (= bytes of G.711) per 20 ms


# --------------------------------------------------------------------------
# checks


class Test:
    """One test script: argument parsing, checks, temp dir, cleanup.

        t = Test("call_play")
        with t:
            t.check(cond, "what", "detail when failing")
        (t.finish() runs on exit of the with block and exits the process)
    """

    def __init__(self, name, argv=None):
        p = argparse.ArgumentParser(description="ctid integration test " + name)
        p.add_argument("--ctid", required=True, help="path of the ctid binary")
        p.add_argument("--sipp-dir", default=os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "sipp"),
            help="directory of the sipp scenarios")
        p.add_argument("--keep", action="store_true",
                       help="keep the temp dir even when everything passed")
        p.add_argument("--verbose", "-v", action="store_true",
                       help="print every JSON-RPC line")
        self.args = p.parse_args(argv)
        self.name = name
        self.ctid_bin = os.path.abspath(self.args.ctid)
        self.sipp_dir = os.path.abspath(self.args.sipp_dir)
        self.keep = self.args.keep or os.environ.get("CTID_TEST_KEEP") == "1"
        self.verbose = self.args.verbose
        self.tmp = tempfile.mkdtemp(prefix="ctid-%s-" % name)
        self.missing_tools = [x for x in ("sipp", "sox") if shutil.which(x) is None]
        self.passed = 0
        self.failed = 0
        self.failures = []
        self._cleanup = []   # objects with .close()
        self.section_name = ""
        self.daemons = []
        self.sipps = []
        self.t0 = time.time()
        self.log("temp dir %s" % self.tmp)
        if self.missing_tools:
            self.fail("tools on PATH", "missing: %s" % " ".join(self.missing_tools))

    # -- output
    def log(self, msg):
        sys.stdout.write("[%6.2f] %s\n" % (time.time() - self.t0, msg))
        sys.stdout.flush()

    def section(self, name):
        self.section_name = name
        self.log("=== %s" % name)

    def check(self, cond, what, detail=""):
        label = ("%s: %s" % (self.section_name, what)) if self.section_name else what
        if cond:
            self.passed += 1
            self.log("PASS %s" % label)
        else:
            self.failed += 1
            self.failures.append(label)
            self.log("FAIL %s%s" % (label, (" -- " + detail) if detail else ""))
        return bool(cond)

    def check_eq(self, actual, expected, what):
        return self.check(actual == expected and type(actual) == type(expected),
                          "%s == %s" % (what, _short(expected)),
                          "got %s" % _short(actual))

    def check_in(self, actual, allowed, what):
        return self.check(actual in allowed, "%s in %s" % (what, _short(allowed)),
                          "got %s" % _short(actual))

    def fail(self, what, detail=""):
        return self.check(False, what, detail)

    def run(self, name, fn, *a, **kw):
        """Runs one sub-test; an exception counts as one failed check."""
        self.section(name)
        try:
            return fn(*a, **kw)
        except Exception as e:  # noqa: BLE001 - report and go on
            self.fail("no exception", "%s: %s\n%s" % (type(e).__name__, e,
                                                      traceback.format_exc()))
            return None
        finally:
            self.section_name = ""

    # -- resources
    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def add_cleanup(self, obj):
        self._cleanup.append(obj)
        return obj

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None and et is not SystemExit:
            self.fail("test body raised no exception", "%s: %s\n%s" % (
                et.__name__, ev, "".join(traceback.format_tb(tb))))
        self.finish()
        return False

    def finish(self):
        for obj in reversed(self._cleanup):
            try:
                obj.close()
            except Exception as e:  # noqa: BLE001
                self.log("cleanup of %r: %s" % (obj, e))
        self.section_name = ""
        for d in self.daemons:
            # sanitizer builds (CTID_SANITIZE) report on stderr = the log
            hits = [ln for ln in d.log_text().splitlines()
                    if re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", ln)]
            self.check(not hits, "%s log has no sanitizer report" % d.name,
                       "\n".join(hits[:10]))
        if self.failed:
            self.log("failed checks:")
            for f in self.failures:
                self.log("  - %s" % f)
            for d in self.daemons:
                self.log("---- last lines of %s (%s)" % (d.name, d.log_path))
                sys.stdout.write(d.log_tail(80))
                sys.stdout.write("\n")
            self.log("temp dir kept: %s" % self.tmp)
        elif self.keep:
            self.log("temp dir kept: %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)

    # -- factories
    def ctid(self, **kw):
        d = Ctid(self, **kw)
        self.daemons.append(d)
        return self.add_cleanup(d)

    def sipp(self, scenario, **kw):
        s = Sipp(self, scenario, **kw)
        self.sipps.append(s)
        return self.add_cleanup(s)

    def client(self, port, name=None):
        return self.add_cleanup(RpcClient(port, name=name, verbose=self.verbose,
                                          log=self.log))

    def rtp_sink(self, name="rtp"):
        return self.add_cleanup(RtpSink(name))


def _short(v, n=200):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


# --------------------------------------------------------------------------
# ports


def free_port(kind="tcp"):
    """A port free now for both UDP and TCP, so one number serves both,
    never handed out twice by this process. Taken above the kernel's
    ephemeral range (ephemeral_range), not from bind 0: a port promised to
    a sipp or a Kamailio is then never the source port the kernel gives
    some other process's connect() or bind(0) meanwhile (a TLS listener,
    an outgoing TCP connection), which made "Address already in use" a
    matter of luck under ctest -j2. The daemons' RTP ranges (rtp_range)
    lie below it, so neither world takes the other's ports."""
    lo = ephemeral_range()[1] + 1
    if lo > 65000:
        lo = 1024 + 10000  # a machine whose range reaches the top
    for _ in range(400):
        port = random.randrange(lo, 65536)
        if port in _given_ports or not _reserve_port(port):
            continue
        ok = True
        for st in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, st)
            try:
                s.bind((HOST, port))
            except OSError:
                ok = False
            s.close()
        _given_ports.add(port)  # reserved either way; a bound one is skipped
        if ok:
            return port
    raise RuntimeError("no free port found")


PORT_DIR = os.path.join(tempfile.gettempdir(), "ctid-test-ports")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reserve_port(port):
    """Claim a port across every test process on the machine, not just this
    one: under ctest -j2 two tests drew the same random port (a birthday
    clash over ~4,500 ports), and the second sipp failed with "Address
    already in use" while the first held it. A claim is a file
    PORT_DIR/<port> created with O_EXCL and holding the owner's pid; a
    claim whose owner died (kill -9, a crashed test) is taken over, the
    rename deciding between two takers. Claims are removed at exit."""
    os.makedirs(PORT_DIR, exist_ok=True)
    path = os.path.join(PORT_DIR, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read().strip() or "0")
            except (OSError, ValueError):
                owner = 0
            if owner and (owner == os.getpid() or _pid_alive(owner)):
                return False
            if not owner and _age(path) < 10:
                return False  # being written by its owner just now
            try:  # stale: only one taker wins the rename
                os.rename(path, "%s.stale.%d" % (path, os.getpid()))
                os.unlink("%s.stale.%d" % (path, os.getpid()))
            except OSError:
                return False
            continue
        os.write(fd, b"%d\n" % os.getpid())
        os.close(fd)
        _claimed_files.append(path)
        return True
    return False


def _age(path):
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return 0


def _release_ports():
    for path in _claimed_files:
        try:
            with open(path) as f:
                if int(f.read().strip() or "0") != os.getpid():
                    continue
            os.unlink(path)
        except (OSError, ValueError):
            pass


_claimed_files = []
atexit.register(_release_ports)


def ephemeral_range():
    """The kernel's ephemeral port range (ip_local_port_range)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_given_ports = set()


def udp_port_bound(port, host=HOST):
    """True when someone has the UDP port bound on host (or any)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def tcp_port_listening(port):
    """True when a socket listens on TCP port (any IPv4 address), read from
    /proc/net/tcp so the listener sees no connection."""
    try:
        with open("/proc/net/tcp") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return False
    for row in rows:
        cols = row.split()
        if cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port:
            return True
    return False


def rtp_range(width=200):
    """A random even port range for the daemon's RTP, below the kernel's
    ephemeral range (where other processes' bind-0 and connect() ports
    come from) and below free_port's ports (above it), so an RTP socket
    never takes a port promised to a sipp. Overlaps between parallel
    daemons only cost them a retry on the next port."""
    eph_lo, _ = ephemeral_range()
    lo = random.randrange(10000, max(eph_lo - width, 10002), 2)
    return lo, lo + width - 1


# --------------------------------------------------------------------------
# the daemon


class Daemon:
    """A program a test runs in the foreground with its output in a log
    file: what Ctid and kamailio.Kamailio share. start_proc writes a
    "===== start #N" line into the log and starts the command; wait_ready
    polls until the program answers, failing with the log's last lines
    when it exits first or takes too long; stop sends SIGTERM and waits,
    killing it when that hangs. A subclass sets t, name, dir, log_path,
    proc (None) and starts (0), and has log_tail; process_group True
    starts it in a session of its own, so a kill reaches its children."""

    process_group = False

    def start_proc(self, cmd, banner):
        """Starts cmd (stdout and stderr to the log, cwd self.dir) after
        the banner line."""
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(("\n===== start #%d: %s\n" % (self.starts, banner)).encode())
        logf.flush()
        self.exit_code = None
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, cwd=self.dir,
                                     start_new_session=self.process_group)
        logf.close()

    def wait_ready(self, ready, deadline, what):
        """Calls ready() every 50 ms until it is true; RuntimeError when the
        program exits first, or "<name> <what>" when time.time() passes
        deadline."""
        while True:
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                raise RuntimeError("%s exited with %s during start-up:\n%s" % (
                    self.name, self.proc.returncode, self.log_tail(30)))
            if ready():
                return
            if time.time() >= deadline:
                raise RuntimeError("%s %s:\n%s" % (self.name, what,
                                                    self.log_tail(30)))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status (negative: signal), or
        "hung after SIGTERM" when it had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.t.log("%s did not exit %.0f s after SIGTERM; killing" % (
                    self.name, timeout))
                try:
                    if self.process_group:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    else:
                        self.proc.kill()
                except OSError:
                    pass
                self.proc.wait()
                self.exit_code = "hung after SIGTERM"
                return self.exit_code
        self.exit_code = self.proc.returncode
        return self.exit_code

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Ctid(Daemon):
    """The daemon under test with a generated config.

    gateways: list of dicts with name, port, and optional host, max_calls,
    username, password and any other gateway key (transport, domain, proxy,
    headers, ...; port None: not written). conf: extra/overriding
    top-level keys.
    """

    def __init__(self, t, name="ctid", gateways=(), conf=None, extra_args=(),
                 node_id="0.0.0", state_dir=None, prompt_dir=None):
        self.t = t
        self.name = name
        self.node_id = node_id
        self.listen_port = free_port("tcp")
        self.sip_port = free_port("udp")
        self.rtp_lo, self.rtp_hi = rtp_range()
        self.dir = t.path(name)
        os.makedirs(self.dir, exist_ok=True)
        self.prompt_dir = prompt_dir or t.path("prompts")
        os.makedirs(self.prompt_dir, exist_ok=True)
        self.state_dir = state_dir or os.path.join(self.dir, "state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.conf_path = os.path.join(self.dir, "ctid.conf")
        self.log_path = os.path.join(self.dir, "ctid.log")
        self.extra_args = list(extra_args)
        self.proc = None
        self.exit_code = None
        self.starts = 0
        # argv before ctid's own, e.g. dnsharness.ns_wrap(); each part
        # must exec the next so that proc.pid is ctid's
        self.wrap = []
        keys = {
            "listen": "%s:%d" % (HOST, self.listen_port),
            "sip": "%s:%d" % (HOST, self.sip_port),
            "rtp_ports": "%d-%d" % (self.rtp_lo, self.rtp_hi),
            "prompt_dir": self.prompt_dir,
            "state_dir": self.state_dir,
            "node_id": node_id,
            "default_from": "ctid",
            "max_calls": "1000",
            "dial_timeout": "60",
            "max_ring_seconds": "50",
            "log_level": "debug",
        }
        for k, v in (conf or {}).items():
            keys[k] = str(v)
        lines = ["# generated by ctidtest.py for %s" % t.name]
        lines += ["%s = %s" % (k, v) for k, v in keys.items()]
        for gw in gateways:
            lines.append("")
            lines.append("[gateway %s]" % gw["name"])
            lines.append("host = %s" % gw.get("host", HOST))
            if gw["port"] is not None:
                lines.append("port = %d" % gw["port"])
            for k, v in gw.items():
                if k not in ("name", "host", "port"):
                    lines.append("%s = %s" % (k, v))
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, ready_timeout=10.0):
        cmd = (self.wrap + [self.t.ctid_bin, "--config", self.conf_path] +
               self.extra_args)
        self.start_proc(cmd, "%s --config %s %s" % (
            self.t.ctid_bin, self.conf_path, " ".join(self.extra_args)))

        def accepting():
            try:
                socket.create_connection((HOST, self.listen_port),
                                         timeout=0.5).close()
                return True
            except OSError:
                return False
        self.wait_ready(accepting, time.time() + ready_timeout,
                        "not accepting on %d after %.0f s" % (
                            self.listen_port, ready_timeout))
        self.t.log("%s ready: rpc %d, sip %d, rtp %d-%d (pid %d)" % (
            self.name, self.listen_port, self.sip_port, self.rtp_lo,
            self.rtp_hi, self.proc.pid))
        return self

    def wait_exit(self, timeout=10.0):
        """Waits for the daemon to exit by itself (after a signal sent with
        proc.send_signal): its exit status, or "still running"."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return "still running"

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.stop()

    def wait_log(self, text, timeout=5.0, step=0.05):
        """Waits until text is in the log; whether it is."""
        deadline = time.time() + timeout
        while time.time() < deadline and text not in self.log_text():
            time.sleep(step)
        return text in self.log_text()

    def conf_text(self):
        with open(self.conf_path) as f:
            return f.read()

    def reload(self, text, wait_for="configuration reloaded", timeout=5.0):
        """Writes text as the configuration file, sends SIGHUP and waits
        until wait_for is in the log; whether it is."""
        with open(self.conf_path, "w") as f:
            f.write(text)
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_log(wait_for, timeout)

    def log_tail(self, n=60):
        """The last n lines, runs of one repeated line collapsed."""
        out = []
        for line in self.log_text().splitlines():
            if out and out[-1][0] == line:
                out[-1][1] += 1
            else:
                out.append([line, 1])
        return "\n".join(ln if k == 1 else "%s   [x%d]" % (ln, k)
                         for ln, k in out[-n:])

    def uri(self, port, user="13800000000"):
        """A to_uri for a gateway port on 127.0.0.1 in the form the result's
        to_uri should echo (user@host:port)."""
        return "%s@%s:%d" % (user, HOST, port)


# --------------------------------------------------------------------------
# sipp


class Sipp:
    """sipp as the callee (UAS) with a scenario of tests/sipp.

    Always passes -key rtp_sink_port/codec/codec_name (harmless for scenarios
    that do not use them). ring_ms is sipp's -d (scenarios use <pause/>
    between 180 and the final response). Never 0: a call paused for 0 ms
    was seen to sleep in sipp 3.6.1 until the test gave up (once in a
    loaded ASan run), so the default is 20 ms."""

    def __init__(self, t, scenario, port=None, rtp_sink_port=9, codec=8,
                 calls=1, timeout=60, ring_ms=20, extra=(), transport="u1",
                 host=HOST):
        self.t = t
        self.host = host  # -i: another 127.x.y.z for a port 127.0.0.1 has
        self.transport = transport  # sipp -t: u1 (UDP) or t1 (TCP)
        self.scenario = scenario
        self.port = port or free_port("udp")
        base = os.path.splitext(os.path.basename(scenario))[0]
        self.tag = "%s-%d" % (base, self.port)
        self.dir = t.path("sipp-" + self.tag)
        os.makedirs(self.dir, exist_ok=True)
        self.msg_log = os.path.join(self.dir, "messages.log")
        self.err_log = os.path.join(self.dir, "errors.log")
        self.out_log = os.path.join(self.dir, "stdout.log")
        codec_name = {8: "PCMA", 0: "PCMU"}[codec]
        self.cmd = ["sipp", "-sf", os.path.join(t.sipp_dir, scenario),
                    "-i", host, "-p", str(self.port), "-m", str(calls),
                    "-nostdin", "-timeout", "%ds" % timeout, "-timeout_error",
                    "-trace_msg", "-message_file", self.msg_log,
                    "-trace_err", "-error_file", self.err_log,
                    "-key", "rtp_sink_port", str(rtp_sink_port),
                    "-key", "codec", str(codec), "-key", "codec_name", codec_name,
                    "-d", str(ring_ms), "-t", transport] + list(extra)
        self.proc = None
        self.rc = None

    def start(self, ready_timeout=5.0):
        out = open(self.out_log, "wb")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        out.close()
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sipp %s exited early with %s:\n%s" % (
                    self.scenario, self.proc.returncode, self.report()))
            if (udp_port_bound(self.port, self.host) if self.transport == "u1"
                    else tcp_port_listening(self.port)):
                return self
            time.sleep(0.02)
        raise RuntimeError("sipp %s did not bind port %d" % (self.scenario,
                                                             self.port))

    def wait(self, timeout=30.0):
        """Exit status of sipp (0: every call completed the scenario), or
        None when it is still running after timeout."""
        if self.proc is None:
            return None
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.rc

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def messages(self):
        """sipp's -trace_msg log as a list of (direction, text) with
        direction "recv" or "sent"."""
        try:
            with open(self.msg_log, "rb") as f:
                data = f.read().decode("utf-8", "replace").replace("\r\n", "\n")
        except OSError:
            return []
        out = []
        for chunk in re.split(r"\n-{20,} [^\n]*\n", "\n" + data):
            chunk = chunk.strip("\n")
            m = re.match(r"[A-Z]+ message (received|sent)[^\n]*:\n\n?(.*)",
                         chunk, re.S)
            if m:
                out.append(("recv" if m.group(1) == "received" else "sent",
                            m.group(2).strip("\n")))
        return out

    def received(self, method):
        """Text of every request with this method sipp received."""
        return [m for d, m in self.messages()
                if d == "recv" and m.startswith(method + " ")]

    def responses(self, status, cseq):
        """Text of every response with this status sipp received for
        CSeq "N METHOD"."""
        n, method = cseq.split()
        return [m for d, m in self.messages() if d == "recv" and
                m.startswith("SIP/2.0 %d" % status) and
                re.search(r"^CSeq:\s*%s %s\s*$" % (n, method), m, re.M | re.I)]

    def report(self):
        """sipp's error log and the interesting lines of its screen output."""
        parts = []
        try:
            with open(self.err_log, "rb") as f:
                lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines()
                         if ln.strip()]
            parts.append("sipp errors.log:\n" + "\n".join(lines[-20:]))
        except OSError:
            pass
        try:
            with open(self.out_log, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            keep = [ln.rstrip() for ln in lines if re.search(
                r"Successful call|Failed call|rror|Unable|Timeout|Unexpected", ln)]
            parts.append("sipp stdout (excerpt):\n" + "\n".join(keep[-12:]))
        except OSError:
            pass
        return "\n".join(parts)

    def check_exit(self, t, what="sipp scenario completed (exit 0)",
                   timeout=30.0):
        rc = self.wait(timeout)
        return t.check(rc == 0, "%s [%s]" % (what, self.scenario),
                       "sipp exit %s (0 ok, 1 a call failed, 255 global "
                       "timeout or fatal, None still running); msg log %s\n%s" % (
                           rc, self.msg_log, self.report()))


def header(msg, name):
    """First value of a SIP header (long name) in a message text, or None."""
    m = re.search(r"^%s\s*:\s*(.*?)\s*$" % re.escape(name), msg, re.M | re.I)
    return m.group(1) if m else None


def digest_params(value):
    """'Digest a="b", c=d' -> {'a': 'b', 'c': 'd'}"""
    value = re.sub(r"^\s*Digest\s+", "", value, flags=re.I)
    out = {}
    for m in re.finditer(r'([A-Za-z-]+)\s*=\s*("([^"]*)"|[^,\s]+)', value):
        out[m.group(1).lower()] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


def digest_ok(params, method, username, password):
    """Checks an RFC 2617 MD5 digest response (with or without qop=auth)."""
    def h(s):
        return hashlib.md5(s.encode()).hexdigest()
    if params.get("username") != username:
        return False
    ha1 = h("%s:%s:%s" % (username, params.get("realm", ""), password))
    ha2 = h("%s:%s" % (method, params.get("uri", "")))
    if params.get("qop"):
        want = h(":".join([ha1, params.get("nonce", ""), params.get("nc", ""),
                           params.get("cnonce", ""), params["qop"], ha2]))
    else:
        want = h("%s:%s:%s" % (ha1, params.get("nonce", ""), ha2))
    return want == params.get("response", "").lower()


# --------------------------------------------------------------------------
# JSON-RPC client


class RpcError(Exception):
    def __init__(self, reply):
        Exception.__init__(self, json.dumps(reply))
        self.reply = reply
        self.code = reply.get("error", {}).get("code")


class Msg(dict):
    """A received JSON value (usually an object) plus .seq (arrival index on
    its connection), .at (time.time()) and .raw (the line)."""


class RpcClient:
    """One TCP connection to the daemon. A reader thread splits lines;
    replies (objects with an id and result/error) are indexed by id, events
    (objects with a method and no id) collected in order."""

    def __init__(self, port, host=HOST, name=None, verbose=False, log=None,
                 timeout=5.0):
        self.name = name or "client:%d" % port
        self.verbose = verbose
        self._log = log or (lambda m: None)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self.cond = threading.Condition()
        self.msgs = []          # every parsed line, in arrival order
        self.bad_lines = []     # lines that were not JSON
        self.closed = False     # the peer closed the connection
        self._next_id = 1
        self._buf = b""
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()

    def _reader(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            self._buf += data
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                raw = line.decode("utf-8", "replace")
                if self.verbose:
                    self._log("%s <- %s" % (self.name, raw))
                with self.cond:
                    try:
                        v = json.loads(raw)
                    except ValueError:
                        self.bad_lines.append(raw)
                        self.cond.notify_all()
                        continue
                    m = Msg(v) if isinstance(v, dict) else Msg(value=v)
                    m.seq = len(self.msgs)
                    m.at = time.time()
                    m.raw = raw
                    self.msgs.append(m)
                    self.cond.notify_all()

    # -- sending
    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.verbose:
            self._log("%s -> %s" % (self.name, _short(data, 300)))
        self.sock.sendall(data)

    def new_id(self):
        with self.cond:
            i = self._next_id
            self._next_id += 1
        return i

    def request(self, method, params=None, id=None, jsonrpc=True,
                notification=False):
        """Sends a request; returns its id (None for a notification)."""
        obj = {}
        if jsonrpc:
            obj["jsonrpc"] = "2.0"
        if not notification:
            if id is None:
                id = self.new_id()
            obj["id"] = id
        obj["method"] = method
        if params is not None:
            obj["params"] = params
        self.send_raw(json.dumps(obj) + "\n")
        return None if notification else id

    # -- receiving
    def _wait(self, pred, timeout):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for m in self.msgs:
                    if pred(m):
                        return m
                left = deadline - time.time()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(min(left, 0.2))

    def wait_reply(self, id, timeout=5.0):
        """The reply with this id, or None."""
        return self._wait(lambda m: "id" in m and m["id"] == id and
                          type(m["id"]) == type(id) and
                          ("result" in m or "error" in m), timeout)

    def call(self, method, params=None, timeout=5.0, **kw):
        """Request and its reply (the whole reply object), or None."""
        i = self.request(method, params, **kw)
        return self.wait_reply(i, timeout)

    def result(self, method, params=None, timeout=5.0):
        """The result of a successful call; raises RpcError / TimeoutError."""
        r = self.call(method, params, timeout)
        if r is None:
            raise TimeoutError("no reply to %s within %.0f s" % (method, timeout))
        if "error" in r:
            raise RpcError(r)
        return r["result"]

    def events(self, method=None, res_id=None):
        with self.cond:
            return [m for m in self.msgs if "id" not in m and "method" in m and
                    (method is None or m["method"] == method) and
                    (res_id is None or (isinstance(m.get("params"), dict) and
                                        m["params"].get("res_id") == res_id))]

    def wait_event(self, res_id=None, method="ext.notify_call.on_released",
                   timeout=30.0):
        return self._wait(lambda m: "id" not in m and m.get("method") == method
                          and (res_id is None or (
                              isinstance(m.get("params"), dict) and
                              m["params"].get("res_id") == res_id)), timeout)

    def all_msgs(self):
        with self.cond:
            return list(self.msgs)

    def wait_count(self, n, timeout=5.0):
        """Waits until at least n messages arrived; returns them all."""
        deadline = time.time() + timeout
        with self.cond:
            while len(self.msgs) < n and not self.closed:
                left = deadline - time.time()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.2))
            return list(self.msgs)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# --------------------------------------------------------------------------
# RTP sink


class RtpPacket:
    __slots__ = ("src", "version", "padding", "ext", "cc", "marker", "pt",
                 "seq", "ts", "ssrc", "payload", "at", "size")

    def __repr__(self):
        return "<rtp %s pt=%d m=%d seq=%d ts=%d ssrc=%08x len=%d>" % (
            self.src, self.pt, self.marker, self.seq, self.ts, self.ssrc,
            len(self.payload))


def parse_rtp(data, src, at):
    if len(data) < 12:
        return None
    b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    p = RtpPacket()
    p.src, p.at, p.size = src, at, len(data)
    p.version = b0 >> 6
    p.padding = (b0 >> 5) & 1
    p.ext = (b0 >> 4) & 1
    p.cc = b0 & 0x0F
    p.marker = b1 >> 7
    p.pt = b1 & 0x7F
    p.seq, p.ts, p.ssrc = seq, ts, ssrc
    off = 12 + 4 * p.cc
    if p.ext and len(data) >= off + 4:
        _, words = struct.unpack("!HH", data[off:off + 4])
        off += 4 + 4 * words
    end = len(data)
    if p.padding and end > off:
        end -= data[-1]
    p.payload = data[off:end]
    return p


_SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)   # Linux value
_TIMEVAL = struct.Struct("@ll")


def _bind_port_pair():
    """Two UDP sockets on 127.0.0.1: an even port and the odd one after it
    (RTP and RTCP), so the daemon's RTCP to port + 1 lands here and not on
    some other test's socket."""
    for _ in range(200):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((HOST, 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0 and port < 65535:
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind((HOST, port + 1))
                return rtp, rtcp
            except OSError:
                rtcp.close()
        rtp.close()
    raise RuntimeError("no free RTP/RTCP port pair")


def _recv_stamped(sock):
    """(data, src, arrival time) of one datagram: the kernel's arrival time
    (Linux SO_TIMESTAMP) when the socket has it, time.time() otherwise."""
    data, anc, _flags, src = sock.recvmsg(65536, 256)
    at = time.time()
    for level, typ, cdata in anc:
        if (level == socket.SOL_SOCKET and typ == _SO_TIMESTAMP and
                len(cdata) >= _TIMEVAL.size):
            sec, usec = _TIMEVAL.unpack(cdata[:_TIMEVAL.size])
            at = sec + usec / 1e6
    return data, src, at


class RtpSink:
    """A UDP socket on an even port of 127.0.0.1 and a thread recording
    every datagram that parses as RTP (others are counted in .junk); the
    next port is bound too and records RTCP datagrams as (data, src, at)
    in .rtcp."""

    def __init__(self, name="rtp"):
        self.name = name
        self.sock, self.rtcp_sock = _bind_port_pair()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.port = self.sock.getsockname()[1]
        self.rtcp_port = self.port + 1
        # kernel arrival times (Linux SO_TIMESTAMP), so a busy test process
        # does not make the pacing check flaky; time.time() otherwise
        self.kernel_ts = False
        for sk in (self.sock, self.rtcp_sock):
            sk.settimeout(0.1)
            try:
                sk.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
                self.kernel_ts = True
            except OSError:
                pass
        self.packets = []
        self.rtcp = []
        self.junk = 0
        self.cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._rtcp_thread = threading.Thread(target=self._run_rtcp, daemon=True)
        self._rtcp_thread.start()

    def _run(self):
        while not self._stop:
            try:
                data, src, at = _recv_stamped(self.sock)
            except socket.timeout:
                continue
            except OSError:
                return
            p = parse_rtp(data, src, at)
            with self.cond:
                if p is None or p.version != 2:
                    self.junk += 1
                else:
                    self.packets.append(p)
                self.cond.notify_all()

    def _run_rtcp(self):
        while not self._stop:
            try:
                item = _recv_stamped(self.rtcp_sock)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self.rtcp.append(item)
                self.cond.notify_all()

    def rtcp_snapshot(self):
        with self.cond:
            return list(self.rtcp)

    def count(self):
        with self.cond:
            return len(self.packets)

    def wait_packets(self, n, timeout=10.0):
        deadline = time.time() + timeout
        with self.cond:
            while len(self.packets) < n:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
            return True

    def wait_quiet(self, quiet=0.6, timeout=30.0):
        """Waits until no packet arrived for `quiet` seconds (counted from
        the call at the earliest)."""
        start = time.time()
        deadline = start + timeout
        while time.time() < deadline:
            with self.cond:
                last = max(start, self.packets[-1].at if self.packets else 0)
            if time.time() - last >= quiet:
                return True
            time.sleep(0.05)
        return False

    def streams(self):
        """{(src, ssrc): [packets in arrival order]}"""
        out = {}
        with self.cond:
            for p in self.packets:
                out.setdefault((p.src, p.ssrc), []).append(p)
        return out

    def by_source(self):
        out = {}
        with self.cond:
            for p in self.packets:
                out.setdefault(p.src, []).append(p)
        return out

    def snapshot(self):
        with self.cond:
            return list(self.packets)

    def close(self):
        self._stop = True
        self._thread.join(1)
        self._rtcp_thread.join(1)
        self.sock.close()
        self.rtcp_sock.close()


def check_rtp_stream(t, pkts, expected, pt, label="RTP", full=True,
                     rtp_range=None, pacing=True):
    """The checks of one received stream against the expected payload bytes.
    full=False: expected is the whole play list; the stream may stop early
    (callee hung up / drop) but must be a prefix of it. expected=None: only
    the header and pacing checks."""
    if not t.check(len(pkts) > 0, "%s: packets received" % label, "none"):
        return False
    ok = True
    ssrcs = sorted(set(p.ssrc for p in pkts))
    ok &= t.check(len(ssrcs) == 1, "%s: one SSRC" % label, "SSRCs %s" % ssrcs)
    srcs = sorted(set(p.src for p in pkts))
    ok &= t.check(len(srcs) == 1, "%s: one source address" % label, str(srcs))
    if rtp_range:
        port = pkts[0].src[1]
        ok &= t.check(rtp_range[0] <= port <= rtp_range[1] and port % 2 == 0,
                      "%s: source port %d is an even port of rtp_ports %d-%d" % (
                          label, port, rtp_range[0], rtp_range[1]))
    bad_pt = [p for p in pkts if p.pt != pt]
    ok &= t.check(not bad_pt, "%s: every packet has payload type %d" % (label, pt),
                  "%d packets differ, first %r" % (len(bad_pt), bad_pt[:1]))
    markers = [i for i, p in enumerate(pkts) if p.marker]
    ok &= t.check(markers == [0], "%s: marker bit on the first packet only" % label,
                  "marker on packets %s" % markers[:10])
    seq_bad = [i for i in range(1, len(pkts))
               if pkts[i].seq != (pkts[i - 1].seq + 1) & 0xFFFF]
    ok &= t.check(not seq_bad, "%s: consecutive sequence numbers (%d packets)" % (
        label, len(pkts)), "breaks at packet %s (seq %s)" % (
            seq_bad[:5], [(pkts[i - 1].seq, pkts[i].seq) for i in seq_bad[:5]]))
    ts_bad = [i for i in range(1, len(pkts))
              if pkts[i].ts != (pkts[i - 1].ts + FRAME) & 0xFFFFFFFF]
    ok &= t.check(not ts_bad, "%s: timestamp +160 per packet" % label,
                  "breaks at packet %s (ts %s)" % (
                      ts_bad[:5], [(pkts[i - 1].ts, pkts[i].ts) for i in ts_bad[:5]]))
    sizes = sorted(set(len(p.payload) for p in pkts))
    ok &= t.check(sizes == [FRAME], "%s: every payload is 160 bytes (20 ms)" % label,
                  "sizes %s" % sizes)
    got = b"".join(p.payload for p in pkts)
    if expected is None:
        pass   # the caller compares the payload itself
    elif full:
        ok &= t.check(got == expected, "%s: payload equals the expected %d bytes "
                      "byte for byte" % (label, len(expected)), diff_bytes(got, expected))
    else:
        ok &= t.check(0 < len(got) < len(expected) and got == expected[:len(got)],
                      "%s: payload (%d bytes) is a proper prefix of the %d-byte "
                      "play list" % (label, len(got), len(expected)),
                      diff_bytes(got, expected[:len(got)]) if got != expected[:len(got)]
                      else "whole play list received")
    if pacing and len(pkts) >= 25:
        span = pkts[-1].at - pkts[0].at
        want = (len(pkts) - 1) * 0.020
        ok &= t.check(want * 0.8 <= span <= want * 1.2 + 0.3,
                      "%s: sent in real time (%d packets over %.2f s, expect %.2f s)"
                      % (label, len(pkts), span, want))
    return ok


def check_one_stream(t, sink, expected, pt, label, **kw):
    """Checks that sink received one RTP stream and that it carries the
    expected payload bytes (check_rtp_stream, which takes kw). Its packets,
    or None when there was not exactly one stream. Call sink.wait_quiet()
    first."""
    streams = sink.streams()
    if not t.check(len(streams) == 1, "RTP: one stream",
                   "%d streams" % len(streams)):
        return None
    pkts = list(streams.values())[0]
    check_rtp_stream(t, pkts, expected, pt, label, **kw)
    return pkts


def diff_bytes(got, want):
    if got == want:
        return "equal"
    n = min(len(got), len(want))
    first = next((i for i in range(n) if got[i] != want[i]), n)
    ndiff = sum(1 for i in range(n) if got[i] != want[i])
    return ("got %d bytes, expected %d; first difference at byte %d (frame %d): "
            "got %s expected %s; %d of the common %d bytes differ" % (
                len(got), len(want), first, first // FRAME,
                got[first:first + 8].hex(), want[first:first + 8].hex(), ndiff, n))


# --------------------------------------------------------------------------
# prompts and G.711


def sox(*args):
    r = subprocess.run(["sox"] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("sox %s: %s" % (" ".join(map(str, args)),
                                           r.stderr.decode(errors="replace")))
    return r.stdout


def make_prompt(path, dur=1.03, rate=8000, channels=1, synth=("sine", "300-3000"),
                vol=0.5, quantize=True):
    """Writes a 16-bit WAV prompt with sox. For 8 kHz mono, quantize=True
    clears the 3 low bits of every sample: sox's G.711 encoder rounds to 13/14
    bits while the reference (G.191/Sun) encoders truncate; on multiples of 8
    both give the same bytes, so the expected payload does not depend on
    which one the daemon uses."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sox("-n", "-r", rate, "-c", channels, "-b", 16, path, "synth", dur,
        *synth, "vol", vol)
    if quantize and rate == 8000 and channels == 1:
        samples = read_wav(path)
        write_wav(path, [s & ~7 for s in samples])
    return path


def read_wav(path):
    """Samples of a 16-bit mono WAV as a list of ints."""
    w = wave.open(path, "rb")
    try:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        data = w.readframes(w.getnframes())
    finally:
        w.close()
    return list(struct.unpack("<%dh" % (len(data) // 2), data))


def write_wav(path, samples, rate=8000):
    w = wave.open(path, "wb")
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(struct.pack("<%dh" % len(samples), *samples))
    w.close()


def zh_pack_copy(t):
    """The build's zh prompt pack (made with conf/prompts/make-prompt-pack.sh
    when the build has none) copied to the test's prompt dir as prompts/zh,
    each sample's three low bits cleared so that sox's rounding G.711
    encoder and ctid's truncating one give the same bytes. Returns the
    copy's path."""
    pack = os.path.join(os.path.dirname(t.ctid_bin), "prompts", "zh")
    if not os.path.isdir(pack):
        t.log("no pack at %s: making one" % pack)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "..", "..", "conf", "prompts",
                              "make-prompt-pack.sh")
        subprocess.run([script, t.path("pack"), "zh"], check=True)
        pack = t.path("pack", "zh")
    zh = t.path("prompts", "zh")
    os.makedirs(zh)
    for f in sorted(os.listdir(pack)):
        if f.endswith(".wav"):
            write_wav(os.path.join(zh, f),
                      [s & ~7 for s in read_wav(os.path.join(pack, f))])
    return zh


def g711_of(prompt, codec=8):
    """G.711 of an 8 kHz mono prompt with sox (no dither!), padded with
    silence to a whole number of 20 ms frames."""
    data = sox("-D", prompt, "-t", "al" if codec == 8 else "ul", "-")
    sil = ALAW_SILENCE if codec == 8 else ULAW_SILENCE
    if len(data) % FRAME:
        data += bytes([sil]) * (FRAME - len(data) % FRAME)
    return data


def expected_payload(prompt, codec=8, repeat=1):
    """What the callee must receive: the prompt's G.711, padded, played
    repeat + 1 times."""
    return g711_of(prompt, codec) * (repeat + 1)


_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def alaw_encode(s):
    """ITU-T G.711 A-law of one 16-bit sample (reference truncation)."""
    s >>= 3
    if s >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        s = -s - 1
    seg = 0
    while seg < 8 and s > _SEG_END[seg]:
        seg += 1
    if seg >= 8:
        return 0x7F ^ mask
    a = seg << 4
    a |= ((s >> 1) if seg < 2 else (s >> seg)) & 0x0F
    return a ^ mask


def ulaw_encode(s):
    """ITU-T G.711 mu-law of one 16-bit sample (reference truncation)."""
    s >>= 2
    if s < 0:
        s = -s
        mask = 0x7F
    else:
        mask = 0xFF
    if s > 8159:
        s = 8159
    s += 0x84 >> 2
    seg = 0
    for end in (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF):
        if s <= end:
            break
        seg += 1
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((s >> (seg + 1)) & 0x0F)) ^ mask


def alaw_decode(a):
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t += 0x108
        t <<= seg - 1
    return t if a & 0x80 else -t


def ulaw_decode(u):
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if u & 0x80 else (t - 0x84)


ALAW_TABLE = [alaw_decode(i) for i in range(256)]
ULAW_TABLE = [ulaw_decode(i) for i in range(256)]


def best_correlation(x, y, max_lag=64):
    """max over lags |lag| <= max_lag of the normalized correlation of x and
    y (pure Python); returns (corr, lag)."""
    n = min(len(x), len(y))
    if n == 0:
        return 0.0, 0
    mx = sum(x[:n]) / n
    my = sum(y[:n]) / n
    xs = [v - mx for v in x[:n]]
    ys = [v - my for v in y[:n]]
    best = (-2.0, 0)
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            a, b = xs[lag:], ys[:n - lag]
        else:
            a, b = xs[:n + lag], ys[-lag:]
        num = sum(p * q for p, q in zip(a, b))
        ea = sum(p * p for p in a)
        eb = sum(q * q for q in b)
        if ea > 0 and eb > 0:
            c = num / (ea * eb) ** 0.5
            if c > best[0]:
                best = (c, lag)
    return best


def request_half_closed(port, req, timeout=30):
    """Sends one request the way `printf REQUEST | nc` does: the line, a
    half-close, then reading until EOF. The JSON lines received."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        sock.sendall((json.dumps(req) + "\n").encode())
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    return [json.loads(x) for x in data.decode().splitlines() if x.strip()]


# --------------------------------------------------------------------------
# the metrics endpoint (metrics_listen)

def http_get(port, path, method="GET", timeout=5.0):
    """One HTTP request to HOST:port: (status, {lower-case header: value},
    body text)."""
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), \
            r.read().decode("utf-8", "replace")
    finally:
        c.close()


def scrape(port):
    """The unlabelled samples of ctid's /metrics as {name: int}.
    (test_metrics.py checks the whole text against the format.)"""
    _, _, body = http_get(port, "/metrics")
    out = {}
    for line in body.splitlines():
        m = re.match(r"^([a-z_]+) (\S+)$", line)
        if m:
            out[m.group(1)] = int(float(m.group(2)))
    return out


def wait_metric(port, name, want, timeout=10.0):
    """Scrapes until the sample name equals want; its last value."""
    deadline = time.time() + timeout
    v = None
    while time.time() < deadline:
        v = scrape(port).get(name)
        if v == want:
            return v
        time.sleep(0.05)
    return v


# --------------------------------------------------------------------------
# contract checks shared by the tests


def check_result(t, reply, want, what):
    """Checks that a reply came and that its result is want: True, False
    and None by identity (1 is not true), anything else by value."""
    got = reply.get("result") if reply is not None else None
    if isinstance(want, bool) or want is None:
        ok = reply is not None and got is want
    else:
        ok = reply is not None and got == want
    return t.check(ok, what, _short(reply))


def construct(t, c, d, to_uri, play_content, label="construct", **params):
    """Sends ext.notify_call.construct {to_uri, play_content, params...}
    (in that order) on connection c of daemon d and checks the reply with
    check_construct_result. The res_id, or None."""
    reply = c.call("ext.notify_call.construct",
                   dict({"to_uri": to_uri, "play_content": play_content}, **params))
    res_id, _ = check_construct_result(t, reply, d.node_id, to_uri,
                                       params.get("user_data"), label=label)
    return res_id


def check_construct_result(t, reply, node_id, to_uri, user_data, label="construct"):
    """Checks a construct reply; returns (res_id, process_id) or (None, None)."""
    if not t.check(reply is not None, "%s: reply received" % label, "no reply"):
        return None, None
    if not t.check("result" in reply and "error" not in reply,
                   "%s: success reply" % label, _short(reply)):
        return None, None
    t.check_eq(reply.get("jsonrpc"), "2.0", "%s: reply jsonrpc" % label)
    r = reply["result"]
    if not t.check(isinstance(r, dict), "%s: result is an object" % label, _short(r)):
        return None, None
    res_id = r.get("res_id")
    m = re.match(RES_ID_RE % re.escape(node_id), res_id) if isinstance(res_id, str) else None
    t.check(m is not None, "%s: res_id %r matches %s" % (
        label, res_id, RES_ID_RE % re.escape(node_id)))
    t.check_eq(r.get("user_data"), user_data, "%s: result.user_data" % label)
    t.check_eq(r.get("to_uri"), to_uri, "%s: result.to_uri" % label)
    info = r.get("ipsc_info")
    pid = info.get("process_id") if isinstance(info, dict) else None
    t.check(isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2 ** 53,
            "%s: ipsc_info.process_id is an integer in (0, 2^53)" % label,
            "got %r" % (info,))
    if m:
        t.check(str(pid) == m.group(1), "%s: process_id equals the res_id suffix" % label,
                "process_id %r, res_id %r" % (pid, res_id))
    return res_id, pid


def check_released(t, ev, res_id, user_data, error, dropped_by, cause=None,
                   answered=None, t_before=None, t_after=None, label="event"):
    """Checks an on_released event. cause: int, a collection of ints, or
    None (any integer). answered: True/False/None (don't care)."""
    if not t.check(ev is not None, "%s: on_released received" % label, "no event"):
        return False
    ok = True
    ok &= t.check_eq(ev.get("jsonrpc"), "2.0", "%s: jsonrpc" % label)
    ok &= t.check("id" not in ev, "%s: has no id" % label, _short(ev))
    p = ev.get("params")
    if not t.check(isinstance(p, dict), "%s: params object" % label, _short(ev)):
        return False
    ok &= t.check_eq(p.get("res_id"), res_id, "%s: res_id" % label)
    ok &= t.check_eq(p.get("user_data"), user_data, "%s: user_data" % label)
    ok &= t.check_eq(p.get("error"), error, "%s: error" % label)
    ok &= t.check_eq(p.get("dropped_by"), dropped_by, "%s: dropped_by" % label)
    c = p.get("cause")
    if isinstance(cause, int):
        ok &= t.check_eq(c, cause, "%s: cause" % label)
    elif cause is not None:
        ok &= t.check_in(c, tuple(cause), "%s: cause" % label)
    else:
        ok &= t.check(isinstance(c, int) and not isinstance(c, bool),
                      "%s: cause is an integer (%r)" % (label, c))
    bt, at, et = p.get("begin_time"), p.get("answer_time"), p.get("end_time")

    def isint(v):
        return isinstance(v, int) and not isinstance(v, bool)
    # issue 14: played_ms and plays always, after the contract's fields
    # (and attempts, keys, key_time when present), before seq
    ok &= t.check(isint(p.get("played_ms")) and isint(p.get("plays")) and
                  p["played_ms"] >= 0 and p["plays"] >= 0,
                  "%s: played_ms and plays are integers >= 0" % label,
                  _short(ev))
    names = [k for k in p if k != "seq"]
    ok &= t.check(names[-2:] == ["played_ms", "plays"],
                  "%s: played_ms, plays last before seq" % label, repr(names))
    if answered is False:
        ok &= t.check(p.get("played_ms") == 0 and p.get("plays") == 0,
                      "%s: unanswered: played_ms 0, plays 0" % label,
                      _short(ev))
    ok &= t.check(isint(bt) and isint(et) and bt <= et,
                  "%s: begin_time <= end_time, integers" % label, "%r %r" % (bt, et))
    if answered is True:
        ok &= t.check(isint(at) and isint(bt) and isint(et) and bt <= at <= et,
                      "%s: begin_time <= answer_time <= end_time" % label,
                      "begin %r answer %r end %r" % (bt, at, et))
    elif answered is False:
        ok &= t.check(at is None and "answer_time" in p,
                      "%s: answer_time is null" % label, "got %r" % (at,))
    if t_before is not None and isint(bt) and isint(et):
        ok &= t.check(int(t_before) - 2 <= bt and et <= int(t_after or time.time()) + 2,
                      "%s: times are Unix seconds of now" % label,
                      "begin %r end %r, test clock %d..%d" % (
                          bt, et, t_before, t_after or time.time()))
    return ok


def gateway(name, port, **kw):
    d = {"name": name, "port": port}
    d.update(kw)
    return d
