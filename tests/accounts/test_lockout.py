"""Repeated wrong passwords lock a username and an address out for a while,
on every way in: the login page, the admin's login and the API token."""

import logging
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, authenticate
from django.http import HttpRequest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.web.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 5  # the embedded default
COOL_OFF_SECONDS = 15 * 60
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
TOKEN = "/api/auth/token/"


def web_login(client, username, password, ip="127.0.0.1", path=LOGIN):
    return client.post(
        path, {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def api_login(username, password, ip="127.0.0.1"):
    return APIClient().post(
        TOKEN, {"username": username, "password": password}, format="json",
        REMOTE_ADDR=ip,
    )  # fmt: skip


def test_defaults_are_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == LIMIT
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME


def test_the_login_page_locks_a_user_out_and_says_so(client):
    user = UserFactory()
    for _ in range(LIMIT - 1):
        response = web_login(client, user.username, "wrong")
        assert response.status_code == 200  # the form again, with its error
    assert web_login(client, user.username, "wrong").status_code == 429
    locked = web_login(client, user.username, PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(COOL_OFF_SECONDS)
    assert SESSION_KEY not in client.session
    page = locked.content.decode()
    assert "Too many failed logins" in page
    assert "15 minutes" in page
    assert 'href="/accounts/password_reset/"' in page
    assert "portal/portal.css" in page  # the portal's own layout


def test_the_api_token_answers_429_with_retry_after():
    user = UserFactory()
    for _ in range(LIMIT - 1):
        assert api_login(user.username, "wrong").status_code == 400
    assert api_login(user.username, "wrong").status_code == 429
    locked = api_login(user.username, PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(COOL_OFF_SECONDS)
    assert locked.json() == {
        "detail": "Too many failed login attempts. Try again in 900 seconds."
    }
    assert not Token.objects.exists()


def test_the_admin_login_is_locked_too(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    for _ in range(LIMIT - 1):
        assert (
            web_login(client, admin.username, "wrong", path=ADMIN_LOGIN).status_code
            == 200
        )
    assert (
        web_login(client, admin.username, "wrong", path=ADMIN_LOGIN).status_code == 429
    )
    locked = web_login(client, admin.username, PASSWORD, path=ADMIN_LOGIN)
    assert locked.status_code == 429
    assert SESSION_KEY not in client.session
    assert client.get("/admin/").status_code == 302


def test_failures_on_one_way_in_count_on_the_others(client):
    user = UserFactory()
    for _ in range(LIMIT - 2):
        web_login(client, user.username, "wrong")
    api_login(user.username, "wrong")
    web_login(client, user.username, "wrong", path=ADMIN_LOGIN)
    assert api_login(user.username, PASSWORD).status_code == 429


def test_one_address_guessing_many_usernames_is_locked_out(client):
    for i in range(LIMIT):
        web_login(client, f"guess{i}", "wrong", ip="203.0.113.7")
    user = UserFactory()
    assert (
        web_login(client, user.username, PASSWORD, ip="203.0.113.7").status_code == 429
    )
    # The same user from another address is not affected.
    assert (
        web_login(client, user.username, PASSWORD, ip="198.51.100.1").status_code == 302
    )


def test_one_username_guessed_from_many_addresses_is_locked_out(client):
    user = UserFactory()
    for i in range(LIMIT):
        api_login(user.username, "wrong", ip=f"198.51.100.{i + 1}")
    assert api_login(user.username, PASSWORD, ip="203.0.113.99").status_code == 429
    assert (
        web_login(client, user.username, PASSWORD, ip="203.0.113.99").status_code == 429
    )


def test_fewer_failures_than_the_limit_do_not_lock(client):
    user = UserFactory()
    for _ in range(LIMIT - 1):
        web_login(client, user.username, "wrong")
    assert web_login(client, user.username, PASSWORD).status_code == 302
    assert client.session[SESSION_KEY] == str(user.pk)


def test_the_lockout_ends_after_the_cool_off(client):
    from axes.models import AccessAttempt

    user = UserFactory()
    for _ in range(LIMIT):
        web_login(client, user.username, "wrong")
    assert web_login(client, user.username, PASSWORD).status_code == 429
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )
    assert web_login(client, user.username, PASSWORD).status_code == 302


def test_limits_follow_the_settings(client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=3)
    user = UserFactory()
    for _ in range(2):
        api_login(user.username, "wrong")
    locked = api_login(user.username, PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == "180"


def test_a_lockout_is_logged(client, caplog):
    user = UserFactory()
    with caplog.at_level(logging.WARNING, logger="accounts"):
        for _ in range(LIMIT):
            web_login(client, user.username, "wrong", ip="203.0.113.5")
    records = [r for r in caplog.records if r.name.startswith("accounts")]
    assert len(records) == 1
    message = records[0].getMessage()
    assert "locked out" in message
    assert user.username in message
    assert "203.0.113.5" in message
    assert "/accounts/login/" in message


def test_authenticate_without_the_request_is_refused():
    """Every caller must pass the request, or its failures would not count;
    the test client's login() works when given one."""
    from axes.exceptions import AxesBackendRequestParameterRequired

    user = UserFactory()
    with pytest.raises(AxesBackendRequestParameterRequired):
        authenticate(username=user.username, password=PASSWORD)
    assert authenticate(HttpRequest(), username=user.username, password=PASSWORD)


def test_the_test_clients_login_works_with_a_request(client):
    user = UserFactory()
    assert client.login(
        request=HttpRequest(), username=user.username, password=PASSWORD
    )
    assert client.session[SESSION_KEY] == str(user.pk)


def test_the_limits_are_read_from_the_environment():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.base",
        "LOGIN_FAILURE_LIMIT": "8",
        "LOGIN_COOLOFF_MINUTES": "2",
        "LOGIN_LOCKOUT_BY": "username",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, int(s.AXES_COOLOFF_TIME.total_seconds()), "
        "s.AXES_LOCKOUT_PARAMETERS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True,
        check=True, cwd=settings.BASE_DIR,
    ).stdout  # fmt: skip
    assert out.split(maxsplit=2) == ["8", "120", "['username']\n"]
