"""README.md's hand-made call, run from the README's own text.

The first fenced block after the heading "## A call by hand" is read at
test time and run as a user would: each `$ ` line (with its `\\`
continuations) is a shell command from the repository root; the one
ending in `&` is started in the background (the daemon); `nc HOST PORT`
gets the next line of the block typed into it, and the lines after that
are the replies it must print. Only what cannot be shared on a busy
machine is swapped: /tmp/ctid for a temp dir, the ports 5062, 7010 and
40000 for free ones, build/ctid for the binary under test (with --sip and
--rtp-ports on free ports: the README's defaults, 5060 and 20000-29999,
may be taken). So an edit of the README changes what is tested.

The replies are compared with the README's: the same keys at every
level, equal values, except the ones that differ per run (ids and times,
played_ms), which need the same JSON type.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import Test, free_port, rtp_range  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", ".."))
VARYING = {"res_id", "process_id", "begin_time", "answer_time", "end_time",
           "played_ms", "seq"}


def session_block(text):
    """The lines of the first fenced block after '## A call by hand'."""
    at = text.index("\n## A call by hand\n")
    start = text.index("\n```", at) + 1
    start = text.index("\n", start) + 1
    end = text.index("\n```", start)
    return text[start:end].split("\n")


def parse(lines):
    """[(command, typed, expected_replies)]: typed and replies only for nc."""
    steps, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            raise ValueError("line %d is not a command: %r" % (i + 1, line))
        cmd = line[2:]
        while cmd.rstrip().split("#")[0].rstrip().endswith("\\"):
            i += 1
            cmd = cmd.split("#")[0].rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        if shlex.split(cmd, comments=True)[0] == "nc":
            typed = lines[i]
            replies = []
            i += 1
            while i < len(lines) and not lines[i].startswith("$ "):
                replies.append(lines[i])
                i += 1
            steps.append((cmd, typed, replies))
        else:
            steps.append((cmd, None, None))
    return steps


def same_shape(t, got, want, path):
    if isinstance(want, dict):
        if not t.check(isinstance(got, dict) and set(got) == set(want),
                       "%s has the README's keys" % path,
                       "got %s, README %s" % (
                           sorted(got) if isinstance(got, dict) else got,
                           sorted(want))):
            return
        for k in want:
            same_shape(t, got[k], want[k], path + "." + k)
    elif path.rsplit(".", 1)[-1] in VARYING:
        t.check(type(got) is type(want), "%s is a %s like the README's"
                % (path, type(want).__name__), repr(got))
    else:
        t.check_eq(got, want, path)


t = Test("readme")
with t:
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    steps = parse(session_block(readme))
    t.check(any(typed for _, typed, _ in steps),
            "the README's session talks to ctid with nc", repr(steps))
    for tool in ("nc", "espeak-ng", "sipp"):
        t.check(shutil.which(tool) is not None, "%s on PATH (.ci/setup "
                "installs it; README says so)" % tool)
    tmp = t.path("ctid")
    gw, listen, sink = free_port("udp"), free_port("tcp"), free_port("udp")
    sip = free_port("udp")
    lo, hi = rtp_range()

    def local(s):
        s = s.replace("/tmp/ctid", tmp)
        s = re.sub(r"\b5062\b", str(gw), s)
        s = re.sub(r"\b7010\b", str(listen), s)
        s = re.sub(r"\b40000\b", str(sink), s)
        return s

    def daemon_cmd(cmd):
        cmd = local(cmd).rstrip()[:-1].rstrip()  # the trailing &
        assert cmd.startswith("build/ctid ")
        return "%s --sip 127.0.0.1:%d --rtp-ports %d-%d --listen 127.0.0.1:%d %s" % (
            shlex.quote(t.ctid_bin), sip, lo, hi, listen, cmd[len("build/ctid "):])

    background = []  # (Popen, name)
    sipp_pids = []

    def kill_all():
        # The daemon runs under `sh -c` in a session of its own: signal
        # the whole group, or the shell dies and ctid lives on (it did:
        # every run left a daemon behind).
        for p, _ in background:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
            except OSError:
                pass
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    os.killpg(p.pid, 0)
                except OSError:
                    break  # the group is gone
                time.sleep(0.05)
        for pid in sipp_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    class Cleanup:
        def close(self):
            kill_all()
    t.add_cleanup(Cleanup())

    def wait_port(port, timeout=10):
        import socket
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def run_session():
        log = open(t.path("ctid.stderr"), "w")
        for cmd, typed, replies in steps:
            if typed is None and cmd.rstrip().endswith("&"):
                full = daemon_cmd(cmd)
                t.log("$ " + full)
                p = subprocess.Popen(full, shell=True, cwd=ROOT, stdout=log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
                background.append((p, "ctid"))
                t.check(wait_port(listen), "ctid listens (%s)" % cmd[:40])
                continue
            if typed is None:
                full = local(cmd)
                t.log("$ " + full)
                r = subprocess.run(["bash", "-c", full], cwd=ROOT,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=60)
                out = r.stdout.decode(errors="replace")
                m = re.search(r"PID=\[(\d+)\]", out)
                if m:  # sipp -bg: its parent exits 99 once the child runs
                    sipp_pids.append(int(m.group(1)))
                    t.check("Background mode" in out, "runs in the "
                            "background: %s" % cmd[:60], out[-1000:])
                else:
                    t.check(r.returncode == 0, "runs: %s" % cmd[:60],
                            out[-1000:])
                continue
            full = local(cmd)
            t.log("$ " + full)
            nc = subprocess.Popen(["bash", "-c", full], cwd=ROOT,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
            nc.stdin.write((local(typed) + "\n").encode())
            nc.stdin.flush()
            got = []
            deadline = time.time() + 60
            os.set_blocking(nc.stdout.fileno(), False)
            buf = b""
            while len(got) < len(replies) and time.time() < deadline:
                try:
                    chunk = nc.stdout.read()
                except BlockingIOError:
                    chunk = None
                if chunk:
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        got.append(line.decode(errors="replace"))
                elif nc.poll() is not None:
                    break
                else:
                    time.sleep(0.05)
            nc.kill()
            nc.wait()
            t.check_eq(len(got), len(replies), "nc printed the README's "
                       "number of lines")
            for i, (g, w) in enumerate(zip(got, replies)):
                try:
                    gj = json.loads(g)
                except ValueError:
                    t.fail("reply %d is JSON" % (i + 1), g)
                    continue
                same_shape(t, gj, json.loads(local(w)), "reply%d" % (i + 1))
        log.close()
    t.run("the README's session, as written", run_session)
    kill_all()
    with open(t.path("ctid.stderr")) as f:
        err = f.read()
    t.check(not re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", err),
            "ctid's output has no sanitizer report", err[-2000:])
