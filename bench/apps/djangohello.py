"""B10: Django hello world (a single-file project: one view, one URL)."""
import os

import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()


def hello(request):
    r = HttpResponse(b"Hello, World!\n", content_type="text/plain")
    r["Content-Length"] = "14"   # as Django's CommonMiddleware would
    return r


urlpatterns = [path("", hello)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

app = get_wsgi_application()
