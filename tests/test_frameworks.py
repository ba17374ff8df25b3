"""Flask and Django apps end to end, with requests."""

import pytest
import requests

pytest.importorskip("flask")
pytest.importorskip("django")


@pytest.fixture(scope="module")
def flask_srv(module_server_factory):
    return module_server_factory("flask_app:app")


@pytest.fixture(scope="module")
def django_srv(module_server_factory):
    return module_server_factory("django_app:application")


# ------------------------------------------------------------------- Flask

def test_flask_index(flask_srv):
    r = requests.get(flask_srv.url + "/", timeout=10)
    assert r.status_code == 200
    assert r.text == "flask index"
    assert r.headers["Server"] == "srv"


def test_flask_json_and_args(flask_srv):
    r = requests.get(flask_srv.url + "/json?a=1&b=x%20y", headers={"User-Agent": "ua-test"},
                     timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"ok": True, "args": {"a": "1", "b": "x y"}, "ua": "ua-test"}


def test_flask_route_params_unicode(flask_srv):
    r = requests.get(flask_srv.url + "/user/J%C3%BCrgen", timeout=10)
    assert r.status_code == 200
    assert r.text == "hello J\u00fcrgen"


def test_flask_form_post(flask_srv):
    r = requests.post(flask_srv.url + "/form", data={"name": "srv", "n": "42", "u": "\u00e9"},
                      timeout=10)
    assert r.status_code == 200
    assert r.json()["form"] == {"name": "srv", "n": "42", "u": "\u00e9"}


def test_flask_multipart_upload(flask_srv):
    blob = bytes(range(256)) * 4000
    r = requests.post(flask_srv.url + "/form", data={"field": "v"},
                      files={"upload": ("f.bin", blob)}, timeout=20)
    assert r.status_code == 200
    assert r.json() == {"form": {"field": "v"}, "files": {"upload": len(blob)}}


def test_flask_json_body(flask_srv):
    s = requests.Session()
    for method in ("POST", "PUT"):
        r = s.request(method, flask_srv.url + "/echo_json", json={"k": [1, 2, 3]}, timeout=10)
        assert r.status_code == 200
        assert r.json() == {"method": method, "data": {"k": [1, 2, 3]}}


def test_flask_chunked_request_body(flask_srv):
    """werkzeug reads a body without Content-Length when wsgi.input_terminated."""
    def gen():
        yield b'{"k": '
        yield b'"chunked"}'
    r = requests.post(flask_srv.url + "/echo_json", data=gen(),
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"method": "POST", "data": {"k": "chunked"}}


def test_flask_streaming(flask_srv):
    r = requests.get(flask_srv.url + "/stream?n=20", stream=True, timeout=10)
    assert r.status_code == 200
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert r.text == "".join("line %d\n" % i for i in range(20))


def test_flask_404_405_and_status(flask_srv):
    assert requests.get(flask_srv.url + "/nope", timeout=10).status_code == 404
    assert requests.get(flask_srv.url + "/form", timeout=10).status_code == 405
    r = requests.get(flask_srv.url + "/status/418", timeout=10)
    assert r.status_code == 418 and r.text == "status 418"


def test_flask_head(flask_srv):
    r = requests.head(flask_srv.url + "/", timeout=10)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Length"] == str(len("flask index"))


def test_flask_exception_500(flask_srv):
    r = requests.get(flask_srv.url + "/boom", timeout=10)
    assert r.status_code == 500
    assert "flask-boom-MARKER" in flask_srv.stderr_text()
    assert requests.get(flask_srv.url + "/", timeout=10).status_code == 200


def test_flask_keepalive_session(flask_srv):
    s = requests.Session()
    for i in range(20):
        r = s.get(flask_srv.url + "/user/%d" % i, timeout=10)
        assert r.text == "hello %d" % i


# ------------------------------------------------------------------ Django

def test_django_index(django_srv):
    r = requests.get(django_srv.url + "/", timeout=10)
    assert r.status_code == 200
    assert r.text == "django index"


def test_django_info(django_srv):
    r = requests.get(django_srv.url + "/info?x=1&y=%C3%A9", headers={"X-Test": "hdr"},
                     timeout=10)
    assert r.status_code == 200
    assert r.json() == {"method": "GET", "path": "/info", "get": {"x": "1", "y": "\u00e9"},
                        "host": "127.0.0.1:%d" % django_srv.port, "scheme": "http",
                        "header": "hdr"}


def test_django_form_post_csrf_exempt(django_srv):
    r = requests.post(django_srv.url + "/form", data={"a": "1", "b": "two words"},
                      timeout=10)
    assert r.status_code == 200
    assert r.json() == {"post": {"a": "1", "b": "two words"}, "files": {},
                        "body_len": len("a=1&b=two+words")}


def test_django_multipart(django_srv):
    blob = b"\x00\xff" * 50000
    r = requests.post(django_srv.url + "/form", data={"a": "1"},
                      files={"f": ("x.bin", blob)}, timeout=20)
    assert r.status_code == 200
    assert r.json()["files"] == {"f": len(blob)}
    assert r.json()["post"] == {"a": "1"}


def test_django_csrf_protected(django_srv):
    r = requests.post(django_srv.url + "/protected", data={"a": "1"}, timeout=10)
    assert r.status_code == 403


def test_django_streaming(django_srv):
    r = requests.get(django_srv.url + "/stream", timeout=10)
    assert r.status_code == 200
    assert r.text == "".join("part %d\n" % i for i in range(5))


def test_django_404_and_method(django_srv):
    assert requests.get(django_srv.url + "/missing", timeout=10).status_code == 404
    assert requests.get(django_srv.url + "/form", timeout=10).status_code == 405


def test_django_append_slash_redirect_or_404(django_srv):
    r = requests.get(django_srv.url + "/info/", allow_redirects=False, timeout=10)
    assert r.status_code in (301, 404)
