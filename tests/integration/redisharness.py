"""redisharness: a real redis-server for integration tests, and a minimal
RESP2 client to read and write its streams (test_bus, test_bus_requests,
test_cluster). Stdlib only."""
import os
import socket
import subprocess
import time

from ctidtest import free_port


class Resp:
    """A minimal RESP2 client: enough for XRANGE, HGET and AUTH."""

    def __init__(self, port, password=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.s.makefile("rb")
        if password:
            self.cmd("AUTH", password)

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._read()

    def _read(self):
        line = self.f.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError("bad RESP line %r" % line)

    def close(self):
        self.s.close()


class Redis:
    """redis-server in the foreground on a loopback port of ours."""

    def __init__(self, t, name, extra=()):
        self.t = t
        self.port = free_port("tcp")
        self.dir = t.path(name)
        os.makedirs(self.dir, exist_ok=True)
        self.extra = list(extra)
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--dir", self.dir] + self.extra,
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.dir)
        log.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server not listening on %d" % self.port)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill()


def entries(r, key="ctid:events"):
    """[(node, seq, method, params)] of the stream, in stream order."""
    out = []
    for _id, fields in r.cmd("XRANGE", key, "-", "+"):
        f = dict(zip(fields[::2], fields[1::2]))
        out.append((f.get("node"), int(f.get("seq", -1)), f.get("method"),
                    f.get("params")))
    return out


def wait_until(fn, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()
