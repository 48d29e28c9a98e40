"""conf/grafana/ctid.json and conf/prometheus/ctid-alerts.yml.

* `promtool check rules` accepts the alert rules; the dashboard's queries
  (Grafana's $variables given sample values) pass the same PromQL parser
  as recording rules.
* The dashboard is sane: panels each with targets, every expression
  non-empty, the datasource the template variable, ids unique; it covers
  what issue 16 lists (calls, outcomes, construct latency, RTP packets and
  send errors, journal and its lag, gateways) and the rules the seven
  alerts.
* `promtool test rules` on sample series: CtidJournalSyncSlow and
  CtidRtpSendErrors fire where they should, and only there.
* Every ctid_* metric either file uses appears in a # TYPE line of a
  running ctid's /metrics (a histogram's _bucket/_sum/_count by its base
  name), so a renamed metric breaks this test, not a production alert.
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import Test, free_port, gateway, http_get  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DASH = os.path.join(ROOT, "conf", "grafana", "ctid.json")
RULES = os.path.join(ROOT, "conf", "prometheus", "ctid-alerts.yml")
METRIC = re.compile(r"\bctid_[a-z0-9_]+")


def exprs_of(dash):
    return [(p.get("title", "?"), tgt.get("expr", ""))
            for p in dash.get("panels", []) for tgt in p.get("targets", [])]


t = Test("dashboards")
with t:
    with open(DASH) as f:
        dash = json.load(f)
    with open(RULES) as f:
        rules_text = f.read()
    promtool = shutil.which("promtool")

    def check_rules():
        if promtool is None:
            t.fail("promtool on PATH (Debian package prometheus; .ci/setup)")
            return
        r = subprocess.run([promtool, "check", "rules", RULES],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = r.stdout.decode(errors="replace")
        t.check(r.returncode == 0 and "SUCCESS: 7 rules found" in out,
                "promtool check rules: 7 rules", out[-2000:])
        for name in ("CtidDown", "CtidErrorRatioHigh", "CtidConstructLatencyHigh",
                     "CtidGatewayDown", "CtidJournalNearLimit",
                     "CtidJournalSyncSlow", "CtidRtpSendErrors"):
            t.check("alert: %s\n" % name in rules_text, "alert %s" % name)
    t.run("alert rules", check_rules)

    # series for `promtool test rules`: (labels, values), one sample a minute
    ALERT_SERIES = [
        # fdatasync p99 about 0.1 s on "slow", about 1 ms on "fast"
        ('ctid_journal_sync_seconds_bucket{instance="slow",le="0.05"}', "0+0x40"),
        ('ctid_journal_sync_seconds_bucket{instance="slow",le="0.1"}', "0+100x40"),
        ('ctid_journal_sync_seconds_bucket{instance="slow",le="+Inf"}', "0+100x40"),
    ] + [('ctid_journal_sync_seconds_bucket{instance="fast",le="%s"}' % le,
          "0+100x40") for le in ("0.001", "0.05", "0.1", "+Inf")] + [
        # one stream a minute that cannot send at all
        ('ctid_rtp_send_errors_total{instance="fatal",kind="fatal"}', "0+1x40"),
        ('ctid_rtp_send_errors_total{instance="fatal",kind="transient"}', "0+0x40"),
        ('ctid_rtp_packets_sent_total{instance="fatal"}', "0+1000x40"),
        # 10% of packets lost, and 0.1%
        ('ctid_rtp_send_errors_total{instance="lossy",kind="fatal"}', "0+0x40"),
        ('ctid_rtp_send_errors_total{instance="lossy",kind="transient"}', "0+100x40"),
        ('ctid_rtp_packets_sent_total{instance="lossy"}', "0+1000x40"),
        ('ctid_rtp_send_errors_total{instance="fine",kind="fatal"}', "0+0x40"),
        ('ctid_rtp_send_errors_total{instance="fine",kind="transient"}', "0+1x40"),
        ('ctid_rtp_packets_sent_total{instance="fine"}', "0+1000x40"),
    ]

    def check_new_alerts():
        """The two alerts of the send error and journal lag metrics fire
        where they should and only there, after their `for`."""
        if promtool is None:
            return
        path = t.path("alerts-test.yml")
        sel = 'ALERTS{alertname=~"CtidJournalSyncSlow|CtidRtpSendErrors",alertstate="firing"}'
        lines = ["rule_files:", "  - %s" % json.dumps(os.path.abspath(RULES)),
                 "evaluation_interval: 1m", "tests:", "  - interval: 1m",
                 "    input_series:"]
        for series, values in ALERT_SERIES:
            lines += ["      - series: %s" % json.dumps(series),
                      "        values: %s" % json.dumps(values)]
        lines += ["    promql_expr_test:",
                  "      - expr: %s" % json.dumps(sel),
                  "        eval_time: 5m",   # pending, not firing yet
                  "        exp_samples: []",
                  "      - expr: %s" % json.dumps(sel),
                  "        eval_time: 30m",
                  "        exp_samples:"]
        for name, inst in (("CtidJournalSyncSlow", "slow"),
                           ("CtidRtpSendErrors", "fatal"),
                           ("CtidRtpSendErrors", "lossy")):
            lines += ["          - labels: %s" % json.dumps(
                'ALERTS{alertname="%s",alertstate="firing",instance="%s",'
                'severity="warning"}' % (name, inst)),
                "            value: 1"]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = subprocess.run([promtool, "test", "rules", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = r.stdout.decode(errors="replace")
        t.check(r.returncode == 0 and "SUCCESS" in out,
                "promtool test rules: CtidJournalSyncSlow fires for a 0.1 s "
                "fsync p99 (not 1 ms), CtidRtpSendErrors for a fatal error "
                "and for 10% lost (not 0.1%)", out[-3000:])
    t.run("the two new alerts on sample series", check_new_alerts)

    def check_dashboard():
        panels = dash.get("panels", [])
        t.check(dash.get("title") == "ctid" and dash.get("uid") == "ctid",
                "title and uid")
        t.check(len(panels) >= 8, "panels present", str(len(panels)))
        ids = [p.get("id") for p in panels]
        t.check(len(set(ids)) == len(ids), "panel ids unique", repr(ids))
        variables = {v.get("name"): v for v in
                     dash.get("templating", {}).get("list", [])}
        t.check(variables.get("datasource", {}).get("type") == "datasource",
                "a datasource template variable")
        for p in panels:
            title = p.get("title", "")
            t.check(title and p.get("targets"), "panel %r has targets" % title)
            t.check(p.get("datasource", {}).get("uid") == "${datasource}",
                    "panel %r uses the datasource variable" % title)
            for tgt in p.get("targets", []):
                t.check(tgt.get("expr", "").strip() and
                        tgt.get("datasource", {}).get("uid") == "${datasource}",
                        "panel %r target %s: expression and datasource variable"
                        % (title, tgt.get("refId")))
        text = " ".join(e for _, e in exprs_of(dash))
        for metric, what in (
                ("ctid_active_calls", "calls active"),
                ("ctid_calls_constructed_total", "calls per second"),
                ("ctid_calls_released_total", "outcomes by error"),
                ("ctid_construct_duration_seconds_bucket", "construct latency histogram"),
                ("ctid_rtp_packets_sent_total", "RTP packets"),
                ("ctid_rtp_send_errors_total", "RTP send errors"),
                ("ctid_rtcp_send_errors_total", "RTCP send errors"),
                ("ctid_journal_bytes", "journal fill"),
                ("ctid_journal_sync_seconds_bucket", "journal lag: fsync time"),
                ("ctid_journal_unsynced_events", "journal lag: events not on disk"),
                ("ctid_bus_lag", "journal lag: events not in Redis"),
                ("ctid_events_journaled_total", "events journaled"),
                ("ctid_gateway_up", "gateway state")):
            t.check(metric in text, "the dashboard shows %s (%s)" % (what, metric))
        if promtool is None:
            return
        # Grafana's variables given values, then PromQL's own parser.
        rules = t.path("dashboard-rules.yml")
        with open(rules, "w") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, (_, e) in enumerate(exprs_of(dash)):
                e = (e.replace("$__rate_interval", "5m")
                     .replace("$instance", ".*"))
                f.write("      - record: dashboard:q%d\n        expr: %s\n"
                        % (i, json.dumps(e)))
        r = subprocess.run([promtool, "check", "rules", rules],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = r.stdout.decode(errors="replace")
        t.check(r.returncode == 0, "every dashboard query parses as PromQL",
                out[-2000:])
    t.run("Grafana dashboard", check_dashboard)

    def names_exist():
        mport = free_port("tcp")
        d = t.ctid(gateways=[gateway("gw", free_port("udp"))],
                   conf={"metrics_listen": "127.0.0.1:%d" % mport})
        d.start()
        _, _, body = http_get(mport, "/metrics")
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M))
        t.check("ctid_journal_bytes" in types and "ctid_gateway_up" in types,
                "scraped the running daemon", body[:500])
        used = set(METRIC.findall(rules_text)) | set(
            METRIC.findall(" ".join(e for _, e in exprs_of(dash))))
        for name in sorted(used):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            ok = name in types or (base != name and types.get(base) == "histogram")
            t.check(ok, "%s is in ctid's /metrics" % name)
    t.run("metric names against a running ctid", names_exist)
