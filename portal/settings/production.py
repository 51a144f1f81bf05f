"""Production settings: the base settings, refusing unsafe defaults, HTTPS only.

Every HTTPS setting can be turned down from the environment (e.g. to try the
stack over plain http on localhost), never silently: the defaults are the
strict ones, and ``manage.py check --deploy`` reports nothing on them.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEBUG, SECRET_KEY, env

if SECRET_KEY.startswith("insecure-") or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("Set SECRET_KEY to a long random value in production.")
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production.")

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True

# Plain http is answered with a redirect to https, and browsers are told to
# use https only for a year (HSTS), subdomains included, and may preload it.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Probes and Prometheus talk plain http to the container itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True
)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """``"X-Forwarded-Proto,https"`` (or ``HTTP_X_FORWARDED_PROTO,https``) as
    Django's ``(META key, value)``; none when empty.

    Trusting such a header is only safe behind a proxy that sets it on every
    request and strips what clients send, so it is never on by default.
    """
    if not value.strip():
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be '<header>,<value>', "
            f"e.g. 'HTTP_X_FORWARDED_PROTO,https'; got {value!r}."
        )
    header, secure_value = parts
    header = header.upper().replace("-", "_")
    if not header.startswith("HTTP_"):
        header = f"HTTP_{header}"
    return header, secure_value


SECURE_PROXY_SSL_HEADER = proxy_ssl_header(env.str("SECURE_PROXY_SSL_HEADER", ""))
