"""A small RFC 6455 client over a raw socket (stdlib only) for the srv tests.

It builds any frame, valid or not (``frame()``: unmasked, RSV bits, reserved
opcodes, lying length fields), and checks what the server sends strictly:
server frames must be unmasked, have no RSV bits and a known opcode, use the
minimal length encoding, and control frames must be final and at most 125
bytes; a text message must be valid UTF-8.  A violation raises
``ProtocolViolation`` (an AssertionError, so a test fails with the reason).

    c = WSClient.connect("127.0.0.1", port, "/echo")
    c.send_text("hi")
    assert c.recv_message().data == "hi"
    assert c.close() == 1000           # close handshake; returns the server's code

``Reader`` parses a byte stream into frames and messages without a socket,
for selector-driven clients.
"""
import base64
import contextlib
import hashlib
import os
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
KNOWN_OPCODES = {OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG}
OPNAMES = {OP_CONT: "cont", OP_TEXT: "text", OP_BINARY: "binary",
           OP_CLOSE: "close", OP_PING: "ping", OP_PONG: "pong"}


class ProtocolViolation(AssertionError):
    """The server sent something RFC 6455 forbids."""


class ConnectionClosed(Exception):
    """EOF (or a reset) before a complete frame arrived."""


class HandshakeFailed(AssertionError):
    def __init__(self, msg, response=None):
        super().__init__(msg)
        self.response = response


# ---------------------------------------------------------------- encoding

def make_key(nbytes=16):
    return base64.b64encode(os.urandom(nbytes)).decode("ascii")


def accept_for(key):
    return base64.b64encode(
        hashlib.sha1((key + GUID).encode("latin-1")).digest()).decode("ascii")


def handshake_request(path="/", host="127.0.0.1", key=None, version="13",
                      protocols=None, origin=None, headers=(),
                      http_version="HTTP/1.1", upgrade="websocket",
                      connection="Upgrade", method="GET"):
    """Raw upgrade request bytes.  A None value omits that header."""
    lines = ["%s %s %s" % (method, path, http_version)]
    if host is not None:
        lines.append("Host: %s" % host)
    if upgrade is not None:
        lines.append("Upgrade: %s" % upgrade)
    if connection is not None:
        lines.append("Connection: %s" % connection)
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    if protocols:
        lines.append("Sec-WebSocket-Protocol: %s" % ", ".join(protocols))
    if origin is not None:
        lines.append("Origin: %s" % origin)
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def xor_mask(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None,
          length=None):
    """One frame as bytes.  ``rsv`` is the 3-bit RSV field (4 = RSV1,
    2 = RSV2, 1 = RSV3).  ``length`` overrides the length field (the payload
    is still what is given: use it to announce more than is sent).  A str
    payload is UTF-8 encoded."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    payload = bytes(payload)
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        return head + key + xor_mask(payload, key)
    return head + payload


def close_payload(code=None, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    if code is None:
        return reason
    return struct.pack("!H", code) + reason


def text(s, **kw):
    return frame(OP_TEXT, s, **kw)


def binary(b, **kw):
    return frame(OP_BINARY, b, **kw)


def close_frame(code=None, reason=b"", **kw):
    return frame(OP_CLOSE, close_payload(code, reason), **kw)


# ---------------------------------------------------------------- decoding

class Frame:
    __slots__ = ("fin", "rsv", "opcode", "masked", "payload", "length_bytes")

    def __init__(self, fin, rsv, opcode, masked, payload, length_bytes):
        self.fin, self.rsv, self.opcode = fin, rsv, opcode
        self.masked, self.payload, self.length_bytes = masked, payload, length_bytes

    @property
    def close_code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self):
        return self.payload[2:]

    def __repr__(self):
        p = self.payload if len(self.payload) <= 40 else (
            self.payload[:40] + b"...(%d bytes)" % len(self.payload))
        return "<Frame %s fin=%d rsv=%d%s %r>" % (
            OPNAMES.get(self.opcode, "op%d" % self.opcode), self.fin, self.rsv,
            " MASKED" if self.masked else "", p)


class Message:
    """kind: 'text' (data is str), 'binary' (data is bytes) or 'close'
    (code is None for an empty close frame, reason is bytes)."""
    __slots__ = ("kind", "data", "code", "reason", "frames")

    def __init__(self, kind, data=None, code=None, reason=b"", frames=1):
        self.kind, self.data, self.code, self.reason, self.frames = kind, data, code, reason, frames

    def __repr__(self):
        if self.kind == "close":
            return "<Message close code=%r reason=%r>" % (self.code, self.reason)
        d = self.data
        if len(d) > 60:
            d = d[:60]
            return "<Message %s %r...(%d)>" % (self.kind, d, len(self.data))
        return "<Message %s %r>" % (self.kind, d)


class Reader:
    """Incremental parser of server frames, with strict checks.  feed()
    bytes, then next_frame() / next_message() until they return None."""

    def __init__(self, strict=True):
        self.strict = strict
        self.buf = bytearray()
        self.controls = []          # ping/pong frames seen by next_message()
        self._op = None             # opcode of the message being assembled
        self._parts = []
        self._nframes = 0

    def feed(self, data):
        self.buf += data

    def _violation(self, msg):
        if self.strict:
            raise ProtocolViolation(msg)

    def next_frame(self):
        buf = self.buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF
        masked, n = bool(b1 & 0x80), b1 & 0x7F
        pos = 2
        length_bytes = 0
        if n == 126:
            if len(buf) < 4:
                return None
            n = struct.unpack_from("!H", buf, 2)[0]
            pos, length_bytes = 4, 2
            if n < 126:
                self._violation("non-minimal 16-bit length %d" % n)
        elif n == 127:
            if len(buf) < 10:
                return None
            n = struct.unpack_from("!Q", buf, 2)[0]
            pos, length_bytes = 10, 8
            if n < 65536:
                self._violation("non-minimal 64-bit length %d" % n)
            if n >> 63:
                self._violation("64-bit length with the top bit set")
        key = None
        if masked:
            if len(buf) < pos + 4:
                return None
            key = bytes(buf[pos:pos + 4])
            pos += 4
        if len(buf) < pos + n:
            return None
        payload = bytes(buf[pos:pos + n])
        del buf[:pos + n]
        if key is not None:
            payload = xor_mask(payload, key)
        f = Frame(fin, rsv, opcode, masked, payload, length_bytes)
        if masked:
            self._violation("server frame is masked: %r" % f)
        if rsv:
            self._violation("server frame has RSV bits: %r" % f)
        if opcode not in KNOWN_OPCODES:
            self._violation("server frame has reserved opcode: %r" % f)
        if opcode >= 8 and (not fin or n > 125):
            self._violation("bad server control frame: %r" % f)
        return f

    def add_frame(self, f):
        """Feed one frame to the message assembler; returns a Message when
        one is complete (control frames other than close are recorded in
        self.controls and return None)."""
        if f.opcode == OP_CLOSE:
            if len(f.payload) == 1:
                self._violation("server close frame with a 1-byte payload")
            return Message("close", code=f.close_code, reason=f.close_reason)
        if f.opcode in (OP_PING, OP_PONG):
            self.controls.append(f)
            return None
        if f.opcode == OP_CONT:
            if self._op is None:
                self._violation("server continuation frame with no message started")
                return None
        else:
            if self._op is not None:
                self._violation("server started a new message inside a fragmented one")
            self._op, self._parts, self._nframes = f.opcode, [], 0
        self._parts.append(f.payload)
        self._nframes += 1
        if not f.fin:
            return None
        data = b"".join(self._parts)
        op, nframes = self._op, self._nframes
        self._op, self._parts = None, []
        if op == OP_TEXT:
            try:
                return Message("text", data.decode("utf-8"), frames=nframes)
            except UnicodeDecodeError as e:
                raise ProtocolViolation("server text message is not UTF-8: %s" % e)
        return Message("binary", data, frames=nframes)

    def next_message(self):
        while True:
            f = self.next_frame()
            if f is None:
                return None
            m = self.add_frame(f)
            if m is not None:
                return m


# ---------------------------------------------------------------- HTTP head

class HttpResponse:
    def __init__(self, raw_head):
        self.raw_head = raw_head
        lines = raw_head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HandshakeFailed("bad status line %r" % lines[0])
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = []
        for line in lines[1:]:
            if not line:
                continue
            k, sep, v = line.partition(":")
            if not sep:
                raise HandshakeFailed("bad header line %r" % line)
            self.headers.append((k.strip(), v.strip()))
        self.body = b""

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<HttpResponse %d %s %r>" % (self.status, self.reason, self.headers)


# ---------------------------------------------------------------- client

class WSClient:
    def __init__(self, sock, timeout=10.0, strict=True):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.reader = Reader(strict=strict)
        self.response = None
        self.eof = False
        self.key = None

    # -- connecting -----------------------------------------------------------
    @classmethod
    def open(cls, host, port, timeout=10.0, strict=True, rcvbuf=None):
        """A connected socket, no handshake.  rcvbuf: SO_RCVBUF set before
        connecting (so that the TCP window stays small)."""
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except BaseException:
            s.close()
            raise
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(s, timeout=timeout, strict=strict)

    @classmethod
    def connect(cls, host, port, path="/", timeout=10.0, key=None, protocols=None,
                origin=None, headers=(), first_data=b"", strict=True, rcvbuf=None,
                **req_kw):
        """Open a connection and complete a valid handshake (101 checked:
        status, Upgrade, Connection, Sec-WebSocket-Accept).  first_data is
        sent in the same write as the request."""
        c = cls.open(host, port, timeout=timeout, strict=strict, rcvbuf=rcvbuf)
        try:
            c.key = key or make_key()
            req = handshake_request(path, host="%s:%d" % (host, port), key=c.key,
                                    protocols=protocols, origin=origin,
                                    headers=headers, **req_kw)
            c.send_raw(req + first_data)
            r = c.read_http_head()
            c.check_101(r)
        except BaseException:
            c.abort()
            raise
        return c

    def read_http_head(self):
        """Read a response head; whatever follows it stays in the frame
        buffer (or is the body, see read_http_body)."""
        buf = self.reader.buf
        while True:
            i = buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(buf[:i])
                del buf[:i + 4]
                self.response = HttpResponse(head)
                return self.response
            if not self._fill():
                raise ConnectionClosed("EOF before the response head was complete; got %r"
                                       % bytes(buf[:300]))

    def read_http_body(self):
        """The body of a non-101 response (Content-Length or until EOF)."""
        r = self.response
        cl = r.header("Content-Length")
        buf = self.reader.buf
        if cl is not None:
            n = int(cl)
            while len(buf) < n and self._fill():
                pass
            r.body = bytes(buf[:n])
            del buf[:n]
        else:
            while self._fill():
                pass
            r.body = bytes(buf)
            del buf[:]
        return r.body

    def check_101(self, r):
        problems = []
        if r.status != 101:
            problems.append("status %d, not 101" % r.status)
        else:
            if (r.header("Upgrade") or "").lower() != "websocket":
                problems.append("Upgrade: %r" % r.header("Upgrade"))
            conn = [t.strip().lower() for t in (r.header("Connection") or "").split(",")]
            if "upgrade" not in conn:
                problems.append("Connection: %r" % r.header("Connection"))
            if r.header("Sec-WebSocket-Accept") != accept_for(self.key):
                problems.append("Sec-WebSocket-Accept %r, expected %r"
                                % (r.header("Sec-WebSocket-Accept"), accept_for(self.key)))
        if problems:
            raise HandshakeFailed("bad handshake response (%s): %r %r"
                                  % ("; ".join(problems), r, bytes(self.reader.buf[:200])), r)

    # -- sending --------------------------------------------------------------
    def send_raw(self, data):
        self.sock.sendall(data)

    def try_send_raw(self, data):
        """sendall that tolerates the server closing first; True if all went."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            return False

    def send_frame(self, opcode, payload=b"", **kw):
        self.send_raw(frame(opcode, payload, **kw))

    def send_text(self, s, **kw):
        self.send_frame(OP_TEXT, s, **kw)

    def send_binary(self, b, **kw):
        self.send_frame(OP_BINARY, b, **kw)

    def send_fragments(self, opcode, parts):
        """One message split into len(parts) frames."""
        out = []
        for i, p in enumerate(parts):
            out.append(frame(opcode if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1)))
        self.send_raw(b"".join(out))

    def ping(self, payload=b""):
        self.send_frame(OP_PING, payload)

    def pong(self, payload=b""):
        self.send_frame(OP_PONG, payload)

    def send_close(self, code=1000, reason=b""):
        self.send_raw(close_frame(code, reason))

    # -- receiving ------------------------------------------------------------
    def _fill(self, timeout=None):
        if self.eof:
            return False
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(262144)
        except (ConnectionResetError, ConnectionAbortedError):
            d = b""
        finally:
            if timeout is not None:
                self.sock.settimeout(self.timeout)
        if not d:
            self.eof = True
            return False
        self.reader.feed(d)
        return True

    def recv_frame(self, timeout=None):
        """The next frame; ConnectionClosed on EOF, socket.timeout on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            f = self.reader.next_frame()
            if f is not None:
                return f
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            if not self._fill(left):
                raise ConnectionClosed("EOF while waiting for a frame (%d bytes buffered: %r)"
                                       % (len(self.reader.buf), bytes(self.reader.buf[:50])))

    def recv_message(self, timeout=None):
        """The next data message or close (ping/pong frames are collected in
        self.reader.controls)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            m = self.reader.add_frame(self.recv_frame(left))
            if m is not None:
                return m

    def recv_data(self, timeout=None):
        """The next data message's payload (str or bytes); AssertionError if
        the server sent a close instead."""
        m = self.recv_message(timeout)
        if m.kind == "close":
            raise AssertionError("expected a data message, got %r" % m)
        return m.data

    def expect_close(self, timeout=None):
        """Read until a close frame; returns its code (None when empty).
        Data messages before it are an error; ping/pong are ignored."""
        m = self.recv_message(timeout)
        if m.kind != "close":
            raise AssertionError("expected a close frame, got %r" % m)
        return m.code

    def wait_eof(self, timeout=5.0):
        """True if the server closes the TCP connection (EOF or reset)
        within timeout; False if it stays open.  Bytes that arrive are kept."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except socket.timeout:
                return False
        return True

    def close(self, code=1000, reason=b"", timeout=None):
        """Client-initiated close handshake: send close, read until the
        server's close frame, check the server then closes TCP.  Returns the
        server's close code."""
        self.send_close(code, reason)
        got = self.expect_close(timeout)
        self.assert_eof(timeout or 5.0)
        self.abort()
        return got

    def assert_eof(self, timeout=5.0):
        """The server closes TCP within timeout and sends nothing more."""
        assert self.wait_eof(timeout), "server kept the TCP connection open"
        assert not self.reader.buf, "server sent bytes after its close frame: %r" % (
            bytes(self.reader.buf[:100]),)

    def abort(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def reset(self):
        """Close with RST (SO_LINGER 0)."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    def fileno(self):
        return self.sock.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.abort()

