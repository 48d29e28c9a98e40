"""dnsharness: a tiny authoritative DNS server for ctid's tests (stdlib only).

ctid's SIP stack (sofia-sip's sres) and glibc read /etc/resolv.conf, whose
nameserver takes no port: the server listens on port 53 of an address of
127.0.0.0/8 of its own (picked at random, so parallel tests do not meet),
over UDP and TCP, and answers for one zone from a table the test fills:

    dns = DnsServer("trunk.test").start()
    dns.srv("_sip._udp.trunk.test", 10, 0, 5070, "gw1.trunk.test")
    dns.a("gw1.trunk.test", "127.0.0.1")
    dns.write_resolv_conf(path)        # "nameserver 127.x.y.z"
    ...
    dns.asked()                         # [("SRV", "_sip._udp.trunk.test"), ...]

Answers: the records of the name and type asked (SRV, A, AAAA; NAPTR and
any other type have none, so they get an empty answer); a name that has
no records of the type asked but exists (it has records of another type,
or a name below it has: "_udp.trunk.test") gets NOERROR with no answer
(NODATA), any other name NXDOMAIN, both with the zone's SOA in the
authority section (negative TTL 1 s). Names outside the zone get
NXDOMAIN too (no recursion: a test must not leak queries to the real DNS).
No compression in answers, no additional records: a resolver that wants a
target's address must ask for it, which the query log then shows.

Every query is recorded (time, transport, type, name) in .queries; asked()
filters them. ns_wrap() is the argv prefix that runs a command in a
private mount namespace with this server's resolv.conf over
/etc/resolv.conf; ns_check() says whether that works here (root and
unshare(1) needed).
"""

import random
import socket
import struct
import subprocess
import threading
import time

TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX",
         16: "TXT", 28: "AAAA", 33: "SRV", 35: "NAPTR", 41: "OPT", 255: "ANY"}
CODES = {v: k for k, v in TYPES.items()}
TTL = 1


def _name(name):
    """A domain name in wire format (no compression)."""
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def _read_name(msg, off):
    """(name, offset after it) of the name at off; follows pointers."""
    labels, end, hops = [], None, 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            hops += 1
            if hops > 20:
                raise ValueError("pointer loop")
            continue
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels).lower(), (end if end is not None else off)


class DnsServer:
    def __init__(self, zone, host=None):
        self.zone = zone.lower().strip(".")
        self.host = host
        self.records = {}        # (name, type code) -> [rdata bytes]
        self.queries = []        # (time, "udp"/"tcp", type name, name)
        self.lock = threading.Lock()
        self.udp = self.tcp = None
        self.stopping = False

    # -- the zone
    def _add(self, name, rtype, rdata):
        with self.lock:
            self.records.setdefault((name.lower().strip("."), rtype),
                                    []).append(rdata)
        return self

    def a(self, name, ip):
        return self._add(name, 1, socket.inet_pton(socket.AF_INET, ip))

    def aaaa(self, name, ip):
        return self._add(name, 28, socket.inet_pton(socket.AF_INET6, ip))

    def srv(self, name, priority, weight, port, target):
        return self._add(name, 33, struct.pack("!HHH", priority, weight, port)
                         + _name(target))

    def clear(self, name=None):
        """Drops every record (of name only, when given)."""
        with self.lock:
            for k in [k for k in self.records if name is None or
                      k[0] == name.lower().strip(".")]:
                del self.records[k]

    # -- the query log
    def asked(self, since=0.0, name_suffix=None):
        """[(type, name)] of the queries received after since, in order,
        of names ending with name_suffix when given."""
        with self.lock:
            q = list(self.queries)
        return [(ty, n) for at, _, ty, n in q if at >= since and
                (name_suffix is None or n == name_suffix or
                 n.endswith("." + name_suffix))]

    def transports(self):
        with self.lock:
            return set(p for _, p, _, _ in self.queries)

    # -- answering
    def _exists(self, name):
        with self.lock:
            return any(k[0] == name or k[0].endswith("." + name)
                       for k in self.records)

    def _soa(self):
        rdata = (_name("ns." + self.zone) + _name("hostmaster." + self.zone) +
                 struct.pack("!IIIII", 1, 60, 60, 60, TTL))
        return (_name(self.zone) + struct.pack("!HHIH", 6, 1, TTL, len(rdata))
                + rdata)

    def answer(self, query, proto):
        """The response to one query message, or None to drop it."""
        if len(query) < 12:
            return None
        qid, flags, qd = struct.unpack("!HHH", query[:6])
        if flags & 0x8000 or qd != 1:
            return None
        try:
            name, off = _read_name(query, 12)
            qtype, qclass = struct.unpack("!HH", query[off:off + 4])
        except (IndexError, ValueError, struct.error):
            return None
        question = query[12:off + 4]
        with self.lock:
            self.queries.append((time.time(), proto,
                                 TYPES.get(qtype, str(qtype)), name))
            rdatas = list(self.records.get((name, qtype), ()))
        in_zone = name == self.zone or name.endswith("." + self.zone)
        rcode = 0 if rdatas or (in_zone and self._exists(name)) else 3
        answers = b"".join(_name(name) + struct.pack("!HHIH", qtype, qclass,
                                                     TTL, len(r)) + r
                           for r in rdatas)
        authority = b"" if rdatas else self._soa()
        # QR, AA, the query's RD; RA clear (not recursive)
        rflags = 0x8000 | 0x0400 | (flags & 0x0100) | rcode
        head = struct.pack("!HHHHHH", qid, rflags, 1, len(rdatas),
                           0 if rdatas else 1, 0)
        return head + question + answers + authority

    # -- serving
    def start(self):
        """Binds UDP and TCP port 53 of a free 127.x.y.z and serves both on
        threads of their own."""
        for _ in range(50):
            host = self.host or "127.%d.%d.%d" % (
                random.randint(1, 254), random.randint(0, 255),
                random.randint(2, 254))
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                u.bind((host, 53))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, 53))
                s.listen(16)
            except PermissionError as e:
                u.close()
                s.close()
                raise RuntimeError("dnsharness: cannot bind %s:53 (%s): port "
                                   "53 needs root or CAP_NET_BIND_SERVICE"
                                   % (host, e)) from e
            except OSError:
                u.close()
                s.close()
                if self.host:
                    raise
                continue
            self.host, self.udp, self.tcp = host, u, s
            break
        else:
            raise RuntimeError("dnsharness: no free 127.x.y.z:53 to bind")
        self.udp.settimeout(0.2)
        self.tcp.settimeout(0.2)
        threading.Thread(target=self._serve_udp, daemon=True).start()
        threading.Thread(target=self._serve_tcp, daemon=True).start()
        return self

    def _serve_udp(self):
        while not self.stopping:
            try:
                data, peer = self.udp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            resp = self.answer(data, "udp")
            if resp is not None:
                try:
                    self.udp.sendto(resp, peer)
                except OSError:
                    pass

    def _serve_tcp(self):
        while not self.stopping:
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,),
                             daemon=True).start()

    def _tcp_conn(self, conn):
        conn.settimeout(5)
        try:
            while True:
                head = conn.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    return
                n = struct.unpack("!H", head)[0]
                data = conn.recv(n, socket.MSG_WAITALL)
                resp = self.answer(data, "tcp")
                if resp is None:
                    return
                conn.sendall(struct.pack("!H", len(resp)) + resp)
        except OSError:
            return
        finally:
            conn.close()

    def close(self):
        self.stopping = True
        for s in (self.udp, self.tcp):
            if s is not None:
                s.close()

    # -- pointing a process at it
    def write_resolv_conf(self, path):
        with open(path, "w") as f:
            f.write("# dnsharness\nnameserver %s\noptions timeout:1 "
                    "attempts:2\n" % self.host)
        return path


def ns_wrap(resolv_conf, hosts=None):
    """argv prefix: runs the rest of argv in a private mount namespace
    (unshare -m; mounts private) with resolv_conf bind-mounted over
    /etc/resolv.conf (and hosts over /etc/hosts when given). Every step
    execs, so the pid is the command's."""
    if hosts is None:
        return ["unshare", "-m", "--", "sh", "-c",
                'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                resolv_conf]
    return ["unshare", "-m", "--", "sh", "-c",
            'mount --bind "$0" /etc/resolv.conf && '
            'mount --bind "$1" /etc/hosts && shift && exec "$@"',
            resolv_conf, hosts]


def ns_check(resolv_conf):
    """(ok, detail): whether ns_wrap works here: the wrapped cat must
    print resolv_conf's text."""
    try:
        with open(resolv_conf) as f:
            want = f.read()
        r = subprocess.run(ns_wrap(resolv_conf) + ["cat", "/etc/resolv.conf"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    out = r.stdout.decode("utf-8", "replace")
    return r.returncode == 0 and out == want, "exit %d: %s" % (
        r.returncode, out.strip()[-400:])
