"""The web server's entry point: ``gunicorn portal.asgi:application
--worker-class uvicorn_worker.UvicornWorker`` (Procfile, Dockerfile).

One process serves two kinds of request:

* the feed's live streams (``/feed/live/``, Server-Sent Events) through
  Django's ASGI handler: hundreds of open pages per process, each an async
  view waiting on the process's one queue of announcements (``feed.live``);
* every other request through Django's WSGI handler, in a pool of
  ``WEB_THREADS`` threads (a2wsgi), exactly as gunicorn's threaded workers
  ran it: each thread keeps its database connection (``CONN_MAX_AGE``), and
  a registration costs what it did before. (Django's ASGI handler would run
  each synchronous request in a thread of its own, hopping threads between
  middleware, and open a database connection per request.)
"""

import os

from a2wsgi import WSGIMiddleware
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.base")
# Pages served by this process may open a live stream (LIVE_STREAM_SERVED).
os.environ["LIVE_STREAM_SERVED"] = "1"

_asgi = get_asgi_application()
_wsgi = WSGIMiddleware(
    # Django's handler returns its response, an iterable of bytes, which its
    # type hints do not say.
    get_wsgi_application(),  # type: ignore[arg-type]
    workers=int(os.environ.get("WEB_THREADS", "12")),
)


def _live_paths() -> frozenset[str]:
    from django.urls import reverse

    return frozenset({reverse("feed:live")})


LIVE_PATHS = _live_paths()


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] not in LIVE_PATHS:
        await _wsgi(scope, receive, send)
    else:
        await _asgi(scope, receive, send)
