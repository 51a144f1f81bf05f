"""Settings for the test suite: the base settings plus fast, quiet defaults."""

from .base import *  # noqa: F403
from .base import env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Tests decide per case how the outbox publishes; nothing leaves by default.
OUTBOX_PUBLISH_MODE = env.str("OUTBOX_PUBLISH_MODE", default="off")
