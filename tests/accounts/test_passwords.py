"""Every logged-in user can change their password; anyone can reset a
forgotten one through a link sent by email."""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, authenticate
from django.core import mail
from django.http import HttpRequest

from portal.roles import STAFF_GROUP
from tests.web.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-42"


def can_log_in(user, password) -> bool:
    return (
        authenticate(HttpRequest(), username=user.username, password=password)
        is not None
    )


def assert_portal_page(response, heading):
    assert response.status_code == 200
    page = response.content.decode()
    assert "portal/portal.css" in page
    assert f"<h1>{heading}</h1>" in page


def test_changing_the_password_needs_a_login(client):
    response = client.get("/accounts/password_change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("groups", [[], [STAFF_GROUP]])
def test_a_logged_in_user_changes_their_password(client, groups):
    user = UserFactory(groups=groups)
    client.force_login(user)
    assert_portal_page(client.get("/accounts/password_change/"), "Change your password")
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_change/done/"
    assert_portal_page(client.get(response["Location"]), "Password changed")
    assert client.session[SESSION_KEY] == str(user.pk)  # still logged in
    assert can_log_in(user, NEW_PASSWORD)
    assert not can_log_in(user, PASSWORD)


def test_a_wrong_old_password_changes_nothing(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": "wrong",
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert can_log_in(user, PASSWORD)


def test_the_top_bar_links_to_password_change(client):
    client.force_login(UserFactory(groups=[STAFF_GROUP]))
    assert 'href="/accounts/password_change/"' in client.get("/").content.decode()


def test_the_login_page_links_to_password_reset(client):
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in page


def test_a_forgotten_password_is_reset_through_an_emailed_link(client):
    user = UserFactory(email="anna@example.com")
    assert_portal_page(client.get("/accounts/password_reset/"), "Reset your password")
    response = client.post("/accounts/password_reset/", {"email": "anna@example.com"})
    assert response["Location"] == "/accounts/password_reset/done/"
    assert_portal_page(client.get(response["Location"]), "Check your email")

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["anna@example.com"]
    assert message.subject == "Reset your Portal password"
    assert user.username in message.body
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)

    form = client.get(link, follow=True)
    assert_portal_page(form, "Choose a new password")
    response = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response["Location"] == "/accounts/reset/done/"
    assert_portal_page(client.get(response["Location"]), "Password reset")
    assert can_log_in(user, NEW_PASSWORD)
    # The link works once.
    assert "no longer valid" in client.get(link, follow=True).content.decode()


def test_an_unknown_email_gets_the_same_answer_and_no_mail(client):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
    assert response["Location"] == "/accounts/password_reset/done/"
    assert mail.outbox == []


def _email_settings(**env_vars) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != "EMAIL_URL"}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings.base", **env_vars)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_FILE_PATH, s.EMAIL_HOST, s.EMAIL_PORT, "
        "s.EMAIL_HOST_USER, s.EMAIL_USE_TLS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True,
        check=True, cwd=settings.BASE_DIR,
    ).stdout.split()  # fmt: skip


def test_email_goes_to_files_under_var_by_default():
    backend, path, *_ = _email_settings(PORTAL_VAR_DIR="/tmp/portal-var")
    assert backend == "django.core.mail.backends.filebased.EmailBackend"
    assert path == "/tmp/portal-var/mail"


def test_email_url_configures_smtp():
    backend, _, host, port, user, tls = _email_settings(
        EMAIL_URL="smtp+tls://mailer:secret@smtp.example.com:587"
    )
    assert backend == "django.core.mail.backends.smtp.EmailBackend"
    assert (host, port, user, tls) == ("smtp.example.com", "587", "mailer", "True")
