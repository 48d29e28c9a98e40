"""baresip: a real SIP phone for ctid's integration tests (stdlib only).

Baresip (Debian baresip-core 1.0, installed by .ci/setup) runs as a child
of the test with a private config directory (baresip -f DIR): SIP on a free
loopback UDP port, one local account (that never registers unless
registrar is given), G.711 only, no sound card (no audio player, no
source: the phone sends no RTP, only RTCP), and two modules that make it
testable:

  ctrl_tcp  commands and events as netstrings of JSON on a loopback TCP
            port: {"command": "accept", "token": "3"} is answered with
            {"response": true, "ok": true, "data": "...", "token": "3"};
            events look like {"event": true, "class": "call",
            "type": "CALL_INCOMING", "id": "<call-id>", "param": "..."}.
            The commands are the menu module's: accept, hangup, hold,
            resume, listcalls, callstat, quit.
  sndfile   an audio filter that writes what the phone decoded from the
            RTP it received (16-bit PCM, the codec's 8 kHz) to
            snd_path/dump-YYYY-MM-DD-HH-MM-SS-dec.wav. The filter sits
            right after the G.711 decoder: no jitter buffer
            (jitter_buffer_delay 0-0), no PLC module, no resampler in
            between, so each 20 ms packet becomes 160 samples of the file in
            arrival order. While the call is on hold (local direction
            sendonly) baresip drops what arrives; at the hold it closes the
            file and opens a new one (thanks to auenc_format, see the
            config; named by the second it opens in: the test must not hold
            within a second of the answer), which recording() joins.

    phone = Baresip(t, "phone").start()      # t: ctidtest.Test
    ev = phone.wait_event("CALL_INCOMING")
    phone.command("accept")
    phone.wait_event("CALL_ESTABLISHED")
    ...
    phone.wait_event("CALL_CLOSED")
    pcm = phone.recording()                  # bytes, 16-bit LE mono 8 kHz

A phone behind a registrar (tests/integration/kamailio.py) registers as
user@registrar with a password and may answer by itself:

    phone = Baresip(t, "alice", user="alice", registrar=kam.address("udp"),
                    password="s3cret", answermode="auto").start()
    phone.wait_registration()                # "OK", or "ERR" when refused

Baresip listens on the SIP port for UDP and TCP and on port + 1 for TLS,
so the SIP port is chosen with port + 1 free as well. Its output (-v, and
-s: every SIP message) goes to DIR/baresip.log; log_tail() is for failure
reports. close() (registered with t.add_cleanup) sends "quit", then
terminates or kills the process, so a failed check never leaves it behind.
Everything binds and points at 127.0.0.1 only (net_interface 127.0.0.1).
"""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

from ctidtest import HOST, free_port, rtp_range, udp_port_bound


def _tcp_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def module_path():
    """Where baresip's modules are (Debian: /usr/lib/baresip/modules)."""
    for d in ("/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules",
              "/usr/lib/%s-linux-gnu/baresip/modules" % os.uname().machine):
        if os.path.exists(os.path.join(d, "ctrl_tcp.so")):
            return d
    return "/usr/lib/baresip/modules"


def sip_port_pair():
    """A port free for UDP and TCP whose successor is free for TCP (baresip
    binds TLS there)."""
    for _ in range(50):
        p = free_port("udp")
        if p < 65535 and _tcp_free(p + 1):
            return p
    raise RuntimeError("no free port pair for baresip's SIP listener")


class Baresip:
    """baresip as the callee, driven through ctrl_tcp (see the module doc).

    codecs: the account's audio codecs in preference order ("PCMA",
    "PCMU")."""

    def __init__(self, t, name="phone", codecs=("PCMA", "PCMU"), user="phone",
                 registrar=None, password=None, regint=60, answermode="manual",
                 audio_source=None):
        """registrar: None (the account never registers) or "HOST:PORT"
        (e.g. kamailio.address("udp")): the account is user@registrar,
        registers there every regint seconds with password (events
        REGISTER_OK / REGISTER_FAIL). answermode: "manual" (the test
        accepts) or "auto". audio_source: None (no source: the phone sends
        no RTP, nor DTMF, which baresip sends on its source's clock) or a
        WAV file the phone sends as its audio (aufile), so that "sndcode"
        sends RFC 4733 telephone-events."""
        self.t = t
        self.name = name
        self.user = user
        self.dir = t.path(name)
        self.rec_dir = os.path.join(self.dir, "rec")
        os.makedirs(self.rec_dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "baresip.log")
        self.sip_port = sip_port_pair()
        self.ctrl_port = free_port("tcp")
        while self.ctrl_port == self.sip_port + 1:   # baresip's TLS port
            self.ctrl_port = free_port("tcp")
        self.proc = None
        self.sock = None
        self.cond = threading.Condition()
        self._responses = {}    # token -> response dict
        self.event_list = []    # event dicts in arrival order, each with "_at"
        self.closed = False
        self._token = 0
        self._reader = None
        conf = [
            "# generated by tests/integration/baresip.py for %s" % t.name,
            "poll_method epoll",
            "sip_listen %s:%d" % (HOST, self.sip_port),
            "net_interface %s" % HOST,
            "call_local_timeout 120",
            "call_max_calls 4",
            # no sound card: no player and no source (the decode filter
            # still runs; the phone sends no RTP)
            "audio_player none",
            ("audio_source aufile,%s" % audio_source) if audio_source
            else "audio_source none",
            "audio_alert none",
            # sndfile cannot record this encoder format, so it has no
            # encode-side state: baresip 1.0 rebuilds its filters only when
            # both sides have none, and it drops the decode side whenever
            # the stream is not sendrecv (hold). Without this the recording
            # would end at the first hold; with it a new file starts there.
            # Nothing is encoded (no source), so the format is never used.
            # (with an audio_source the encoder works: its default format)
            "" if audio_source else "auenc_format s24_3le",
            "audio_buffer 20-160",
            "jitter_buffer_delay 0-0",
            # outside the kernel's ephemeral range, like ctid's (rtp_range)
            "rtp_ports %d-%d" % rtp_range(100),
            "rtcp_mux no",
            "module_path %s" % module_path(),
            "module g711.so",
            # only with a source: loaded, aufile becomes the source even
            # under "audio_source none"
            "module aufile.so" if audio_source else "",
            "module sndfile.so",
            "module account.so",
            "module menu.so",
            "module_app ctrl_tcp.so",
            "ctrl_tcp_listen %s:%d" % (HOST, self.ctrl_port),
            "snd_path %s" % self.rec_dir,
        ]
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write("\n".join(conf) + "\n")
        # regint=0: never registers; answermode=manual: the test accepts
        if registrar is None:
            acc = "<sip:%s@%s>;regint=0" % (user, HOST)
        else:
            acc = "<sip:%s@%s>;regint=%d" % (user, registrar, regint)
            if password is not None:
                acc += ";auth_pass=%s" % password
        acc += ";answermode=%s;audio_codecs=%s" % (answermode, ",".join(codecs))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(acc + "\n")

    def __repr__(self):
        return "<baresip %s sip %d ctrl %d>" % (self.name, self.sip_port,
                                                self.ctrl_port)

    # -- process
    def start(self, ready_timeout=20.0):
        logf = open(self.log_path, "ab")
        # line-buffered stdout (stdbuf), so the log and its SIP trace are
        # current while baresip runs, not when it exits
        cmd = ["baresip", "-f", self.dir, "-v", "-s"]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", "-eL"] + cmd
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL,
            stdout=logf, stderr=subprocess.STDOUT, cwd=self.dir)
        logf.close()
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("baresip %s exited with %s during start-up:\n%s"
                                   % (self.name, self.proc.returncode,
                                      self.log_tail(30)))
            # (not probing the SIP port by binding it: that could take it
            # from baresip for a moment)
            try:
                self.sock = socket.create_connection((HOST, self.ctrl_port),
                                                     timeout=1.0)
                break
            except OSError:
                time.sleep(0.05)
        if self.sock is None:
            raise RuntimeError("baresip %s: SIP port %d / ctrl_tcp port %d not "
                               "ready after %.0f s:\n%s" % (
                                   self.name, self.sip_port, self.ctrl_port,
                                   ready_timeout, self.log_tail(30)))
        self.sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # a round trip proves the command path (the listener may accept
        # before the module is wired up)
        r = self.command("listcalls", timeout=ready_timeout)
        if r is None or not r.get("ok"):
            raise RuntimeError("baresip %s: listcalls over ctrl_tcp: %r\n%s" % (
                self.name, r, self.log_tail(30)))
        if not udp_port_bound(self.sip_port):
            raise RuntimeError("baresip %s is not listening on UDP %d:\n%s" % (
                self.name, self.sip_port, self.log_tail(30)))
        self.t.log("%s ready: sip %s:%d, ctrl_tcp %d (pid %d)" % (
            self.name, HOST, self.sip_port, self.ctrl_port, self.proc.pid))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def close(self):
        if self.proc is None:
            return
        if self.t.failed:
            self.t.log("---- last lines of %s (%s)" % (self.name, self.log_path))
            print(self.log_tail(80))
        if self.proc.poll() is None and self.sock is not None:
            try:
                self._send({"command": "quit"})
                self.proc.wait(3)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass

    # -- ctrl_tcp: netstrings "<len>:<json>,"
    def _send(self, obj):
        data = json.dumps(obj).encode()
        self.sock.sendall(b"%d:%s," % (len(data), data))

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += data
            while True:
                m = re.match(rb"(\d+):", buf)
                if not m or len(buf) < m.end() + int(m.group(1)) + 1:
                    break
                n = int(m.group(1))
                body = buf[m.end():m.end() + n]
                buf = buf[m.end() + n + 1:]   # past the trailing ","
                try:
                    msg = json.loads(body.decode("utf-8", "replace"))
                except ValueError:
                    continue
                if not isinstance(msg, dict):
                    continue
                with self.cond:
                    if msg.get("response"):
                        self._responses[str(msg.get("token"))] = msg
                    elif msg.get("event"):
                        msg["_at"] = time.time()
                        self.event_list.append(msg)
                        self.t.log("%s event %s %s" % (
                            self.name, msg.get("type"), msg.get("param", "")))
                    self.cond.notify_all()

    def command(self, cmd, params=None, timeout=10.0):
        """Runs a command; returns the response dict ({"ok": bool, "data":
        text}) or None when none came within timeout."""
        with self.cond:
            self._token += 1
            token = str(self._token)
        obj = {"command": cmd, "token": token}
        if params is not None:
            obj["params"] = params
        self.t.log("%s <- %s%s" % (self.name, cmd, (" " + params) if params else ""))
        self._send(obj)
        deadline = time.time() + timeout
        with self.cond:
            while token not in self._responses:
                left = deadline - time.time()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(min(left, 0.2))
            return self._responses.pop(token)

    def registration(self):
        """The account's registration state as reginfo shows it: "OK"
        (registered), "ERR" (refused or failed: the reason is in the log as
        "reg: AOR: CODE REASON"), another word while it is trying, or None
        (no answer, or an account that does not register)."""
        r = self.command("reginfo", timeout=3.0)
        if not r or not r.get("ok"):
            return None
        text = re.sub(r"\x1b\[[0-9;]*m", "", r.get("data", ""))
        m = re.search(r"^> \S+\s+(\S+)", text, re.M)
        return m.group(1) if m else None

    def wait_registration(self, timeout=10.0):
        """Polls registration() until it is "OK" or "ERR"; returns the last
        state seen. (Registration starts before the test connects, so its
        REGISTER_OK / REGISTER_FAIL events may have gone by unseen.)"""
        deadline = time.time() + timeout
        while True:
            state = self.registration()
            if state in ("OK", "ERR") or time.time() >= deadline:
                return state
            time.sleep(0.1)

    def events(self, type=None):
        with self.cond:
            return [e for e in self.event_list if type is None or e.get("type") == type]

    def wait_event(self, type, timeout=30.0, since=0):
        """The first event of this type among events[since:], or None."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for e in self.event_list[since:]:
                    if e.get("type") == type:
                        return e
                left = deadline - time.time()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(min(left, 0.2))

    # -- output
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return re.sub(r"\x1b\[[0-9;]*m", "", text)   # colour codes

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def sip_trace(self):
        """The SIP messages of baresip's trace (-s) in order, as dicts:
        dir ("in": received by the phone, "out": sent), first (the start
        line), cseq (e.g. "2 INVITE"), text (start line and headers), sdp
        (the body's SDP lines, if any)."""
        out = []
        parts = re.split(r"^#\n(?:UDP|TCP|TLS) (\S+) -> (\S+)\n",
                         self.log_text().replace("\r\n", "\n"), flags=re.M)
        for i in range(1, len(parts) - 2, 3):
            dst, msg = parts[i + 1], parts[i + 2]
            head, _, body = msg.partition("\n\n")
            m = re.search(r"^CSeq:\s*(.*?)\s*$", head, re.M | re.I)
            # the body's SDP lines (log lines may follow the message)
            sdp = re.findall(r"^[a-z]=.*$", body.split("\n\n", 1)[0], re.M)
            out.append({"dir": "in" if dst.endswith(":%d" % self.sip_port) else "out",
                        "first": head.split("\n", 1)[0].strip(),
                        "cseq": m.group(1) if m else "", "text": head,
                        "sdp": [ln.strip() for ln in sdp]})
        return out

    def responses(self, method, dir="in"):
        """Status codes of the responses to `method` the phone received
        (dir "in") or sent ("out"), in order."""
        return [int(m["first"].split()[1]) for m in self.sip_trace()
                if m["dir"] == dir and m["first"].startswith("SIP/2.0 ")
                and m["cseq"].split()[-1:] == [method]]

    def answers(self, method, dir="in"):
        """The SDP lines of each 2xx response to `method` received ("in")
        or sent ("out"), in order."""
        return [m["sdp"] for m in self.sip_trace()
                if m["dir"] == dir and m["first"].startswith("SIP/2.0 2")
                and m["cseq"].split()[-1:] == [method]]

    def requests(self, method, dir="in"):
        """Start lines of the `method` requests received ("in") or sent."""
        return [m["first"] for m in self.sip_trace()
                if m["dir"] == dir and m["first"].startswith(method + " ")]

    def recordings(self, kind="dec"):
        """Paths of sndfile's files (kind "dec": what the phone heard)."""
        return sorted(os.path.join(self.rec_dir, f) for f in os.listdir(self.rec_dir)
                      if f.endswith("-%s.wav" % kind))

    def recording(self, kind="dec"):
        """(rate, channels, PCM bytes) of what was recorded: sndfile opens
        one file per audio stream (per call); should baresip ever reopen it,
        the files are joined in time order. Raises when there is none or the
        formats differ."""
        files = self.recordings(kind)
        if not files:
            raise RuntimeError("%s: no %s recording in %s" % (
                self.name, kind, self.rec_dir))
        fmts, pcm = set(), b""
        for f in files:
            rate, ch, data = read_wav_pcm(f)
            fmts.add((rate, ch))
            pcm += data
        if len(fmts) != 1:
            raise RuntimeError("%s: recordings of different formats: %s" % (
                self.name, sorted(fmts)))
        rate, ch = fmts.pop()
        return rate, ch, pcm


def read_wav_pcm(path):
    """(rate, channels, data bytes) of a 16-bit PCM WAV file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError("%s is not a WAV file" % path)
    pos, rate, ch = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if cid == b"fmt ":
            fmt, ch, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8:pos + 24])
            if fmt != 1 or bits != 16:
                raise RuntimeError("%s: format %d, %d bits; want 16-bit PCM" % (
                    path, fmt, bits))
        elif cid == b"data":
            end = pos + 8 + size
            if size == 0 or end > len(data):   # header not finalised
                end = len(data)
            body = data[pos + 8:end]
            return rate, ch, body[:len(body) & ~1]
        pos += 8 + size + (size & 1)
    raise RuntimeError("%s has no data chunk" % path)
