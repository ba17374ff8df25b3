"""Running behind proxies: X-Forwarded-For / X-Forwarded-Proto and RFC 7239
Forwarded from trusted peers only (--forwarded-allow-ips; unix peers always
trusted), and --proxy-protocol (PROXY v1 and v2, UNKNOWN/LOCAL, invalid
preambles never reach the app)."""

import os
import socket
import struct
import tempfile

import pytest

from conftest import RawConn, raw_request
from produtil import PROD_APP, raw_info, read_text


def info_with(server, headers):
    with server.connect() as c:
        return raw_info(c, headers=headers)


@pytest.fixture(scope="module")
def trusted(module_server_factory):
    """Default --forwarded-allow-ips (127.0.0.1,::1): we are trusted."""
    return module_server_factory(PROD_APP)


@pytest.fixture(scope="module")
def untrusted(module_server_factory):
    return module_server_factory(PROD_APP, "--forwarded-allow-ips", "10.9.9.9")


# ---------------------------------------------------------------- X-Forwarded-*

def test_no_headers_socket_address(trusted):
    with trusted.connect() as c:
        info = raw_info(c)
        port = c.sock.getsockname()[1]
    assert info["remote_addr"] == "127.0.0.1"
    assert str(info["remote_port"]) == str(port)
    assert info["scheme"] == "http"


def test_xff_single(trusted):
    info = info_with(trusted, [("X-Forwarded-For", "203.0.113.7")])
    assert info["remote_addr"] == "203.0.113.7"


def test_xff_rightmost_wins(trusted):
    info = info_with(trusted, [("X-Forwarded-For", "203.0.113.7, 198.51.100.2")])
    assert info["remote_addr"] == "198.51.100.2"
    info = info_with(trusted, [("X-Forwarded-For", "203.0.113.7,198.51.100.3")])
    assert info["remote_addr"] == "198.51.100.3"


def test_xff_repeated_header_lines(trusted):
    info = info_with(trusted, [("X-Forwarded-For", "203.0.113.7"),
                               ("X-Forwarded-For", "198.51.100.9")])
    assert info["remote_addr"] == "198.51.100.9"


def test_xff_ipv6(trusted):
    info = info_with(trusted, [("X-Forwarded-For", "203.0.113.7, 2001:db8::5")])
    assert info["remote_addr"] == "2001:db8::5"


def test_xfp_https(trusted):
    info = info_with(trusted, [("X-Forwarded-Proto", "https")])
    assert info["scheme"] == "https"
    assert info["remote_addr"] == "127.0.0.1"
    info = info_with(trusted, [("X-Forwarded-Proto", "http")])
    assert info["scheme"] == "http"


def test_xff_and_xfp_together(trusted):
    info = info_with(trusted, [("X-Forwarded-For", "192.0.2.1"),
                               ("X-Forwarded-Proto", "https")])
    assert (info["remote_addr"], info["scheme"]) == ("192.0.2.1", "https")


def test_keepalive_requests_do_not_leak_forwarded_state(trusted):
    with trusted.connect() as c:
        a = raw_info(c, headers=[("X-Forwarded-For", "192.0.2.77"),
                                 ("X-Forwarded-Proto", "https")])
        b = raw_info(c)
    assert (a["remote_addr"], a["scheme"]) == ("192.0.2.77", "https")
    assert (b["remote_addr"], b["scheme"]) == ("127.0.0.1", "http")


# ---------------------------------------------------------------- Forwarded

def test_forwarded_for_and_proto(trusted):
    info = info_with(trusted, [("Forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43")])
    assert info["remote_addr"] == "192.0.2.60"
    assert info["scheme"] == "https"


def test_forwarded_last_element_quoted_ipv6_with_port(trusted):
    info = info_with(trusted, [
        ("Forwarded", 'for=198.51.100.1;proto=http, for="[2001:db8:cafe::17]:4711";proto=https')])
    assert info["remote_addr"] == "2001:db8:cafe::17"
    assert info["scheme"] == "https"


def test_forwarded_quoted_ipv4_with_port(trusted):
    info = info_with(trusted, [("Forwarded", 'for="192.0.2.43:47011"')])
    assert info["remote_addr"] == "192.0.2.43"
    assert info["scheme"] == "http"


def test_forwarded_parameter_names_case_insensitive(trusted):
    info = info_with(trusted, [("Forwarded", "For=192.0.2.9;Proto=https")])
    assert (info["remote_addr"], info["scheme"]) == ("192.0.2.9", "https")


def test_xff_takes_precedence_over_forwarded(trusted):
    info = info_with(trusted, [("Forwarded", "for=192.0.2.60"),
                               ("X-Forwarded-For", "203.0.113.7")])
    assert info["remote_addr"] == "203.0.113.7"


# ---------------------------------------------------------------- trust

@pytest.mark.parametrize("headers", [
    [("X-Forwarded-For", "203.0.113.7")],
    [("X-Forwarded-Proto", "https")],
    [("Forwarded", "for=192.0.2.60;proto=https")],
    [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"),
     ("Forwarded", "for=192.0.2.60;proto=https")],
], ids=["xff", "xfp", "forwarded", "all"])
def test_untrusted_peer_headers_ignored(untrusted, headers):
    with untrusted.connect() as c:
        info = raw_info(c, headers=headers)
        port = c.sock.getsockname()[1]
    assert info["remote_addr"] == "127.0.0.1"
    assert str(info["remote_port"]) == str(port)
    assert info["scheme"] == "http"


def test_allow_star(server_factory):
    s = server_factory(PROD_APP, "--forwarded-allow-ips", "*")
    info = info_with(s, [("X-Forwarded-For", "203.0.113.8"), ("X-Forwarded-Proto", "https")])
    assert (info["remote_addr"], info["scheme"]) == ("203.0.113.8", "https")


def test_allow_list_with_several_entries(server_factory):
    s = server_factory(PROD_APP, "--forwarded-allow-ips", "10.0.0.1,127.0.0.1")
    info = info_with(s, [("X-Forwarded-For", "203.0.113.9")])
    assert info["remote_addr"] == "203.0.113.9"


def test_unix_peer_always_trusted(server_factory):
    d = tempfile.mkdtemp(prefix="srvp-", dir="/tmp")
    path = os.path.join(d, "p.sock")
    try:
        server_factory(PROD_APP, "--forwarded-allow-ips", "10.9.9.9",
                       binds=["unix:" + path])
        with RawConn.unix(path) as c:
            info = raw_info(c, headers=[("X-Forwarded-For", "203.0.113.10"),
                                        ("X-Forwarded-Proto", "https")])
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)
    assert info["remote_addr"] == "203.0.113.10"
    assert info["scheme"] == "https"


# ---------------------------------------------------------------- PROXY protocol

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(cmd=0x1, fam=0x11, addr=b"", tlvs=b""):
    body = addr + tlvs
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body)) + body


def v2_inet(src, dst, sport, dport):
    return (socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
            + struct.pack("!HH", sport, dport))


def v2_inet6(src, dst, sport, dport):
    return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", sport, dport))


@pytest.fixture(scope="module")
def pp(module_server_factory):
    # Server.wait_ready only connects (sends nothing), which is fine here.
    return module_server_factory(PROD_APP, "--proxy-protocol")


def pp_info(server, preamble, path="/info", n=1, bytewise=False):
    with server.connect() as c:
        data = preamble + raw_request("GET", path)
        if bytewise:
            c.send_bytewise(data, delay=0.0005)
        else:
            c.send(data)
        r = c.read_response()
        assert r.status == 200, (r, r.body[:200])
        out = [r.json()]
        for _ in range(n - 1):
            out.append(raw_info(c, path=path))
        return out if n > 1 else out[0]


def test_proxy_v1_tcp4(pp):
    info = pp_info(pp, b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n")
    assert info["remote_addr"] == "1.2.3.4"
    assert str(info["remote_port"]) == "1111"


def test_proxy_v1_tcp6(pp):
    info = pp_info(pp, b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n")
    assert info["remote_addr"] == "2001:db8::1"
    assert str(info["remote_port"]) == "40000"


def test_proxy_v1_unknown_keeps_socket_address(pp):
    info = pp_info(pp, b"PROXY UNKNOWN\r\n")
    assert info["remote_addr"] == "127.0.0.1"
    info = pp_info(pp, b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n")
    assert info["remote_addr"] == "127.0.0.1"


def test_proxy_v1_sent_bytewise(pp):
    info = pp_info(pp, b"PROXY TCP4 10.1.2.3 10.3.2.1 4321 80\r\n", bytewise=True)
    assert info["remote_addr"] == "10.1.2.3"
    assert str(info["remote_port"]) == "4321"


def test_proxy_header_applies_to_every_request_on_the_connection(pp):
    infos = pp_info(pp, b"PROXY TCP4 1.2.3.5 5.6.7.8 1112 2222\r\n", n=3)
    assert [i["remote_addr"] for i in infos] == ["1.2.3.5"] * 3
    assert [str(i["remote_port"]) for i in infos] == ["1112"] * 3


def test_proxy_v2_tcp4(pp):
    info = pp_info(pp, v2_header(addr=v2_inet("9.8.7.6", "6.7.8.9", 5555, 443)))
    assert info["remote_addr"] == "9.8.7.6"
    assert str(info["remote_port"]) == "5555"


def test_proxy_v2_tcp6(pp):
    info = pp_info(pp, v2_header(fam=0x21, addr=v2_inet6("2001:db8::7", "2001:db8::8",
                                                         6000, 443)))
    assert info["remote_addr"] == "2001:db8::7"
    assert str(info["remote_port"]) == "6000"


def test_proxy_v2_with_tlvs(pp):
    tlvs = bytes([0x04]) + struct.pack("!H", 4) + b"\x00" * 4          # NOOP
    tlvs += bytes([0x02]) + struct.pack("!H", 11) + b"example.org"     # AUTHORITY
    info = pp_info(pp, v2_header(addr=v2_inet("9.8.7.5", "6.7.8.9", 5556, 443), tlvs=tlvs))
    assert info["remote_addr"] == "9.8.7.5"
    assert str(info["remote_port"]) == "5556"
    assert info["path"] == "/info"


def test_proxy_v2_sent_bytewise(pp):
    info = pp_info(pp, v2_header(addr=v2_inet("9.8.7.4", "6.7.8.9", 5557, 443)),
                   bytewise=True)
    assert info["remote_addr"] == "9.8.7.4"


def test_proxy_v2_local_keeps_socket_address(pp):
    info = pp_info(pp, v2_header(cmd=0x0, fam=0x00))
    assert info["remote_addr"] == "127.0.0.1"
    # LOCAL with an address block (health checks may send one): still ignored
    info = pp_info(pp, v2_header(cmd=0x0, fam=0x11,
                                 addr=v2_inet("9.9.9.9", "8.8.8.8", 1, 2)))
    assert info["remote_addr"] == "127.0.0.1"


@pytest.mark.parametrize("preamble", [
    b"",                                                    # no header at all
    b"PROXY TCP4 1.2.3.4\r\n",                              # truncated
    b"PROXY FOO 1.2.3.4 5.6.7.8 1 2\r\n",                   # bad protocol
    b"PROXY TCP4 999.2.3.4 5.6.7.8 1111 2222\r\n",          # bad address
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1111" + b" " * 120 + b"\r\n",  # too long
    V2_SIG + bytes([0x11, 0x11]) + struct.pack("!H", 12) + v2_inet("1.1.1.1", "2.2.2.2", 1, 2),
    V2_SIG + bytes([0x2F, 0x11]) + struct.pack("!H", 12) + v2_inet("1.1.1.1", "2.2.2.2", 1, 2),
], ids=["none", "truncated", "bad-proto", "bad-addr", "too-long", "v2-bad-version",
        "v2-bad-command"])
def test_proxy_invalid_preamble_never_reaches_app(pp, preamble):
    marker = "/never-seen-%s" % os.urandom(4).hex()
    with pp.connect() as c:
        c.try_send(preamble + raw_request("GET", marker))
        c.settimeout(8)
        data = b""
        try:
            while True:
                d = c.sock.recv(65536)
                if not d:
                    break
                data += d
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail("connection without a valid PROXY header left open; got %r" % data[:200])
    if data:
        assert data.startswith(b"HTTP/1.1 400") or data.startswith(b"HTTP/1.0 400"), data[:200]
    seen = read_text(pp.state_path("prod_seen.log")).split()
    assert marker not in seen, "the app served a request without a valid PROXY header"
    assert pp.alive()


def test_proxy_protocol_server_still_serves_after_garbage(pp):
    with pp.connect() as c:
        c.try_send(b"\x00\xff garbage \r\n\r\n")
    assert pp_info(pp, b"PROXY TCP4 1.2.3.6 5.6.7.8 1113 2222\r\n")["remote_addr"] == "1.2.3.6"
