#!/usr/bin/env python3
"""ctid integration test: ctictl, the command-line client, against a live
ctid and sipp callees (docs/man/ctictl.1).

ping (human, --json, CTID_CONNECT, options after the command); call --wait
to an answering callee (exit 0, the res_id and released lines; --json: the
two raw lines are the contract's result and event; two --play files make a
type-0 play list, checked on the RTP); call --wait to a busy callee (exit 1,
"call rejected"); exists on a ringing call (0) and after its release (1);
drop of a ringing call (its --wait'ing creator prints "canceled"); call
--keys 1 --progress --wait with no key (", no key") and with the callee
pressing 1 by SIP INFO (a "progress ...: key 1" line, keys "1"); daemon
errors (drop of an unknown id, a missing prompt, a bad param: exit 4, code
on stderr); events following a call placed by another ctictl; events
--since (ignored or refused by this daemon, both allowed); timeouts (reply,
--wait-timeout) and lost connections (exit 3); usage errors (exit 2);
cannot connect (exit 3).

ctictl is found next to the ctid given with --ctid.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, check_released,  # noqa: E402
                      check_one_stream, expected_payload, make_prompt, gateway,
                      free_port, HOST)

PROMPT_SECONDS = 0.51
RES_ID = r"0\.0\.0-ext\.notify_call-\d+"
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:")

t = Test("ctictl")


class Follower:
    """A long-running ctictl (events, call --wait) whose stdout lines are
    collected by a thread as they come."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env)
        self.lines = []
        self.cond = threading.Condition()
        self.err = ""
        self._out = threading.Thread(target=self._read, daemon=True)
        self._out.start()
        self._errt = threading.Thread(target=self._read_err, daemon=True)
        self._errt.start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def _read_err(self):
        self.err = self.proc.stderr.read().decode("utf-8", "replace")

    def wait_line(self, pred, timeout):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for ln in self.lines:
                    if pred(ln):
                        return ln
                left = deadline - time.time()
                if left <= 0 or (self.proc.poll() is not None
                                 and not self._out.is_alive()):
                    return None
                self.cond.wait(min(left, 0.2))

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._out.join(5)
        self._errt.join(5)
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(5)
        check_no_sanitizer(self.err, "follower")


def check_no_sanitizer(stderr, what):
    hits = [ln for ln in stderr.splitlines() if SANITIZER.search(ln)]
    if hits:
        t.fail("%s: no sanitizer report" % what, "\n".join(hits[:10]))


with t:
    ctictl = os.path.join(os.path.dirname(t.ctid_bin), "ctictl")
    t.check(os.access(ctictl, os.X_OK), "ctictl is next to ctid", ctictl)
    prompt = make_prompt(t.path("prompts", "notice.wav"), PROMPT_SECONDS)

    names = ["ok", "json", "list", "busy", "ring", "waitto", "events", "lost",
             "keys", "key1"]
    port = {n: free_port("udp") for n in names}
    d = t.ctid(gateways=[gateway("gw_" + n, p) for n, p in port.items()],
               conf={"shutdown_grace": 0})
    d.start()
    node = d.node_id
    connect = "%s:%d" % (HOST, d.listen_port)
    env = dict(os.environ)
    env.pop("CTID_CONNECT", None)

    def run(args, timeout=60, connect_to=connect, extra_env=None):
        """ctictl --connect ... ARGS; returns (exit status, stdout, stderr)."""
        argv = [ctictl] + (["--connect", connect_to] if connect_to else []) + args
        e = dict(env)
        e.update(extra_env or {})
        if t.verbose:
            t.log("$ " + " ".join(argv))
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=e, timeout=timeout)
        out = r.stdout.decode("utf-8", "replace")
        err = r.stderr.decode("utf-8", "replace")
        if t.verbose:
            t.log("exit %d\n%s%s" % (r.returncode, out, err))
        check_no_sanitizer(err, " ".join(args[:2]))
        return r.returncode, out, err

    def follow(args, connect_to=connect):
        return t.add_cleanup(Follower([ctictl, "--connect", connect_to] + args, env))

    def released_line(res_id, what):
        return r"^released %s: %s$" % (re.escape(res_id), what)

    # ---------------------------------------------------------------- ping
    def ping():
        rc, out, err = run(["ping"])
        t.check(rc == 0 and out == "pong\n", "ping: exit 0, prints pong",
                "exit %d out %r err %r" % (rc, out, err))
        rc, out, _ = run(["--json", "ping"])
        line = json.loads(out) if rc == 0 and out.count("\n") == 1 else {}
        t.check(rc == 0 and line.get("result") == "pong" and
                line.get("jsonrpc") == "2.0", "ping --json: the raw reply line", out)
        rc, out, _ = run(["ping"], connect_to=None,
                         extra_env={"CTID_CONNECT": connect})
        t.check(rc == 0 and out == "pong\n", "CTID_CONNECT sets the address",
                "exit %d out %r" % (rc, out))
        rc, out, _ = run(["ping", "--json", "--connect", connect], connect_to=None)
        t.check(rc == 0 and '"pong"' in out,
                "global options are accepted after the command", out)
        rc, out, _ = run(["--version"], connect_to=None)
        t.check(rc == 0 and re.match(r"^ctictl \d+\.\d+\.\d+\n$", out),
                "--version: exit 0, prints the version", out)
        rc, out, _ = run(["--help"], connect_to=None)
        t.check(rc == 0 and "exit status" in out and "usage:" in out,
                "--help: exit 0, the usage with the exit statuses", out[:200])
    t.run("ping, version, help", ping)

    # ---------------------------------------------------------- call --wait
    def call_ok():
        sp = t.sipp("uas_answer_wait_bye.xml", port=port["ok"]).start()
        to_uri = d.uri(port["ok"])
        rc, out, err = run(["call", "--to", to_uri, "--play", "notice.wav",
                            "--repeat", "0", "--user-data", "order 42",
                            "--from", "10086", "--wait"])
        lines = out.splitlines()
        t.check(rc == 0, "exit 0 (played to the end)", "exit %d err %r" % (rc, err))
        t.check(len(lines) == 2, "two lines: the result and the event", repr(out))
        if len(lines) == 2:
            m = re.match(r"^res_id (%s) to %s$" % (RES_ID, re.escape(to_uri)), lines[0])
            if t.check(m is not None, "first line: res_id ... to URI", lines[0]):
                t.check(re.match(released_line(
                    m.group(1), r"ok \(dropped by sys, cause 200, "
                    r"answered \d\d:\d\d:\d\d, \d+ s\)"), lines[1]),
                    "second line: released ...: ok (dropped by sys, cause 200, "
                    "answered HH:MM:SS, N s)", lines[1])
        sp.check_exit(t, "sipp got the BYE")
    t.run("call --wait, answered (human)", call_ok)

    def call_keys_progress():
        # issue 14: --keys 1 --progress; no key comes: the progress lines,
        # then the released line with the keys (none) after wait_seconds
        sp = t.sipp("uas_answer_wait_bye.xml", port=port["keys"]).start()
        to_uri = d.uri(port["keys"])
        rc, out, err = run(["call", "--to", to_uri, "--play", "notice.wav",
                            "--repeat", "0", "--keys", "1", "--progress",
                            "--wait"])
        lines = out.splitlines()
        t.check(rc == 0, "exit 0", "exit %d err %r" % (rc, err))
        if not t.check(len(lines) == 4, "four lines: result, ringing, "
                       "answered, released", repr(out)):
            return
        m = re.match(r"^res_id (%s) to " % RES_ID, lines[0])
        res_id = m.group(1) if m else "?"
        t.check_eq(lines[1:3], ["progress %s: ringing" % res_id,
                                "progress %s: answered" % res_id],
                   "progress lines")
        t.check(re.match(released_line(
            res_id, r"ok \(dropped by sys, cause 200, answered "
            r"\d\d:\d\d:\d\d, \d+ s, no key\)"), lines[3]),
            "released line says no key", lines[3])
        sp.check_exit(t, "sipp got the BYE")
        rc, out, err = run(["call", "--to", to_uri, "--play", "notice.wav",
                            "--keys", "33"])
        t.check(rc == 2 and "--keys" in err, "--keys 33: usage error",
                "exit %d err %r" % (rc, err))
    t.run("call --keys 1 --progress --wait", call_keys_progress)

    def call_key_pressed():
        # issue 14: the callee presses 1 (SIP INFO dtmf-relay) while the
        # prompt plays: a progress line for the key, the keys in the
        # released line, and ctictl's --json lines carry them too
        sp = t.sipp("uas_answer_key1_info.xml", port=port["key1"]).start()
        to_uri = d.uri(port["key1"])
        rc, out, err = run(["call", "--to", to_uri, "--play", "notice.wav",
                            "--repeat", "3", "--keys", "1", "--progress",
                            "--wait"])
        lines = out.splitlines()
        t.check(rc == 0, "exit 0", "exit %d err %r" % (rc, err))
        if not t.check(len(lines) == 5, "five lines: result, ringing, "
                       "answered, key 1, released", repr(out)):
            return
        m = re.match(r"^res_id (%s) to " % RES_ID, lines[0])
        res_id = m.group(1) if m else "?"
        t.check_eq(lines[1:4], ["progress %s: ringing" % res_id,
                                "progress %s: answered" % res_id,
                                "progress %s: key 1" % res_id],
                   "progress lines, the key last")
        t.check(re.match(released_line(
            res_id, r"ok \(dropped by sys, cause 200, answered "
            r"\d\d:\d\d:\d\d, \d+ s, keys \"1\"\)"), lines[4]),
            "released line has keys \"1\"", lines[4])
        sp.check_exit(t, "sipp: INFO answered 200, got the BYE")
        infos = [m_ for d_, m_ in sp.messages() if d_ == "recv" and
                 m_.startswith("SIP/2.0 200") and
                 re.search(r"^CSeq:\s*1 INFO", m_, re.M | re.I)]
        t.check(len(infos) == 1, "ctid answered the INFO 200", repr(infos))
    t.run("call --keys 1 --progress --wait, the callee presses 1",
          call_key_pressed)

    def call_json():
        sp = t.sipp("uas_answer_wait_bye.xml", port=port["json"]).start()
        to_uri = d.uri(port["json"])
        t0 = time.time()
        rc, out, err = run(["--json", "call", "--to", to_uri, "--play", "notice.wav",
                            "--repeat", "1", "--max-ring", "20", "--user-data",
                            "u\u00fc \"q\"", "--wait"])
        t1 = time.time()
        t.check(rc == 0, "exit 0", "exit %d err %r" % (rc, err))
        lines = out.splitlines()
        if not t.check(len(lines) == 2, "two raw lines", repr(out)):
            return
        reply, ev = json.loads(lines[0]), json.loads(lines[1])
        res_id, _ = check_construct_result(t, reply, node, to_uri, "u\u00fc \"q\"")
        check_released(t, ev, res_id, "u\u00fc \"q\"", None, "sys", cause=200,
                       answered=True, t_before=t0, t_after=t1)
        t.check(t1 - t0 >= 2 * PROMPT_SECONDS, "waited for two plays (%.2f s)" % (
            t1 - t0))
        sp.check_exit(t, "sipp got the BYE")
    t.run("call --wait --json: the contract's result and event", call_json)

    def call_list():
        # two --play: a play list of two type 0 items, played once each
        sink = t.rtp_sink("list")
        sp = t.sipp("uas_answer_wait_bye.xml", port=port["list"],
                    rtp_sink_port=sink.port, codec=8).start()
        rc, out, err = run(["call", "--to", d.uri(port["list"]), "--play",
                            "notice.wav", "--play", "notice.wav", "--repeat", "0",
                            "--wait"])
        t.check(rc == 0, "exit 0", "exit %d out %r err %r" % (rc, out, err))
        sp.check_exit(t, "sipp got the BYE")
        sink.wait_quiet(0.5, 5)
        check_one_stream(t, sink, expected_payload(prompt, 8, 0) * 2, 8,
                         "RTP: the two files once each", pacing=False)
    t.run("call with two --play files", call_list)

    def call_busy():
        sp = t.sipp("uas_busy.xml", port=port["busy"]).start()
        rc, out, err = run(["call", "--to", d.uri(port["busy"]), "--play",
                            "notice.wav", "--wait"])
        t.check(rc == 1, "exit 1 (the call ended with an error)",
                "exit %d err %r" % (rc, err))
        lines = out.splitlines()
        t.check(len(lines) == 2 and re.match(
            r"^released %s: call rejected \(dropped by usr, cause 486\)$" % RES_ID,
            lines[-1]), "released ...: call rejected (dropped by usr, cause 486)",
            repr(out))
        sp.check_exit(t)
    t.run("call --wait, busy callee", call_busy)

    # ------------------------------------------------- exists, drop, errors
    def ringing_drop():
        sp = t.sipp("uas_ring_forever.xml", port=port["ring"]).start()
        creator = follow(["call", "--to", d.uri(port["ring"]), "--play",
                          "notice.wav", "--user-data", "ringing", "--wait"])
        first = creator.wait_line(lambda ln: ln.startswith("res_id "), 10)
        if not t.check(first is not None, "the waiting creator printed the res_id",
                       creator.err):
            return
        res_id = first.split()[1]
        time.sleep(0.3)  # let it ring
        rc, out, _ = run(["exists", res_id])
        t.check(rc == 0 and out == "true\n", "exists on a live call: exit 0, true",
                "exit %d out %r" % (rc, out))
        rc, out, err = run(["drop", res_id])
        t.check(rc == 0 and out == "dropped %s\n" % res_id, "drop: exit 0",
                "exit %d out %r err %r" % (rc, out, err))
        line = creator.wait_line(lambda ln: ln.startswith("released "), 15)
        t.check(line is not None and re.match(released_line(
            res_id, r"canceled \(dropped by sys, cause 487\)"), line),
            "the creator prints: released ...: canceled (dropped by sys, cause 487)",
            repr(line))
        rc = creator.wait(10)
        t.check(rc == 1, "the creator exits 1 (error canceled)", "exit %r" % rc)
        rc, out, _ = run(["exists", res_id])
        t.check(rc == 1 and out == "false\n", "exists after release: exit 1, false",
                "exit %d out %r" % (rc, out))
        rc, out, _ = run(["--json", "exists", res_id])
        t.check(rc == 1 and json.loads(out or "{}").get("result") is False,
                "exists --json after release: exit 1, raw result false", out)
        sp.check_exit(t, "sipp got the CANCEL")
    t.run("exists and drop of a ringing call", ringing_drop)

    def daemon_errors():
        unknown = "0.0.0-ext.notify_call-1"
        rc, out, err = run(["drop", unknown])
        t.check(rc == 4 and "error 404" in err and out == "",
                "drop of an unknown id: exit 4, error 404 on stderr",
                "exit %d out %r err %r" % (rc, out, err))
        rc, out, err = run(["--json", "drop", unknown])
        t.check(rc == 4 and json.loads(out or "{}").get("error", {}).get("code") == 404,
                "drop --json of an unknown id: exit 4, the raw error line on stdout",
                "exit %d out %r" % (rc, out))
        rc, out, err = run(["call", "--to", d.uri(port["ok"]), "--play", "nope.wav"])
        t.check(rc == 4 and "error 404" in err, "a missing prompt: exit 4, 404",
                "exit %d err %r" % (rc, err))
        rc, out, err = run(["call", "--to", d.uri(port["ok"]), "--play", "notice.wav",
                            "--repeat", "1000"])
        t.check(rc == 4 and "error -32602" in err and "play_repeat" in err,
                "--repeat out of the daemon's range: exit 4, -32602 naming the param",
                "exit %d err %r" % (rc, err))
    t.run("daemon errors", daemon_errors)

    # --------------------------------------------------------------- events
    def events():
        f = follow(["events"])
        fj = follow(["--json", "events", "--since", "0"])
        time.sleep(0.5)  # both subscribed: a subscribe is answered at once
        t.check(f.proc.poll() is None, "events keeps running", f.err)
        since_refused = False
        if fj.proc.poll() is not None:
            rc = fj.wait(5)
            since_refused = t.check(rc == 4 and "-32602" in fj.err,
                                    "events --since refused: exit 4, -32602",
                                    "exit %r err %r" % (rc, fj.err))
        sp = t.sipp("uas_answer_wait_bye.xml", port=port["events"]).start()
        rc, out, err = run(["call", "--to", d.uri(port["events"]), "--play",
                            "notice.wav", "--repeat", "0"])
        t.check(rc == 0, "call without --wait: exit 0", "exit %d err %r" % (rc, err))
        m = re.match(r"^res_id (%s) to " % RES_ID, out)
        if not t.check(m is not None, "call printed the res_id", out):
            return
        res_id = m.group(1)
        line = f.wait_line(lambda ln: res_id in ln, 30)
        t.check(line is not None and re.match(released_line(
            res_id, r"ok \(dropped by sys, cause 200, answered .*\)"), line),
            "events prints the call's released line", repr(f.lines))
        if not since_refused:
            raw = fj.wait_line(lambda ln: res_id in ln, 10)
            ev = json.loads(raw) if raw else None
            if t.check(ev is not None, "events --json --since: the raw event line",
                       repr(fj.lines)):
                check_released(t, ev, res_id, None, None, "sys", cause=200,
                               answered=True, label="events --json")
        sp.check_exit(t)
        f.proc.send_signal(signal.SIGTERM)
        t.check(f.wait(5) == -signal.SIGTERM, "events ends on SIGTERM")
    t.run("events", events)

    # ----------------------------------------- timeouts and lost connections
    def timeouts():
        # a server that accepts and never answers
        mute = t.add_cleanup(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        mute.bind((HOST, 0))
        mute.listen(4)
        addr = "%s:%d" % (HOST, mute.getsockname()[1])
        t0 = time.time()
        rc, out, err = run(["--timeout", "0.5", "ping"], connect_to=addr)
        t.check(rc == 3 and "no reply" in err and time.time() - t0 < 4,
                "no reply within --timeout: exit 3", "exit %d err %r" % (rc, err))

        sp = t.sipp("uas_ring_forever.xml", port=port["waitto"]).start()
        t0 = time.time()
        rc, out, err = run(["call", "--to", d.uri(port["waitto"]), "--play",
                            "notice.wav", "--wait", "--wait-timeout", "1"])
        t.check(rc == 3 and "no on_released" in err and 1 <= time.time() - t0 < 6,
                "no event within --wait-timeout: exit 3", "exit %d err %r" % (rc, err))
        m = re.match(r"^res_id (%s) " % RES_ID, out)
        if t.check(m is not None, "the res_id was printed before giving up", out):
            rc, _, err = run(["drop", m.group(1)])
            t.check(rc == 0, "the call goes on and can be dropped", err)
        sp.check_exit(t)
    t.run("timeouts", timeouts)

    # ----------------------------------------------------------- usage errors
    def usage():
        cases = [
            [],
            ["bogus"],
            ["--bogus", "ping"],
            ["ping", "--bogus"],
            ["ping", "extra"],
            ["call", "--play", "notice.wav"],
            ["call", "--to", d.uri(port["ok"])],
            ["call", "--to", d.uri(port["ok"]), "--play", "x.wav", "--repeat", "x"],
            ["call", "--to", d.uri(port["ok"]), "--play", "x.wav", "--repeat", "-1"],
            ["call", "--to", d.uri(port["ok"]), "--play", "x.wav", "--max-ring", "0"],
            ["call", "--to", d.uri(port["ok"]), "--play", "x.wav",
             "--wait-timeout", "3"],
            ["call", "--to", d.uri(port["ok"]), "--play", "x.wav", "--since", "1"],
            ["exists"],
            ["drop", "a", "b"],
            ["events", "--since", "x"],
            ["--timeout", "0", "ping"],
            ["--timeout"],
            ["--connect", "[::1", "ping"],
        ]
        for args in cases:
            rc, out, err = run(args, connect_to=None)
            t.check(rc == 2 and err.strip() != "" and out == "",
                    "exit 2 with a message: ctictl %s" % " ".join(args),
                    "exit %d out %r err %r" % (rc, out, err))
        t.check(d.alive(), "ctid still running")
    t.run("usage errors", usage)

    def cannot_connect():
        dead = free_port("tcp")
        rc, out, err = run(["ping"], connect_to="%s:%d" % (HOST, dead))
        t.check(rc == 3 and "cannot connect" in err and out == "",
                "nothing listening: exit 3, cannot connect",
                "exit %d out %r err %r" % (rc, out, err))
        rc, out, err = run(["events"], connect_to="%s:%d" % (HOST, dead))
        t.check(rc == 3, "events, nothing listening: exit 3", "exit %d" % rc)
    t.run("cannot connect", cannot_connect)

    def lost():
        # a follower and a waiting creator see the daemon go away
        sp = t.sipp("uas_ring_forever.xml", port=port["lost"]).start()
        f = follow(["events"])
        creator = follow(["call", "--to", d.uri(port["lost"]), "--play",
                          "notice.wav", "--wait"])
        t.check(creator.wait_line(lambda ln: ln.startswith("res_id "), 10)
                is not None, "the creator printed the res_id", creator.err)
        time.sleep(0.3)
        rc = d.stop()
        t.check(rc == 0, "ctid exits 0 on SIGTERM", "exit %r" % rc)
        rc = creator.wait(10)
        t.check(rc == 1 and creator.wait_line(
            lambda ln: re.match(r"^released %s: shutdown " % RES_ID, ln), 1),
            "the waiting creator prints the shutdown event and exits 1",
            "exit %r lines %r err %r" % (rc, creator.lines, creator.err))
        rc = f.wait(10)
        t.check(rc == 3 and "closed" in f.err,
                "events exits 3 when the daemon closes the connection",
                "exit %r err %r lines %r" % (rc, f.err, f.lines))
        t.check(f.wait_line(lambda ln: "shutdown" in ln, 1) is not None,
                "events printed the shutdown event first", repr(f.lines))
        sp.wait(10)
    t.run("daemon goes away", lost)
