"""Settings for the test suite: the base settings plus fast, quiet defaults."""

import os

from .base import *  # noqa: F403
from .base import INSTALLED_APPS, env

# A second subscriber, the harness's (portal/testing/subscriber_app).
INSTALLED_APPS = [*INSTALLED_APPS, "portal.testing.subscriber_app"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Onboarding is off unless a test turns it on (tests/onboarding/): the other
# suites count their subscribers' deliveries exactly. Set in the environment
# too, so the workers the tests start inherit it.
os.environ.setdefault("ONBOARDING_ENABLED", "0")
ONBOARDING_ENABLED = env.bool("ONBOARDING_ENABLED")
# The suite's workers leave retries behind whose queues a test deleted: one
# test's leftovers must not land in another's dead-letter store. Tests of the
# intake turn it on for their own worker.
os.environ.setdefault("DELAYED_UNROUTABLE_INTAKE", "0")
DELAYED_UNROUTABLE_INTAKE = env.bool("DELAYED_UNROUTABLE_INTAKE")

# Tests decide per case how the outbox publishes; nothing leaves by default.
OUTBOX_PUBLISH_MODE = env.str("OUTBOX_PUBLISH_MODE", default="off")
# Threads that publish in the background must not keep connections to the
# test database open past their work, or it cannot be dropped at the end.
for _db in DATABASES.values():  # noqa: F405
    _db["CONN_MAX_AGE"] = 0
# Serve static files from the finders; the test run never collects them.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
