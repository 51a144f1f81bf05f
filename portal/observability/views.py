"""Probes and the web's metrics endpoint.

* ``/healthz``: the process answers (liveness); touches nothing else.
* ``/readyz``: the database answers, no migration is unapplied, and the
  broker accepts a connection (readiness); ``503`` with what failed.
* ``/metrics``: Prometheus text; ``Authorization: Bearer <METRICS_TOKEN>``,
  or, with no token set, from the loopback address only.
"""

import socket
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from .collectors import EventLogCollector
from .exposition import metrics_text, token_valid

LOOPBACK = {"127.0.0.1", "::1"}


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = {
        "database": _database(),
        "migrations": _migrations(),
        "broker": _broker(),
    }
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except DatabaseError as exc:
        return f"unreachable: {exc}".strip()


def _migrations() -> str:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return f"unknown: {exc}".strip()
    return "ok" if not plan else f"{len(plan)} unapplied"


def _broker() -> str:
    """Can a connection be opened? (A TCP connection to RabbitMQ; the
    embedded broker is a folder.)"""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("amqp", "pyamqp")):
        return "ok"
    parts = urlsplit(url)
    started = time.monotonic()
    try:
        socket.create_connection(
            (parts.hostname or "localhost", parts.port or 5672),
            timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT,
        ).close()
    except OSError as exc:
        return f"unreachable: {exc}"
    if time.monotonic() - started > settings.CELERY_BROKER_CONNECTION_TIMEOUT:
        return "slow"
    return "ok"


@never_cache
@require_GET
def metrics(request):
    token = settings.METRICS_TOKEN
    if token:
        if not token_valid(request.headers.get("Authorization", ""), token):
            response = HttpResponse("a bearer token is required\n", status=401)
            response["WWW-Authenticate"] = "Bearer"
            return response
    elif request.META.get("REMOTE_ADDR") not in LOOPBACK:
        return HttpResponse("not found\n", status=404, content_type="text/plain")
    body = metrics_text([EventLogCollector()])
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
