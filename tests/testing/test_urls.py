"""The harness's database URL: what a subprocess is told to connect to."""

import environ
import pytest

from portal.testing.urls import database_url, host_port, via_port

POSTGRES = "django.db.backends.postgresql"


def parsed(url: str) -> dict:
    """What the portal's settings make of ``DATABASE_URL`` (django-environ)."""
    config = environ.Env.db_url_config(url)
    return {
        key: config.get(key) or ""
        for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "OPTIONS")
    } | {"PORT": str(config.get("PORT") or "")}


def settings_dict(**fields) -> dict:
    base = {"ENGINE": POSTGRES, "NAME": "portal", "USER": "", "PASSWORD": ""}
    return base | {"HOST": "", "PORT": ""} | fields


def test_a_database_without_user_or_password_gives_a_url_without_them():
    """``postgres:///portal``: no ``:@``, no ``None``, the local socket."""
    url = database_url(settings_dict())
    assert url == "postgres:///portal"
    assert parsed(url)["USER"] == parsed(url)["PASSWORD"] == ""


def test_a_user_without_password_keeps_only_the_user():
    db = settings_dict(USER="postgres", HOST="127.0.0.1")
    url = database_url(db)
    assert url == "postgres://postgres@127.0.0.1/portal"
    assert parsed(url)["USER"] == "postgres"
    assert parsed(url)["HOST"] == "127.0.0.1"
    assert parsed(url)["PASSWORD"] == ""


def test_none_values_count_as_missing():
    db = settings_dict(USER=None, PASSWORD=None, HOST=None, PORT=None)
    assert database_url(db) == "postgres:///portal"


@pytest.mark.parametrize(
    "fields",
    [
        {"USER": "app", "PASSWORD": "p@ss:w/rd%", "HOST": "db.internal", "PORT": 6432},
        {"USER": "app", "HOST": "127.0.0.1", "PORT": "5433"},
        {"HOST": "127.0.0.1", "PORT": 5432},
        {"USER": "app", "PORT": "5433"},
        {"USER": "app", "HOST": "/var/run/postgresql"},
        {"USER": "app", "HOST": "h", "OPTIONS": {"sslmode": "require"}},
    ],
    ids=["all", "string port", "no user", "port, no host", "socket", "options"],
)
def test_the_url_gives_back_the_same_connection(fields):
    url = database_url(settings_dict(**fields))
    got = parsed(url)
    options = dict(fields.get("OPTIONS", {}))
    host, port = str(fields.get("HOST", "")), str(fields.get("PORT", ""))
    if host.startswith("/"):  # a socket directory travels as ?host=
        options["host"], host = host, ""
    if port and not host:
        options["port"], port = int(port), ""
    assert got["USER"] == fields.get("USER", "")
    assert got["PASSWORD"] == fields.get("PASSWORD", "")
    assert (got["HOST"], got["PORT"]) == (host, port)
    assert got["NAME"] == "portal"
    assert (got["OPTIONS"] or {}) == options


def test_sqlite():
    db = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/x.sqlite3"}
    assert database_url(db) == "sqlite:////tmp/x.sqlite3"


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="oracle"):
        database_url({"ENGINE": "django.db.backends.oracle", "NAME": "x"})


def test_via_port_keeps_user_and_path_and_replaces_the_address():
    url = "postgres://app:secret@db.internal:5432/portal?sslmode=require"
    assert via_port(url, 40001) == (
        "postgres://app:secret@127.0.0.1:40001/portal?sslmode=require"
    )
    assert via_port("postgres:///portal", 40001) == "postgres://127.0.0.1:40001/portal"
    assert host_port("postgres:///portal", 5432) == ("127.0.0.1", 5432)
    assert host_port("amqp://g:g@10.0.0.5:5673/h5", 5672) == ("10.0.0.5", 5673)


@pytest.mark.django_db
def test_the_default_is_the_database_django_uses_now():
    from django.db import connection

    got = parsed(database_url())
    db = connection.settings_dict
    assert got["NAME"] == db["NAME"]
    assert got["USER"] == (db["USER"] or "")
