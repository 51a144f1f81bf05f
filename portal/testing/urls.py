"""URLs of the database and broker a test or benchmark runs on, for the
subprocesses it starts (which read ``DATABASE_URL`` / ``CELERY_BROKER_URL``).
"""

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from django.db import connection

_SCHEMES = {
    "django.db.backends.postgresql": "postgres",
    "django.db.backends.sqlite3": "sqlite",
}


def database_url(settings_dict: Mapping[str, Any] | None = None) -> str:
    """The URL of a database as Django's connection settings describe it
    (by default the one Django uses now: the test database under pytest).

    ``USER``, ``PASSWORD``, ``HOST`` and ``PORT`` are each optional and left
    out when empty (``postgres:///portal`` connects over the local socket as
    the current user, as it did here); a ``HOST`` that is a socket directory
    and scalar ``OPTIONS`` (``sslmode``...) go in the query string. Parsed
    by ``DATABASE_URL`` (django-environ), it gives the same connection.
    """
    db = connection.settings_dict if settings_dict is None else settings_dict
    engine = db.get("ENGINE", "")
    scheme = _SCHEMES.get(engine)
    if scheme is None:
        raise ValueError(f"no URL scheme known for the database engine {engine!r}")
    name = str(db.get("NAME") or "")
    if scheme == "sqlite":
        return f"sqlite:///{name}"
    user, password = str(db.get("USER") or ""), str(db.get("PASSWORD") or "")
    host, port = str(db.get("HOST") or ""), str(db.get("PORT") or "")
    # (Not "options": the server-side settings, timeouts among them, are the
    # process's own, from its environment.)
    query = {
        key: value
        for key, value in (db.get("OPTIONS") or {}).items()
        if isinstance(value, str | int | float)
        and not isinstance(value, bool)
        and key != "options"
    }
    if host.startswith("/"):
        query["host"] = host
        host = ""
    userinfo = quote(user, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    netloc = (f"{userinfo}@" if userinfo else "") + host
    if port:
        if host:
            netloc += f":{port}"
        else:
            query["port"] = port
    url = f"{scheme}://{netloc}/{quote(name)}"
    # %20, not "+", for spaces: libpq reads the URL too, and takes "+" literally.
    return f"{url}?{urlencode(query, quote_via=quote)}" if query else url


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """Where a URL's server listens (``127.0.0.1`` when it names no host)."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def via_port(url: str, port: int) -> str:
    """``url`` with its host and port replaced by ``127.0.0.1:port`` (a proxy
    in front of the server), user, password, path and query kept."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))
