#!/usr/bin/env python3
"""ctid integration test: a seq never names two events, whatever the disk
does (issue 10 bug 4; docs/reliability.md, "Durable events").

state_dir is a small tmpfs mounted in the test's temp dir (we run as root;
the test fails, saying why, when mount is impossible: it never passes untried).

A  two calls with the disk fine: seq 1, 2, journaled.
B  80 calls ringing (each with 1000 bytes of user_data, so their events
   need more than a tmpfs page of journal, and their ledger "close"
   records more than a page of calls.log); then the tmpfs is filled up
   with a file and the 80 calls are dropped: their events go out live while
   the journal cannot take them (the log says so, and the test checks that
   it really did happen), nor the ledger their release.
C  the file is removed, ctid is stopped cleanly and started again, three
   calls are placed.
D  ctid is killed with SIGKILL, started again, one more call.
Across every event received live (creator and a subscriber) and replayed
with sys.subscribe {"since": 0} after each restart, no seq names two
different events (res_ids), and no call has two events (a release the
ledger could not record must not be reported again after the restart as
"daemon restart"). On the old code the calls of C reuse the seqs of B's
unjournaled events.
"""
import errno
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, construct, make_prompt,  # noqa: E402
                      gateway, free_port, check_result)

N_FULL = 80


class Tmpfs:
    """A tmpfs mounted at path for the test's life."""

    def __init__(self, path, size):
        self.path = path
        os.makedirs(path, exist_ok=True)
        try:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                                "size=%s,mode=0750" % size, "tmpfs", path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as e:   # no mount(8) at all
            self.ok, self.why = False, str(e)
            return
        self.ok = r.returncode == 0
        self.why = r.stdout.decode(errors="replace").strip()

    def close(self):
        if self.ok:
            subprocess.run(["umount", "-l", self.path])
            self.ok = False


def fill(path):
    """Writes path until the file system is full; returns the bytes."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 512, 1):
            block = b"\0" * chunk
            while True:
                try:
                    w = f.write(block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                n += w or 0
                if not w:
                    break
    return n


t = Test("seq_disk_full")
with t:
    fs = t.add_cleanup(Tmpfs(t.path("state"), "4m"))
    if not t.check(fs.ok, "a tmpfs for state_dir is mounted (this test "
                   "needs root and mount permission, as CI has)", fs.why):
        sys.exit(1)   # a test that cannot run must not pass
    make_prompt(t.path("prompts", "short.wav"), 0.2)
    ports = {k: free_port("udp") for k in ("busy", "ring")}
    d = t.ctid(gateways=[gateway("gw" + k, p) for k, p in ports.items()],
               state_dir=fs.path)
    d.start()
    named = {}      # seq -> set of res_ids it was seen with
    per_call = {}   # res_id -> set of seqs (None: no seq) it was seen with
    unnumbered = []  # events received without a seq
    all_events = []  # (where, seq, res_id)

    def note(where, evs):
        for e in evs:
            p = e.get("params") or {}
            seq, res_id = p.get("seq"), p.get("res_id")
            all_events.append((where, seq, res_id))
            per_call.setdefault(res_id, set()).add(seq)
            if seq is None:
                unnumbered.append((where, res_id))
            else:
                named.setdefault(seq, set()).add(res_id)

    def busy_calls(c, n, label):
        sp = t.sipp("uas_busy.xml", port=ports["busy"], calls=n).start()
        res = []
        for i in range(n):
            ud = "%s-%d" % (label, i)
            res_id = construct(t, c, d, d.uri(ports["busy"]), "short.wav",
                               label="%s construct %d" % (label, i), user_data=ud)
            if res_id is not None:
                t.check(c.wait_event(res_id, timeout=20) is not None,
                        "%s: event of call %d" % (label, i))
                res.append(res_id)
        sp.wait(10)
        sp.close()
        return res

    def replay(label):
        s = t.client(d.listen_port, "replay-" + label)
        r = s.call("sys.subscribe", {"since": 0})
        check_result(t, r, True, "%s: sys.subscribe since 0" % label)
        time.sleep(1.0)
        evs = s.events()
        note("replay-" + label, evs)
        s.close()
        return evs

    state = {}

    def sub_a():
        state["sub"] = t.client(d.listen_port, "subscriber")
        r = state["sub"].call("sys.subscribe")
        check_result(t, r, True, "A: subscribed")
        state["c"] = t.client(d.listen_port, "creator")
        busy_calls(state["c"], 2, "A")
    t.run("A: two calls, disk fine", sub_a)

    def sub_b():
        c = state["c"]
        sp = t.sipp("uas_ring_forever.xml", port=ports["ring"], calls=N_FULL,
                    timeout=120).start()
        ids = []
        for i in range(N_FULL):
            ud = ("B-%d-" % i) + "x" * 1000
            res_id = construct(t, c, d, d.uri(ports["ring"]), "short.wav",
                               label="B construct %d" % i, user_data=ud)
            if res_id:
                ids.append(res_id)
        # ringing: INVITE, 100, 180 done (the ledger has their dialogs)
        deadline = time.time() + 10
        while time.time() < deadline and len(sp.received("INVITE")) < len(ids):
            time.sleep(0.1)
        time.sleep(0.5)
        n = fill(os.path.join(fs.path, "filler"))
        t.log("B: state_dir filled with %d bytes" % n)
        mark = len(d.log_text())
        for res_id in ids:
            r = c.call("ext.notify_call.drop", {"res_id": res_id})
            check_result(t, r, True, "B: drop")
        for res_id in ids:
            t.check(c.wait_event(res_id, timeout=20) is not None,
                    "B: the event of %s went out live with the disk full" % res_id)
        sp.wait(15)
        sp.close()
        log = d.log_text()[mark:]
        t.check("not written" in log or "without seq" in log,
                "B: the journal really could not take some events (log says so)",
                "no journal failure logged: the test did not exercise a full disk")
        t.check("cannot record the release" in log,
                "B: nor the ledger some releases (log says so)",
                "no ledger failure logged")
    t.run("B: events while state_dir is full", sub_b)

    def sub_c():
        os.unlink(os.path.join(fs.path, "filler"))
        t.check_eq(d.stop(), 0, "C: ctid stopped cleanly")
        note("live-creator", state["c"].events())
        note("live-subscriber", state["sub"].events())
        state["c"].close()
        state["sub"].close()
        d.start()
        c = t.client(d.listen_port, "creator-C")
        busy_calls(c, 3, "C")
        note("live-C", c.events())
        replay("C")
        c.close()
    t.run("C: space freed, clean restart, three calls", sub_c)

    def sub_d():
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        d.start()
        c = t.client(d.listen_port, "creator-D")
        busy_calls(c, 1, "D")
        note("live-D", c.events())
        replay("D")
        c.close()
    t.run("D: SIGKILL, restart, one call", sub_d)

    def verdict():
        twice = {s: sorted(r) for s, r in named.items() if len(r) > 1}
        t.check(not twice, "no seq names two events (%d seqs, %d events seen)" % (
            len(named), len(all_events)),
            "; ".join("seq %s: %s" % (s, [x[:40] for x in r])
                      for s, r in sorted(twice.items())[:10]))
        two = {r: sorted(x) for r, x in per_call.items() if len(x) > 1}
        t.check(not two, "no call has two events (%d calls)" % len(per_call),
                "; ".join("%s: seqs %s" % (r, x) for r, x in sorted(two.items())[:10]))
        t.check("daemon restart" not in d.log_text(),
                "no call was released again as \"daemon restart\"")
        t.check(len(named) >= 2 + N_FULL + 3 + 1 - len(unnumbered),
                "every call's event was seen", "%d seqs" % len(named))
        if unnumbered:
            t.log("events without seq: %d" % len(unnumbered))
        t.check(d.alive(), "the daemon is alive")
    t.run("verdict", verdict)
