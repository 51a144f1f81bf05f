"""The ASGI entry point: ``gunicorn portal.asgi:application -k
uvicorn_worker.UvicornWorker`` (Procfile, Dockerfile).

ASGI so that the feed's live stream (Server-Sent Events, ``feed.live``) can
hold hundreds of open pages per process; ordinary views are synchronous and
run in Django's thread pool, one thread per request, as under WSGI.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.base")

application = get_asgi_application()
