"""A short mixed load for tests/valgrind/run.sh: keep-alive GETs, POST
bodies, chunked uploads, pipelined requests, malformed requests and clients
that vanish mid-request.  Exits non-zero if srv stops answering."""
import http.client
import socket
import sys
import time

port = int(sys.argv[1])
deadline = time.monotonic() + 120
while True:   # memcheck makes start-up slow
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("srv did not start under valgrind")
        time.sleep(0.5)


def raw(data, read=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(data)
    out = b""
    if read:
        s.shutdown(socket.SHUT_WR)
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    s.close()
    return out


c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(50):
    c.request("GET", "/x?i=%d" % i, headers={"X-A": "1"})
    assert c.getresponse().read()
    c.request("POST", "/p", body=b"x" * (i * 1000))
    assert c.getresponse().read()
    c.request("POST", "/c", body=iter([b"a" * 100, b"b" * 5000]),
              headers={"Transfer-Encoding": "chunked"})
    assert c.getresponse().read()
c.close()
for i in range(20):
    assert raw(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"400" in raw(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial", read=False)
    raw(b"GET / HTTP/1.1\r\nHo", read=False)


def frame(op, payload, fin=True, mask=True):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | op])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([m | 127]) + n.to_bytes(8, "big")
    if mask:
        key = b"\x01\x02\x03\x04"
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


WS = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
for i in range(10):
    # Echo (text, 70 KB binary, fragments around a ping), then the close handshake.
    out = raw(WS + frame(1, b"hello") + frame(2, b"z" * 70000) + frame(1, b"ab", fin=False)
              + frame(9, b"p") + frame(0, b"cd") + frame(8, b"\x03\xe8"))
    assert b" 101 " in out and b"hello" in out and b"abcd" in out, out[:200]
    # Protocol errors and a client that vanishes mid-frame.
    assert b"\x03\xea" in raw(WS + frame(1, b"x", mask=False))
    assert b"\x03\xef" in raw(WS + frame(1, b"\xff"))
    raw(WS + frame(2, b"y" * 5000)[:3000], read=False)
print("load done")
