"""A minimal Django project in one module (settings configured in code)."""
import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="srv-tests-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


def index(request):
    return HttpResponse("django index")


def info(request):
    return JsonResponse({
        "method": request.method,
        "path": request.path,
        "get": request.GET.dict(),
        "host": request.get_host(),
        "scheme": request.scheme,
        "header": request.headers.get("X-Test", ""),
    })


@csrf_exempt
def form(request):
    if request.method != "POST":
        return HttpResponse("POST only", status=405)
    return JsonResponse({"post": request.POST.dict(),
                         "files": {k: f.size for k, f in request.FILES.items()},
                         "body_len": len(request.body) if not request.FILES else -1})


def protected(request):
    # not csrf-exempt: a POST without a token must be rejected with 403
    return HttpResponse("protected ok")


def stream(request):
    return StreamingHttpResponse(("part %d\n" % i for i in range(5)),
                                 content_type="text/plain")


urlpatterns = [
    path("", index),
    path("info", info),
    path("form", form),
    path("protected", protected),
    path("stream", stream),
]

application = get_wsgi_application()
