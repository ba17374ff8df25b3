"""Writes WebSocket seeds for the libFuzzer corpus (tests/fuzz/corpus/ws-*.bin):
a handshake followed by frames, valid and broken, so that the fuzzer reaches
ws.c's frame reader from its first runs.  Run: /usr/bin/python3 tests/fuzz/ws_seeds.py"""
import os
import struct

HANDSHAKE = (b"GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
MASK = b"\x11\x22\x33\x44"


def frame(op, payload, fin=True, rsv=0, mask=True):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | op])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        head += MASK
        payload = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + payload


SEEDS = {
    "echo": frame(1, b"hello") + frame(2, b"\x00\xff") + frame(8, b"\x03\xe8"),
    "fragments": frame(1, b"he", fin=False) + frame(9, b"p") + frame(0, b"llo"),
    "lengths": frame(2, b"x" * 126) + frame(2, b"y" * 65536),
    "utf8": frame(1, "ünïcødé".encode()) + frame(1, b"\xed\xa0\x80"),
    "close_reason": frame(8, b"\x0b\xb9bye"),
    "bad_close": frame(8, b"\x03"),
    "unmasked": frame(1, b"hi", mask=False),
    "rsv": frame(1, b"hi", rsv=0x40),
    "ping_pong": frame(9, b"ping") + frame(10, b"pong") + frame(1, b"after"),
    "too_big": frame(2, b"z" * 70000),
    "half": frame(1, b"hello")[:4],
    "wsclose": None,
    "wsreject": None,
}


def write(directory=None):
    d = directory or os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for name, frames in SEEDS.items():
        path = b"/" + name.encode() if frames is None else b"/ws"
        body = frames if frames is not None else frame(1, b"x") + frame(1, b"y")
        with open(os.path.join(d, "ws-%s.bin" % name), "wb") as f:
            f.write(HANDSHAKE % path + body)
    return len(SEEDS)


if __name__ == "__main__":
    print("wrote %d WebSocket seeds" % write())
