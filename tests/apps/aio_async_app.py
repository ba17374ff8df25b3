"""Apps srv must refuse at start-up: coroutine functions are not WSGI apps."""
import srv  # noqa: F401


async def app(environ, start_response):
    start_response("200 OK", [])
    return [b"never"]


class AsyncCallable:
    async def __call__(self, environ, start_response):
        start_response("200 OK", [])
        return [b"never"]


callable_app = AsyncCallable()
