"""The environment of a worker or relay subprocess pointed at the database
and broker this process uses now, with the queue names it uses now."""

import os

from django.conf import settings

from portal.messaging.subscriptions import subscriptions

from .urls import database_url

# The second subscriber the harness provides (``subscriber_app``).
SUBSCRIBER_APP = "portal.testing.subscriber_app"


def process_env(
    *, extra_apps: tuple[str, ...] = (), **overrides: str
) -> dict[str, str]:
    """``os.environ`` plus what a subprocess needs to join this process's
    stack: ``DATABASE_URL`` (``database_url()``: the test database under
    pytest), ``CELERY_BROKER_URL``, every subscription's and ingestion's
    queue as this process names them now, unbuffered output, no kept
    database connections, and the fast path in thread mode (what a worker's
    ingest consumer logs, it routes right after the commit). ``extra_apps``
    are installed through ``PORTAL_EXTRA_APPS``; ``overrides`` win.
    """
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.base",
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        INGEST_QUEUE=settings.INGEST_QUEUE,
        CONN_MAX_AGE="0",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        OUTBOX_PUBLISH_MODE="thread",
    )
    for subscription in subscriptions():
        env[f"{subscription.settings_prefix}_QUEUE"] = subscription.queue
    if extra_apps:
        env["PORTAL_EXTRA_APPS"] = ",".join(extra_apps)
    env.update(overrides)
    return env
