"""kamailio: a real SIP registrar/proxy for ctid's integration tests
(stdlib only; Debian kamailio + kamailio-tls-modules, installed by .ci/setup).

Kamailio 5.6 runs as a child of the test, in the foreground (-DD -E), with
the one config of tests/kamailio/ctid-test.cfg (read its header: the
switches, the log format) copied into a private run directory beside the
files the harness writes: users.cfg (route[PASSWORD]: auth user ->
password) and, with tls=True, tls.cfg (server certificate for 127.0.0.1 and
localhost on the `tls` port, one with the wrong name on `tls_wrong`; no
client verification). It listens on 127.0.0.1 only: UDP and TCP on one
port, TLS on two more. No systemd, no shared memory left behind (mmap).

    kam = Kamailio(t, users={"alice": "secret"}, downstream=uas.port,
                   tls=True).start()             # registered for cleanup
    kam.uri("alice", "tcp")     # "sip:alice@127.0.0.1:P;transport=tcp"
    kam.address("tls")          # "127.0.0.1:P" (the TLS port)
    kam.ca_file                 # the test CA, for a ctid tls_ca_file
    mark = kam.mark()
    kam.wait_log(r"KAM REQ BYE ", since=mark)    # regex match, or None
    kam.requests("INVITE")      # dicts: method, ruri, from, to, pai, ...
    kam.restart()               # same ports, registrations lost

Switches (constructor keywords, also attributes that take effect at the
next start/restart): users (dict), register_auth (REGISTER challenged with
401), invite_auth (initial INVITE challenged with 407), wrong_password
(401: challenge again; 403: Forbidden), options_code (reply to OPTIONS for
Kamailio itself; 0: drop them), downstream (port or "sip:host:port[;...]":
where INVITEs that are not for a registered AOR go, R-URI kept),
min_expires / max_expires / default_expires (registrar), realm, tls.

Start-up waits for the sockets, not a fixed time: an OPTIONS probe (one the
config answers before logging it, whatever options_code says) over UDP and
TCP, and a TLS handshake verified with the test CA on each TLS port.
"""

import os
import re
import shutil
import socket
import ssl
import subprocess
import time

from ctidtest import HOST, Daemon, free_port

CFG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kamailio",
                   "ctid-test.cfg")
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
_SAFE = re.compile(r"^[A-Za-z0-9_.+=@%!~*-]+$")   # users and passwords in users.cfg


def _openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args),
                                               r.stdout.decode(errors="replace")))


SERVER_NAME = ("localhost", "IP:127.0.0.1,DNS:localhost")


def tls_material(t, server=SERVER_NAME):
    """A throwaway CA and two server certificates signed by it, made once
    per test in t.path("tls"): returns a dict of paths: ca_file, cert_file,
    key_file (server: its CN and subjectAltName, by default IP:127.0.0.1
    and DNS:localhost), wrong_cert_file, wrong_key_file (CN and SAN
    wrong.invalid only)."""
    d = t.path("tls")
    paths = {"ca_file": os.path.join(d, "ca.crt"),
             "cert_file": os.path.join(d, "server.crt"),
             "key_file": os.path.join(d, "server.key"),
             "wrong_cert_file": os.path.join(d, "wrong.crt"),
             "wrong_key_file": os.path.join(d, "wrong.key")}
    if os.path.exists(paths["wrong_cert_file"]):
        return paths
    os.makedirs(d, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "2", "-subj", "/CN=ctid test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for base, cn, san in (("server",) + tuple(server),
                          ("wrong", "wrong.invalid", "DNS:wrong.invalid")):
        with open(os.path.join(d, base + ".ext"), "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n" % san)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", base + ".key",
                 "-out", base + ".csr", "-subj", "/CN=" + cn, cwd=d)
        _openssl("x509", "-req", "-in", base + ".csr", "-CA", "ca.crt",
                 "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
                 "-out", base + ".crt", "-extfile", base + ".ext", cwd=d)
    return paths


def cseq_number(d):
    """The number of a requests()/replies() dict's cseq (0 if none)."""
    m = re.match(r"\s*(\d+)", d.get("cseq") or "")
    return int(m.group(1)) if m else 0


def parse_fields(rest):
    """' |k=v |k2=v2' -> {"k": "v", "k2": "v2"} ("<null>" -> None)."""
    out = {}
    for part in rest.split(" |")[1:]:
        k, _, v = part.partition("=")
        v = v.strip()
        out[k] = None if v == "<null>" else v
    return out


class Kamailio(Daemon):
    """Kamailio as registrar and proxy (see the module doc)."""

    process_group = True    # a kill reaches its children too

    def __init__(self, t, name="kamailio", users=None, register_auth=True,
                 invite_auth=False, wrong_password=401, options_code=200,
                 downstream=None, min_expires=10, max_expires=3600,
                 default_expires=600, realm="ctid.test", tls=False):
        self.t = t
        self.name = name
        self.users = dict(users or {})
        self.register_auth = register_auth
        self.invite_auth = invite_auth
        self.wrong_password = wrong_password
        self.options_code = options_code
        self.downstream = downstream
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.realm = realm
        self.tls = tls
        self.udp = self.tcp = free_port("udp")      # one number, both transports
        self.tls_port = free_port("tcp") if tls else None
        self.tls_wrong_port = free_port("tcp") if tls else None
        self.dir = t.path(name)
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(self.run_dir, exist_ok=True)
        self.cfg_path = os.path.join(self.dir, "ctid-test.cfg")
        self.log_path = os.path.join(self.dir, "kamailio.log")
        self.pid_file = os.path.join(self.run_dir, "kamailio.pid")
        self.proc = None
        self.starts = 0
        self.ca_file = self.cert_file = self.key_file = None
        self.wrong_cert_file = self.wrong_key_file = None
        if tls:
            for k, v in tls_material(t).items():
                setattr(self, k, v)
        t.add_cleanup(self)

    def __repr__(self):
        return "<kamailio %s udp/tcp %d tls %s>" % (self.name, self.udp, self.tls_port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- addresses
    @property
    def ports(self):
        """{"udp": P, "tcp": P, "tls": P2 or None, "tls_wrong": P3 or None}"""
        return {"udp": self.udp, "tcp": self.tcp, "tls": self.tls_port,
                "tls_wrong": self.tls_wrong_port}

    def port(self, transport="udp"):
        return self.ports[transport]

    def address(self, transport="udp"):
        """"127.0.0.1:PORT" of a transport ("udp", "tcp", "tls", "tls_wrong")."""
        return "%s:%d" % (HOST, self.port(transport))

    def uri(self, user=None, transport="udp"):
        """A SIP URI at this Kamailio: sip:[user@]127.0.0.1:PORT[;transport=..]"""
        tp = {"udp": "", "tcp": ";transport=tcp"}.get(transport, ";transport=tls")
        return "sip:%s%s%s" % (user + "@" if user else "", self.address(transport), tp)

    # -- files the config reads
    def _write_files(self):
        shutil.copyfile(CFG, self.cfg_path)
        lines = ["# generated by tests/integration/kamailio.py for %s" % self.t.name,
                 "route[PASSWORD] {"]
        for user, pw in sorted(self.users.items()):
            if not (_SAFE.match(user) and _SAFE.match(pw)):
                raise ValueError("kamailio users: %r/%r: use [A-Za-z0-9_.+=@%%!~*-]"
                                 % (user, pw))
            lines.append('\tif ($au == "%s") { $var(pw) = "%s"; }' % (user, pw))
        lines += ["\treturn;", "}"]
        with open(os.path.join(self.dir, "users.cfg"), "w") as f:
            f.write("\n".join(lines) + "\n")
        if self.tls:
            tls = ["# generated by tests/integration/kamailio.py",
                   "[server:default]", "method = TLSv1.2+",
                   "verify_certificate = no", "require_certificate = no",
                   "certificate = %s" % self.cert_file,
                   "private_key = %s" % self.key_file, "",
                   "[server:%s]" % self.address("tls_wrong"), "method = TLSv1.2+",
                   "verify_certificate = no", "require_certificate = no",
                   "certificate = %s" % self.wrong_cert_file,
                   "private_key = %s" % self.wrong_key_file, "",
                   "[client:default]", "method = TLSv1.2+",
                   "verify_certificate = no", "require_certificate = no"]
            with open(os.path.join(self.dir, "tls.cfg"), "w") as f:
                f.write("\n".join(tls) + "\n")

    def command(self):
        cmd = [KAMAILIO, "-DD", "-E", "-f", self.cfg_path, "-Y", self.run_dir,
               "-P", self.pid_file, "-w", self.dir, "-m", "64", "-M", "8",
               "-l", "udp:%s" % self.address("udp"),
               "-l", "tcp:%s" % self.address("tcp")]
        if self.tls:
            cmd += ["-l", "tls:%s" % self.address("tls"),
                    "-l", "tls:%s" % self.address("tls_wrong"), "-A", "WITH_TLS"]
        if self.register_auth:
            cmd += ["-A", "WITH_REGAUTH"]
        if self.invite_auth:
            cmd += ["-A", "WITH_INVITEAUTH"]
        if self.wrong_password == 403:
            cmd += ["-A", "WRONG_PASSWORD_403"]
        elif self.wrong_password != 401:
            raise ValueError("wrong_password: 401 or 403")
        if self.downstream is not None:
            ds = self.downstream
            if isinstance(ds, int):
                ds = "sip:%s:%d" % (HOST, ds)
            cmd += ["-A", 'DOWNSTREAM="%s"' % ds]
        cmd += ["-A", "OPTIONS_CODE=%d" % int(self.options_code),
                "-A", "MIN_EXPIRES=%d" % self.min_expires,
                "-A", "MAX_EXPIRES=%d" % self.max_expires,
                "-A", "DEFAULT_EXPIRES=%d" % self.default_expires,
                "-A", 'REALM="%s"' % self.realm]
        return cmd

    # -- process
    def start(self, ready_timeout=10.0):
        self._write_files()
        cmd = self.command()
        self.start_proc(cmd, " ".join(cmd))
        deadline = time.time() + ready_timeout
        probes = [("udp", self._probe_sip), ("tcp", self._probe_sip)]
        if self.tls:
            probes += [("tls", self._probe_tls), ("tls_wrong", self._probe_tls)]
        for transport, probe in probes:
            self.wait_ready(lambda p=probe, tp=transport: p(tp), deadline,
                            "%s port %d not ready after %.0f s" % (
                                transport, self.port(transport), ready_timeout))
        self.t.log("%s ready: udp/tcp %d, tls %s, wrong-name tls %s (pid %d)" % (
            self.name, self.udp, self.tls_port, self.tls_wrong_port, self.proc.pid))
        return self

    def _probe_sip(self, transport):
        """An OPTIONS the config answers 200 before anything else."""
        return self.options(transport, probe=True, timeout=0.5) == 200

    def options(self, transport="udp", probe=False, timeout=1.0):
        """Sends one OPTIONS for Kamailio itself over udp, tcp or tls
        (verified with the test CA); returns the reply's status code, or
        None when none came within timeout. probe=True marks it as the
        harness's readiness probe (answered 200, not logged)."""
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        s = socket.socket(socket.AF_INET, kind)
        s.settimeout(timeout)
        try:
            s.bind((HOST, 0))
            lport = s.getsockname()[1]
            s.connect((HOST, self.port(transport)))
            if transport.startswith("tls"):
                ctx = ssl.create_default_context(cafile=self.ca_file)
                ctx.check_hostname = False
                s = ctx.wrap_socket(s)
            msg = ("OPTIONS sip:%s SIP/2.0\r\n"
                   "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK-opt-%d-%d;rport\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:harness@%s>;tag=h%d\r\n"
                   "To: <sip:%s>\r\nCall-ID: %s-%d-%f\r\nCSeq: 1 OPTIONS\r\n"
                   "%sContent-Length: 0\r\n\r\n" % (
                       self.address(transport), transport[:3].upper(), HOST,
                       lport, lport, self.starts, HOST, lport,
                       self.address(transport),
                       "ctid-harness-probe" if probe else "ctid-harness-options",
                       lport, time.time(),
                       "X-Harness-Probe: 1\r\n" if probe else ""))
            s.sendall(msg.encode())
            m = re.match(rb"SIP/2.0 (\d{3}) ", s.recv(4096))
            return int(m.group(1)) if m else None
        except (OSError, ssl.SSLError):
            return None
        finally:
            s.close()

    def _probe_tls(self, transport):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.check_hostname = False     # tls_wrong has the wrong name on purpose
        try:
            with socket.create_connection((HOST, self.port(transport)), timeout=0.5) as raw:
                with ctx.wrap_socket(raw) as s:
                    s.getpeercert()
                    return True
        except (OSError, ssl.SSLError):
            return False

    # stop (Daemon): SIGTERM, the main process takes its children down;
    # SIGKILL to the process group when that hangs.

    def restart(self, ready_timeout=10.0):
        """Stops and starts again on the same ports with the current
        switches: usrloc is in memory, so every registration is lost."""
        self.stop()
        return self.start(ready_timeout)

    def close(self):
        if self.proc is None:
            return
        if self.t.failed:
            self.t.log("---- last lines of %s (%s)" % (self.name, self.log_path))
            print(self.log_tail(60))
        self.stop()

    # -- the log (stderr; log_text is Daemon's)
    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def mark(self):
        """The log's current length: pass as since= to look only at what
        comes after."""
        return len(self.log_text())

    def wait_log(self, pattern, timeout=5.0, since=0, step=0.05):
        """Waits until the regex matches a line of the log after since;
        returns the match, or None."""
        rx = re.compile(pattern, re.M)
        deadline = time.time() + timeout
        while True:
            m = rx.search(self.log_text(), since)
            if m or time.time() >= deadline:
                return m
            time.sleep(step)

    def _lines(self, kind, since=0):
        return re.findall(r"KAM %s (.*)$" % kind, self.log_text()[since:], re.M)

    def requests(self, method=None, since=0):
        """What Kamailio received, in log order: dicts with method, ruri and the
        fields of the config's KAM REQ line (from, to, pai, privacy, route,
        rr, contact, expires, auth, x, proto, src, callid, cseq; None when
        the header was absent). x is "Name: value; " per X-* header.
        Log order is arrival order per transport (one worker process each);
        between UDP and TCP/TLS lines may be out of order: sort by cseq
        (cseq_number) where it matters."""
        out = []
        for line in self._lines("REQ", since):
            head, _, rest = line.partition(" |")
            m, _, ruri = head.partition(" ")
            if method is None or m == method:
                d = parse_fields(" |" + rest)
                d.update(method=m, ruri=ruri)
                out.append(d)
        return out

    def replies(self, since=0, local=False):
        """Replies Kamailio relayed (local=False: KAM RPL lines) or sent
        itself (local=True: KAM LOC, e.g. 401/407/200 to REGISTER): dicts
        with code (int), reason and the line's fields (cseq, callid, ...)."""
        out = []
        for line in self._lines("LOC" if local else "RPL", since):
            head, _, rest = line.partition(" |")
            if local:
                head = head.split(" ", 1)[1] if head.startswith("SIP/2.0") else head
            code, _, reason = head.partition(" ")
            d = parse_fields(" |" + rest)
            d.update(code=int(code) if code.isdigit() else code, reason=reason)
            out.append(d)
        return out


class KamailioConfig(Kamailio):
    """Kamailio with some other config than ctid-test.cfg (the shipped
    conf/kamailio/ctid-edge.cfg, for one), started and stopped like
    Kamailio. The config's own `listen=` lines are used (no -l): name the
    address and port in defines. defines: {NAME: value} replaces the value
    of each `#!define NAME ...` and `#!substdef "!NAME!...!g"` line of the
    copy (a NAME the config lacks is an error); files: {file name: text}
    written beside the copy (a dispatcher list, say). Its log lines are the
    config's own: requests()/replies() only work for ctid-test.cfg.

        port = free_port("udp")
        kam = KamailioConfig(t, EDGE_CFG, defines={"EDGE_PORT": port, ...},
                             files={"dispatcher.list": "1 sip:...\\n"},
                             port=port).start()
    """

    def __init__(self, t, cfg, name="kamailio-cfg", defines=None, files=None,
                 port=None):
        super().__init__(t, name=name)
        if port is not None:
            self.udp = self.tcp = port
        self.source_cfg = cfg
        self.defines = dict(defines or {})
        self.files = dict(files or {})
        self.cfg_path = os.path.join(self.dir, os.path.basename(cfg))

    def path(self, name):
        """Where a file of `files` is written (for a define naming it)."""
        return os.path.join(self.dir, name)

    def _write_files(self):
        with open(self.source_cfg) as f:
            text = f.read()
        for name, value in self.defines.items():
            text, n1 = re.subn(r"^(#!define\s+%s)\s.*$" % re.escape(name),
                               lambda m: "%s %s" % (m.group(1), value), text,
                               flags=re.M)
            text, n2 = re.subn(r'^(#!substdef\s+"!%s!).*(!g")\s*$' % re.escape(name),
                               lambda m: "%s%s%s" % (m.group(1), value, m.group(2)),
                               text, flags=re.M)
            if n1 + n2 != 1:
                raise ValueError("%s: %d definitions of %s" % (
                    self.source_cfg, n1 + n2, name))
        with open(self.cfg_path, "w") as f:
            f.write(text)
        for name, body in self.files.items():
            with open(self.path(name), "w") as f:
                f.write(body)

    def command(self):
        return [KAMAILIO, "-DD", "-E", "-f", self.cfg_path, "-Y", self.run_dir,
                "-P", self.pid_file, "-w", self.dir, "-m", "64", "-M", "8"]


def start_edge(t, cfg, trunks, name="edge"):
    """The edge config cfg (conf/kamailio/ctid-edge.cfg) started on a port
    of its own, trunks [(port, duid, weight, maxcalls)] in its dispatcher
    list, probing them every second and marking one down at its first
    missed probe (test_edge, test_cluster)."""
    kport = free_port("udp")
    dslist = "".join("1 sip:%s:%d 0 %d duid=%s;maxcalls=%d\n"
                     % (HOST, port, weight, duid, maxcalls)
                     for port, duid, weight, maxcalls in trunks)
    kam = KamailioConfig(t, cfg, name=name, port=kport,
                         files={"dispatcher.list": dslist})
    kam.defines = {"EDGE_ADDR": HOST, "EDGE_PORT": kport,
                   "DS_LIST": kam.path("dispatcher.list"),
                   "DS_PING_INTERVAL": 1, "DS_PROBE_FAILS": 1}
    return kam.start()
