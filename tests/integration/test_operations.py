"""ctid for operators: CDRs, SIGHUP reopening, systemd notification.

* cdr_file gets one CSV line per call, in the documented column order,
  written before the call's on_released reaches the client; its call_id is
  the Call-ID of the INVITE the gateway received.
* SIGHUP after logrotate moved the CDR and log files: later records and
  lines go to new files.
* Type=notify without systemd: with NOTIFY_SOCKET set, ctid sends READY=1
  once listening, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on
  SIGTERM.
"""
import csv
import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import (Test, check_construct_result, make_prompt, gateway,  # noqa: E402
                      free_port, header, check_result)

COLUMNS = ["uuid", "node_id", "process_id", "call_id", "caller", "callee",
           "direction", "answered", "end_type", "failure_cause", "begin_time",
           "answer_time", "end_time", "talk_seconds", "project_id", "flow_id",
           "res_id", "user_data"]


def read_cdrs(path):
    try:
        with open(path, newline="") as f:
            return [dict(zip(COLUMNS, row)) for row in csv.reader(f)]
    except FileNotFoundError:
        return []


t = Test("operations")
with t:
    make_prompt(t.path("prompts", "notice.wav"), 0.5)
    ports = {k: free_port("udp") for k in ("ok", "busy", "after")}
    cdr_path = t.path("cdr", "cdr.csv")
    log_path = t.path("cdr", "ctid-file.log")
    os.makedirs(os.path.dirname(cdr_path))

    # systemd's side of sd_notify: a datagram socket named by NOTIFY_SOCKET,
    # drained all the time as systemd does (sd_notify blocks, up to its
    # send timeout, on a full socket: a test that stopped reading would
    # stall ctid's main loop).
    notify_path = t.path("notify.sock")
    notify = t.add_cleanup(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    notify.bind(notify_path)
    notify.settimeout(0.2)
    received = []  # (arrival time, message)

    def drain():
        while True:
            try:
                received.append((time.time(), notify.recv(4096).decode()))
            except socket.timeout:
                continue
            except OSError:
                return
    threading.Thread(target=drain, daemon=True).start()
    os.environ["NOTIFY_SOCKET"] = notify_path
    os.environ["WATCHDOG_USEC"] = "400000"
    d = t.ctid(gateways=[gateway("gw" + k, p) for k, p in ports.items()],
               conf={"cdr_file": cdr_path, "log_file": log_path,
                     "node_id": "4.5.6"})
    d.start()
    del os.environ["NOTIFY_SOCKET"]
    del os.environ["WATCHDOG_USEC"]
    c = t.client(d.listen_port)

    def notify_msgs(seconds):
        """Messages that arrive in the next `seconds` (and any earlier ones
        not seen yet)."""
        start = len(received)
        time.sleep(seconds)
        return [m for _, m in received[start:]]

    def ready():
        notify_msgs(1.0)
        msgs = [m for _, m in received]
        t.check(any(m.startswith("READY=1") for m in msgs),
                "READY=1 sent once listening", repr(msgs))
        t.check(any("STATUS=listening on 127.0.0.1:%d" % d.listen_port in m
                    for m in msgs), "STATUS names the listen address", repr(msgs))
        pings = [m for m in msgs if "WATCHDOG=1" in m]
        t.check(len(pings) >= 3, "WATCHDOG=1 about every 200 ms (half of "
                "WATCHDOG_USEC=400000)", "%d pings in 1 s" % len(pings))
    t.run("sd_notify at start", ready)

    def call(name, scenario, user_data):
        sp = t.sipp(scenario, port=ports[name]).start()
        to = d.uri(ports[name], "13900000000")
        r = c.call("ext.notify_call.construct", {
            "from_uri": "10086", "to_uri": to, "play_content": "notice.wav",
            "play_repeat": 0, "user_data": user_data})
        res_id, pid = check_construct_result(t, r, "4.5.6", to, user_data)
        ev = c.wait_event(res_id, timeout=30)
        # written before the event was sent, so it is there now
        rows = [x for x in read_cdrs(cdr_path) if x["res_id"] == res_id]
        t.check(len(rows) == 1, "one CDR line for %s when its event arrived"
                % name, "%d" % len(rows))
        sp.check_exit(t)
        inv = sp.received("INVITE")
        return (rows[0] if rows else None), ev, pid, (header(inv[0], "Call-ID") if inv else None)

    def cdr_answered():
        row, ev, pid, call_id = call("ok", "uas_answer_wait_bye.xml", 'ud,"1"')
        if row is None or ev is None:
            return
        p = ev["params"]
        t.check_eq(list(row.keys()), COLUMNS, "18 columns in the documented order")
        t.check(len(row["uuid"]) == 36 and row["uuid"].count("-") == 4,
                "uuid is a UUID", row["uuid"])
        t.check_eq(row["node_id"], "4.5.6", "node_id")
        t.check_eq(row["process_id"], str(pid), "process_id")
        t.check_eq(row["call_id"], call_id, "call_id is the INVITE's Call-ID")
        t.check_eq(row["caller"], "10086", "caller")
        t.check_eq(row["callee"], d.uri(ports["ok"], "13900000000"), "callee")
        t.check_eq(row["direction"], "outbound", "direction")
        t.check_eq(row["answered"], "1", "answered flag")
        t.check_eq(row["end_type"], "sys", "end_type = dropped_by")
        t.check_eq(row["failure_cause"], "", "no failure cause")
        t.check_eq(row["begin_time"], str(p["begin_time"]), "begin_time as the event's")
        t.check_eq(row["answer_time"], str(p["answer_time"]), "answer_time as the event's")
        t.check_eq(row["end_time"], str(p["end_time"]), "end_time as the event's")
        t.check_eq(row["talk_seconds"], str(p["end_time"] - p["answer_time"]),
                   "talk duration = end - answer")
        t.check_eq(row["user_data"], 'ud,"1"', "user_data with a comma and quotes "
                   "survives CSV quoting")
    t.run("CDR of an answered call", cdr_answered)

    def cdr_busy():
        row, ev, _, _ = call("busy", "uas_busy.xml", None)
        if row is None:
            return
        t.check_eq(row["answered"], "0", "answered flag")
        t.check_eq(row["answer_time"], "", "answer_time empty")
        t.check_eq(row["talk_seconds"], "0", "talk 0")
        t.check_eq(row["end_type"], "usr", "end_type")
        t.check_eq(row["failure_cause"], "call rejected (486)", "failure cause")
        t.check_eq(row["user_data"], "", "null user_data is empty")
    t.run("CDR of a rejected call", cdr_busy)

    def hup():
        os.rename(cdr_path, cdr_path + ".1")
        os.rename(log_path, log_path + ".1")
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline and not os.path.exists(log_path):
            time.sleep(0.05)
        t.check(os.path.exists(cdr_path), "SIGHUP: a new cdr_file was opened")
        t.check(os.path.exists(log_path), "SIGHUP: a new log_file was opened")
        row, _, _, _ = call("after", "uas_answer_wait_bye.xml", "after")
        t.check(row is not None, "the next call's CDR is in the new file")
        t.check_eq(len(read_cdrs(cdr_path + ".1")), 2,
                   "the rotated file keeps the earlier two records")
        with open(log_path) as f:
            text = f.read()
        t.check("reopened" in text and "13900000000" in text,
                "the new log file gets the later lines")
        r = c.call("sys.ping")
        check_result(t, r, "pong", "still serving")
    t.run("SIGHUP reopens CDR and log files", hup)

    def stopping():
        notify_msgs(0.3)  # drain pings
        d.proc.send_signal(signal.SIGTERM)
        msgs = notify_msgs(2.0)
        t.check(any("STOPPING=1" in m for m in msgs), "STOPPING=1 on SIGTERM",
                repr(msgs[-3:]))
        t.check_eq(d.stop(), 0, "exit status after SIGTERM")
    t.run("sd_notify at stop", stopping)
