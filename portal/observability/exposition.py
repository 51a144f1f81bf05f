"""Serving the metrics: who may read them and where.

* The web process answers ``GET /metrics`` (``views.metrics``).
* The relay and each worker serve them on a port of their own
  (``RELAY_METRICS_PORT``, ``WORKER_METRICS_PORT``) bound to
  ``METRICS_ADDRESS`` (``127.0.0.1`` unless told otherwise: a private port).
* With ``METRICS_TOKEN`` set, every one of them wants
  ``Authorization: Bearer <token>``; without it, the web's ``/metrics``
  answers only requests from the loopback address.

In multiprocess mode (gunicorn, Celery prefork) a scrape adds up the files
of every process of the server; the web process also reports the state of
the event log, read from the database when scraped
(``collectors.EventLogCollector``).
"""

import hmac
import logging
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.registry import Collector

from .multiproc import multiproc_enabled

logger = logging.getLogger(__name__)


def metrics_registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """What a scrape reports: this process (or, in multiprocess mode, every
    process of the server), plus ``extra`` collectors."""
    if multiproc_enabled():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return registry


class _Default(Collector):
    """The process's own registry, inside a registry of the scrape."""

    def collect(self):
        return REGISTRY.collect()


def metrics_text(extra: Iterable[Collector] = ()) -> bytes:
    return generate_latest(metrics_registry(extra))


def token_valid(header: str, token: str) -> bool:
    """Is ``header`` ``Bearer <token>``? (Compared in constant time.)"""
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def metrics_wsgi_app(token: str, extra: Callable[[], Iterable[Collector]]):
    def app(environ, start_response):
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if token and not token_valid(environ.get("HTTP_AUTHORIZATION", ""), token):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"a bearer token is required\n"]
        body = metrics_text(extra())
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [body]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the name wsgiref calls
        pass


def metrics_server_start(
    *,
    port: int,
    address: str,
    token: str,
    extra: Callable[[], Iterable[Collector]] = tuple,
) -> object | None:
    """Serve the metrics on ``address:port`` in a daemon thread.

    Returns the server, or None if ``port`` is 0 or taken (logged: a
    second worker on the same host must not fail for want of a port).
    """
    if not port:
        return None
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIServer

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    try:
        server = make_server(
            address,
            port,
            metrics_wsgi_app(token, extra),
            server_class=Server,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        logger.warning("Metrics not served on %s:%s: %s", address, port, exc)
        return None
    thread = threading.Thread(
        target=server.serve_forever, name="metrics-server", daemon=True
    )
    thread.start()
    logger.info("Metrics served on http://%s:%s/metrics", address, port)
    return server
