"""``portal.settings.production``: HTTPS-only by default, tuned from the
environment, and clean under Django's deployment checklist.

Each case loads the settings in a fresh interpreter, because they are read
from the environment once, at import. No database or broker is touched.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAMES = [
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
]
# What an operator might have exported; each case starts without any of it.
TUNABLES = [*NAMES, "DEBUG", "DJANGO_SETTINGS_MODULE", "SECRET_KEY"]


def production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TUNABLES}
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings.production"
    env.update(overrides)
    return env


def load(**overrides: str) -> subprocess.CompletedProcess:
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {NAMES!r}}}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )


def production_settings(**overrides: str) -> dict:
    result = load(**overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_is_https_only_by_default():
    assert production_settings() == {
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def test_https_settings_come_from_the_environment():
    assert production_settings(
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
        SECURE_HSTS_PRELOAD="0",
        SECURE_SSL_REDIRECT="0",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    ) == {
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
    }


@pytest.mark.parametrize(
    "value", ["X-Forwarded-Proto,https", "HTTP_X_FORWARDED_PROTO, https"]
)
def test_proxy_header_may_be_given_by_its_http_name(value):
    """Django wants the request.META key; the header's own name means the same."""
    header = production_settings(SECURE_PROXY_SSL_HEADER=value)
    assert header["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_an_empty_proxy_header_means_none():
    """docker compose passes ``${SECURE_PROXY_SSL_HEADER:-}`` as an empty value."""
    assert (
        production_settings(SECURE_PROXY_SSL_HEADER="")["SECURE_PROXY_SSL_HEADER"]
        is None
    )


@pytest.mark.parametrize("value", ["HTTP_X_FORWARDED_PROTO", "a,b,c", ",https"])
def test_a_malformed_proxy_header_stops_the_process(value):
    result = load(SECURE_PROXY_SSL_HEADER=value)
    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER" in result.stderr


def test_manage_py_check_deploy_reports_nothing():
    """Django's deployment checklist (and the checks of the installed apps,
    drf-spectacular's schema among them) on the production defaults."""
    result = subprocess.run(
        [
            sys.executable, "manage.py", "check", "--deploy",
            "--settings=portal.settings.production", "--fail-level=DEBUG",
        ],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."
    assert "WARNING" not in result.stderr, result.stderr
