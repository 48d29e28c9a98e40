"""The install layout: `cmake --install BUILD --prefix /usr` into a DESTDIR.

Checks the Debian layout (ctid in sbin, ctictl in bin, /etc/ctid/ctid.conf,
the prompt packs, man pages, the systemd unit and sysusers file, state and
log directories), that an existing /etc/ctid/ctid.conf is never
overwritten, that the installed daemon accepts the installed config, and
that `systemd-analyze verify` passes on the unit and `systemd-analyze
security --offline=true` rates it 2.0 or lower, the logrotate stanza is
installed to /etc/logrotate.d/ctid.
"""
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ctidtest import Test  # noqa: E402

t = Test("install")
with t:
    build = os.path.dirname(t.ctid_bin)
    dest = t.path("root")

    def install():
        env = dict(os.environ, DESTDIR=dest)
        r = subprocess.run(["cmake", "--install", build, "--prefix", "/usr"],
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        out = r.stdout.decode(errors="replace")
        t.check(r.returncode == 0, "cmake --install succeeds", out[-2000:])
        return out

    def tree():
        install()
        expect = {
            "usr/sbin/ctid": "the daemon",
            "usr/bin/ctictl": "the client",
            "etc/ctid/ctid.conf": "the configuration",
            "etc/logrotate.d/ctid": "the logrotate stanza",
            "usr/share/ctid/grafana/ctid.json": "the Grafana dashboard",
            "usr/share/ctid/prometheus/ctid-alerts.yml": "the alert rules",
            "usr/share/ctid/kamailio/ctid-edge.cfg": "the Kamailio edge",
            "usr/share/ctid/kamailio/dispatcher.list": "its trunk list",
            "usr/share/ctid/prompts/zh/digit_4.wav": "the zh prompt pack",
            "usr/share/ctid/prompts/en/digit_4.wav": "the en prompt pack",
            "usr/share/man/man8/ctid.8": "ctid(8)",
            "usr/share/man/man5/ctid.conf.5": "ctid.conf(5)",
            "usr/share/man/man1/ctictl.1": "ctictl(1)",
            "usr/lib/systemd/system/ctid.service": "the systemd unit",
            "usr/lib/sysusers.d/ctid.conf": "the dedicated user",
        }
        for rel, what in expect.items():
            t.check(os.path.isfile(os.path.join(dest, rel)),
                    "%s installed as /%s" % (what, rel))
        for rel in ("var/lib/ctid", "var/log/ctid"):
            t.check(os.path.isdir(os.path.join(dest, rel)),
                    "/%s created" % rel)
        for rel in ("usr/sbin/ctid", "usr/bin/ctictl"):
            t.check(os.access(os.path.join(dest, rel), os.X_OK),
                    "/%s is executable" % rel)
        t.check(not os.path.exists(os.path.join(dest, "usr/local")),
                "nothing under /usr/local")
    t.run("the installed tree", tree)

    def keep_config():
        conf = os.path.join(dest, "etc/ctid/ctid.conf")
        with open(conf, "a") as f:
            f.write("\n# edited by the operator\nnode_id = 7.7.7\n")
        out = install()
        with open(conf) as f:
            text = f.read()
        t.check("node_id = 7.7.7" in text,
                "a second install keeps the operator's ctid.conf")
        t.check("Keeping existing configuration" in out,
                "and says so")
        r = subprocess.run([os.path.join(dest, "usr/sbin/ctid"), "--config",
                            conf, "--check-config"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        text = r.stdout.decode(errors="replace")
        t.check(r.returncode == 0 and "node_id = 7.7.7" in text,
                "the installed ctid accepts the installed configuration",
                text[-1000:])
    t.run("an existing configuration is never overwritten", keep_config)

    def unit():
        unit_path = os.path.join(dest, "usr/lib/systemd/system/ctid.service")
        with open(unit_path) as f:
            text = f.read()
        for line in ("Type=notify", "User=ctid", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "WatchdogSec=",
                     "ReadWritePaths=-/var/lib/ctid -/var/log/ctid",
                     "CapabilityBoundingSet=\n"):
            t.check(line in text, "unit has %s" % line.strip())
        t.check("AmbientCapabilities" not in text.replace(
            "# AmbientCapabilities", "").split("[Install]")[0].replace(
            "add\n# AmbientCapabilities", ""),
            "no ambient capabilities (all ports are above 1024)")
        if shutil.which("systemd-analyze") is None:
            t.fail("systemd-analyze on PATH (Debian package systemd)")
            return
        # verify resolves ExecStart on the real root: point it at the
        # DESTDIR binary; the unit is otherwise verified as installed.
        copy = t.path("ctid.service")
        with open(copy, "w") as f:
            f.write(text.replace("/usr/sbin/ctid",
                                 os.path.join(dest, "usr/sbin/ctid")))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", copy],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = r.stdout.decode(errors="replace")
        t.check(r.returncode == 0 and not out.strip(),
                "systemd-analyze verify passes", out[-2000:])
        # The unit's exposure (issue 16): the same command an operator runs.
        r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                            "--no-pager", copy],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = r.stdout.decode(errors="replace")
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
        t.check(m is not None and float(m.group(1)) <= 2.0,
                "systemd-analyze security rates the unit 2.0 or lower "
                "(got %s)" % (m.group(1) if m else "no score"), out[-3000:])
        for line in ("LimitRTPRIO=10", "Type=notify", "WatchdogSec=30",
                     "ExecReload=/bin/kill -HUP $MAINPID",
                     "SystemCallFilter=sched_setscheduler"):
            t.check(line in text, "unit keeps %s (real-time media, watchdog, "
                    "reload)" % line)
        t.check("\nRestrictRealtime=" not in text,
                "RestrictRealtime= is not set (the media threads need "
                "SCHED_FIFO)")
        r = subprocess.run(["man", "--warnings", "-l",
                            os.path.join(dest, "usr/share/man/man8/ctid.8"),
                            os.path.join(dest, "usr/share/man/man5/ctid.conf.5")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=dict(os.environ, MANPAGER="cat", PAGER="cat"),
                           timeout=60)
        t.check(r.returncode == 0 and not r.stderr.strip(),
                "man pages render without warnings", r.stderr.decode()[-500:])
    t.run("the systemd unit", unit)
