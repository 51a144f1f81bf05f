"""The portal's settings plus the bench-only URLs; never used in production."""

from portal.settings.base import *  # noqa: F403
from portal.settings.base import env

ROOT_URLCONF = "bench.benchsite.urls"
ALLOWED_HOSTS = ["*"]
# Where the "old design" posts its events synchronously (the stub feed server).
BENCH_STUB_FEED_URL = env.str("BENCH_STUB_FEED_URL", default="http://127.0.0.1:8765")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="ERROR")},
}

# What-if only (never set by default): Celery's Django fixup closes the
# database connection around every task unless this is set.
if env.int("BENCH_DB_REUSE_MAX", default=0):
    CELERY_DB_REUSE_MAX = env.int("BENCH_DB_REUSE_MAX")
