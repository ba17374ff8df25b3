"""B4: a 1 MiB response produced by a generator in 64 KiB chunks."""

CHUNK = b"x" * 65536
COUNT = 16  # 16 x 64 KiB = 1 MiB


def _chunks():
    for _ in range(COUNT):
        yield CHUNK


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(CHUNK) * COUNT))])
    return _chunks()
