"""API tokens: issued for a password, optionally expiring, rotated and
revoked by their owner, revocable by admins."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portal.roles import STAFF_GROUP
from tests.web.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "/api/auth/token/"
ROTATE = "/api/auth/token/rotate/"
EXPIRED = (
    "Token has expired. Get a new one with POST /api/auth/token/ "
    "(username and password)."
)


def obtain(user, **headers):
    return APIClient().post(
        TOKEN, {"username": user.username, "password": PASSWORD}, format="json",
        **headers,
    )  # fmt: skip


def with_token(key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def age(key, hours: float) -> None:
    """Make a token as old as if it had been issued ``hours`` ago."""
    Token.objects.filter(key=key).update(
        created=timezone.now() - timedelta(hours=hours)
    )


@pytest.fixture
def staff():
    return UserFactory(groups=[STAFF_GROUP])


@pytest.fixture
def ttl(settings):
    settings.API_TOKEN_TTL_HOURS = 2
    return timedelta(hours=2)


def test_without_a_ttl_tokens_never_expire(staff):
    first = obtain(staff)
    assert first.status_code == 200
    assert first.json()["expires"] is None
    key = first.json()["token"]
    age(key, 24 * 365 * 10)
    assert with_token(key).get("/api/feed/").status_code == 200
    assert obtain(staff).json() == {"token": key, "expires": None}  # as before


def test_a_token_carries_its_expiry_and_works_until_then(staff, ttl):
    before = timezone.now()
    body = obtain(staff).json()
    expires = parse_datetime(body["expires"])
    assert before + ttl <= expires <= timezone.now() + ttl
    assert with_token(body["token"]).get("/api/feed/").status_code == 200
    # Asking again before it expires gives the same token.
    assert obtain(staff).json() == body


def test_an_expired_token_is_refused_with_401(staff, ttl):
    key = obtain(staff).json()["token"]
    age(key, 2.01)
    response = with_token(key).get("/api/feed/")
    assert response.status_code == 401
    assert response.json() == {"detail": EXPIRED}
    assert response["WWW-Authenticate"] == "Token"


def test_asking_again_after_expiry_gives_a_new_token(staff, ttl):
    old = obtain(staff).json()["token"]
    age(old, 3)
    # An expired token still in the header does not stand in the way.
    response = obtain(staff, HTTP_AUTHORIZATION=f"Token {old}")
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old
    assert list(Token.objects.values_list("key", flat=True)) == [new]
    assert with_token(new).get("/api/feed/").status_code == 200


def test_rotating_gives_a_new_key_and_the_old_one_stops_working(staff, ttl):
    old = obtain(staff).json()["token"]
    age(old, 1)
    before = timezone.now()
    response = with_token(old).post(ROTATE)
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old
    assert parse_datetime(response.json()["expires"]) >= before + ttl  # a fresh TTL
    assert with_token(old).get("/api/feed/").json() == {"detail": "Invalid token."}
    assert with_token(new).get("/api/feed/").status_code == 200


def test_rotating_with_a_session_needs_the_csrf_token(staff):
    client = APIClient(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    csrf = client.cookies["csrftoken"].value
    client.force_login(staff)
    refused = client.post(ROTATE)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not Token.objects.exists()
    response = client.post(ROTATE, HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200
    assert Token.objects.get(user=staff).key == response.json()["token"]


def test_rotating_and_revoking_need_a_valid_credential(staff, ttl):
    for method, path in (("post", ROTATE), ("delete", TOKEN)):
        anonymous = getattr(APIClient(), method)(path)
        assert anonymous.status_code == 401
        assert anonymous.json() == {
            "detail": "Authentication credentials were not provided."
        }
    key = obtain(staff).json()["token"]
    age(key, 5)
    assert with_token(key).post(ROTATE).json() == {"detail": EXPIRED}
    assert with_token(key).delete(TOKEN).status_code == 401
    assert Token.objects.filter(key=key).exists()


def test_revoking_deletes_the_token(staff):
    key = obtain(staff).json()["token"]
    response = with_token(key).delete(TOKEN)
    assert response.status_code == 204
    assert not Token.objects.exists()
    assert with_token(key).get("/api/feed/").status_code == 401
    # Revoking with a session when there is no token is harmless.
    client = APIClient()
    client.force_login(staff)
    assert client.delete(TOKEN).status_code == 204


def test_any_logged_in_user_manages_their_own_token_only():
    """A user without a role may hold a token (it opens nothing but this)."""
    nobody, other = UserFactory(), UserFactory()
    other_key = obtain(other).json()["token"]
    key = obtain(nobody).json()["token"]
    with_token(key).post(ROTATE)
    with_token(Token.objects.get(user=nobody).key).delete(TOKEN)
    assert list(Token.objects.values_list("key", flat=True)) == [other_key]


def test_an_admin_revokes_a_token_in_the_admin(client, staff, ttl):
    key = obtain(staff).json()["token"]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get("/admin/authtoken/tokenproxy/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert staff.username in page
    assert "Expires" in page
    response = client.post(
        f"/admin/authtoken/tokenproxy/{staff.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Token.objects.exists()
    assert with_token(key).get("/api/feed/").status_code == 401


def test_the_ttl_is_read_from_the_environment():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.base",
        "API_TOKEN_TTL_HOURS": "12",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.API_TOKEN_TTL_HOURS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True,
        check=True, cwd=settings.BASE_DIR,
    ).stdout  # fmt: skip
    assert float(out) == 12


def test_the_schema_documents_every_token_operation(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    paths = schema["paths"]
    expected = {
        (TOKEN, "post"): {"200", "400", "413", "415", "429"},
        (TOKEN, "delete"): {"204", "401", "403"},
        (ROTATE, "post"): {"200", "401", "403"},
    }
    for (path, method), codes in expected.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == codes, (path, method)
        for code in codes - {"204"}:
            content = operation["responses"][code]["content"]["application/json"]
            schema_of_body = content["schema"]
            assert "$ref" in schema_of_body or "oneOf" in schema_of_body, (path, method)
    assert paths[TOKEN]["post"].get("security", []) in ([], [{}])  # anyone
    assert {"tokenAuth": []} in paths[ROTATE]["post"]["security"]
    locked = paths[TOKEN]["post"]["responses"]["429"]
    assert "Retry-After" in locked["headers"]
    components = schema["components"]["schemas"]
    token = components["AuthToken"]["properties"]
    assert token["expires"]["nullable"] is True
