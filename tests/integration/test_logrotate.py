"""conf/ctid.logrotate against a running ctid, and ipsc CDRs of real calls.

* `logrotate -d` accepts the shipped stanza (its /var/log/ctid turned into
  a temp dir and its `su ctid ctid` into the test's own user, nothing
  else changed).
* `logrotate -f -s STATE` really rotates a running daemon's log_file and
  cdr_file; the stanza's postrotate runs `systemctl reload ctid.service`
  (here a stand-in systemctl on PATH that does what the unit's ExecReload
  does: kill -HUP the daemon), and ctid writes its next lines and CDRs to
  new files.
* cdr_format = ipsc: a real answered call writes one 29-field line in the
  original platform's columns (docs/operations.md).
"""
import csv
import grp
import os
import pwd
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import Test, check_construct_result, make_prompt, gateway, free_port  # noqa: E402

STANZA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "conf", "ctid.logrotate")
IPSC = ["id", "nodeid", "cdrid", "processid", "callid", "ch", "devno", "ani",
        "dnis", "dnis2", "orgcallno", "dir", "devtype", "busitype",
        "callstatus", "endtype", "ipscreason", "callfailcause",
        "callbegintime", "connectbegintime", "callendtime", "talkduration",
        "projectid", "flowid", "additionalinfo1", "additionalinfo2",
        "additionalinfo3", "additionalinfo4", "additionalinfo5"]


def read_rows(path):
    try:
        with open(path, newline="") as f:
            return list(csv.reader(f))
    except FileNotFoundError:
        return []


t = Test("logrotate")
with t:
    logrotate = shutil.which("logrotate") or (
        "/usr/sbin/logrotate" if os.access("/usr/sbin/logrotate", os.X_OK) else None)
    if logrotate is None:
        t.fail("logrotate installed (Debian package logrotate; .ci/setup)")
        sys.exit(t.finish())
    make_prompt(t.path("prompts", "notice.wav"), 0.3)
    logdir = t.path("log")
    os.makedirs(logdir)
    log_path = os.path.join(logdir, "ctid.log")
    cdr_path = os.path.join(logdir, "cdr.csv")
    port = free_port("udp")
    d = t.ctid(gateways=[gateway("gw", port)],
               conf={"log_file": log_path, "cdr_file": cdr_path,
                     "cdr_format": "ipsc", "node_id": "7.8.9"})
    d.start()
    c = t.client(d.listen_port)

    # The stanza as shipped, with only its paths and user made local.
    with open(STANZA) as f:
        text = f.read()
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    t.check("/var/log/ctid/*.log /var/log/ctid/*.csv" in text and
            "su ctid ctid" in text and
            "systemctl reload ctid.service" in text,
            "the shipped stanza rotates ctid's log and CDR files, as ctid, "
            "and reloads the unit")
    conf = t.path("ctid.logrotate")
    with open(conf, "w") as f:
        f.write(text.replace("/var/log/ctid", logdir)
                .replace("su ctid ctid", "su %s %s" % (user, group)))
    os.chmod(conf, 0o644)
    # systemctl reload ctid.service = ExecReload = kill -HUP $MAINPID
    bindir = t.path("bin")
    os.makedirs(bindir)
    calls = t.path("systemctl.calls")
    fake = os.path.join(bindir, "systemctl")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\necho \"$*\" >> %s\n"
                "[ \"$*\" = \"reload ctid.service\" ] && exec kill -HUP %d\n"
                "exit 1\n" % (calls, d.proc.pid))
    os.chmod(fake, 0o755)
    env = dict(os.environ, PATH=bindir + ":" + os.environ.get("PATH", ""))
    state = t.path("logrotate.state")

    def call(user_data):
        sp = t.sipp("uas_answer_wait_bye.xml", port=port).start()
        to = d.uri(port, "13900000000")
        r = c.call("ext.notify_call.construct", {
            "from_uri": "10086", "to_uri": to, "play_content": "notice.wav",
            "play_repeat": 0, "user_data": user_data})
        res_id, pid = check_construct_result(t, r, "7.8.9", to, user_data)
        ev = c.wait_event(res_id, timeout=30)
        sp.check_exit(t)
        return res_id, pid, ev

    def ipsc_line():
        res_id, pid, ev = call("a,\"b\"")
        rows = [r for r in read_rows(cdr_path) if len(r) > 24 and r[24] == res_id]
        if not t.check(len(rows) == 1, "one ipsc CDR line for the call"):
            return
        row = dict(zip(IPSC, rows[0]))
        p = ev["params"]
        t.check_eq(len(rows[0]), 29, "29 fields")
        t.check_eq(row["nodeid"], "7.8.9", "nodeid")
        t.check_eq(row["processid"], str(pid), "processid")
        t.check_eq(row["ani"], "10086", "ani")
        t.check_eq(row["dnis"], "13900000000", "dnis: the number dialled")
        t.check_eq(row["orgcallno"], d.uri(port, "13900000000"), "orgcallno")
        t.check_eq((row["dir"], row["devtype"]), ("1", "2"),
                   "dir 1 (outbound), devtype 2 (SIP)")
        t.check_eq((row["callstatus"], row["endtype"]), ("1", "1"),
                   "callstatus 1 (answered), endtype 1 (ctid hung up)")
        t.check_eq((row["ipscreason"], row["callfailcause"]), ("", ""),
                   "no failure")
        want = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p["begin_time"]))
        t.check_eq(row["callbegintime"], want, "callbegintime as local time")
        t.check_eq(row["talkduration"], str(p["end_time"] - p["answer_time"]),
                   "talkduration")
        t.check_eq(row["additionalinfo2"], "a,\"b\"", "user_data, CSV-quoted")
    t.run("cdr_format = ipsc: a real call's line", ipsc_line)

    def debug_run():
        r = subprocess.run([logrotate, "-d", "-s", state, conf], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = r.stdout.decode(errors="replace")
        t.check(r.returncode == 0 and "error" not in out.lower(),
                "logrotate -d accepts the stanza", out[-2000:])
        t.check("ctid.log" in out and "cdr.csv" in out,
                "it would consider the log and the CDR file", out[-2000:])
        t.check(not os.path.exists(calls), "-d runs no postrotate")
    t.run("logrotate -d", debug_run)

    def rotate():
        r = subprocess.run([logrotate, "-f", "-s", state, conf], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = r.stdout.decode(errors="replace")
        t.check(r.returncode == 0, "logrotate -f rotates", out[-2000:])
        t.check(os.path.exists(log_path + ".1") and os.path.exists(cdr_path + ".1"),
                "ctid.log.1 and cdr.csv.1 exist (not yet compressed)",
                repr(os.listdir(logdir)))
        try:
            with open(calls) as f:
                t.check_eq(f.read().split("\n")[0], "reload ctid.service",
                           "postrotate ran systemctl reload ctid.service once")
        except FileNotFoundError:
            t.fail("postrotate ran systemctl")
        deadline = time.time() + 5
        while time.time() < deadline and not os.path.exists(log_path):
            time.sleep(0.05)
        t.check(os.path.exists(log_path), "after SIGHUP ctid opened a new log file")
        t.check(len(read_rows(cdr_path + ".1")) == 1,
                "the rotated CDR file keeps the earlier record")
        res_id, _, _ = call("after")
        rows = read_rows(cdr_path)
        t.check(len(rows) == 1 and rows[0][24] == res_id,
                "the next call's CDR is in the new cdr.csv", repr(rows))
        with open(log_path) as f:
            later = f.read()
        t.check(res_id in later, "the next call's log lines are in the new ctid.log")
        with open(log_path + ".1") as f:
            t.check(res_id not in f.read(), "and not in the rotated one")
    t.run("logrotate -f against the running daemon", rotate)
