"""Session and token authentication for people, with CSRF on for sessions."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portal.roles import STAFF_GROUP
from tests.web.factories import PASSWORD, FeedEventFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_user_gets_a_token_and_reads_the_feed_with_it():
    user = UserFactory(groups=[STAFF_GROUP])
    FeedEventFactory(event_id="e-1")
    client = APIClient()
    response = client.post(
        "/api/auth/token/",
        {"username": user.username, "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(user=user).key == key
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    feed = client.get("/api/feed/")
    assert feed.status_code == 200
    assert [item["id"] for item in feed.json()["results"]] == ["e-1"]


@pytest.mark.parametrize(
    "body",
    [
        {"username": "nobody", "password": "wrong"},
        {"username": "USER"},
        {},
        {"username": ["x"], "password": 5},
    ],
)
def test_token_refused_for_bad_credentials(body):
    user = UserFactory()
    if body.get("username") == "USER":
        body = {**body, "username": user.username}
    response = APIClient().post("/api/auth/token/", body, format="json")
    assert response.status_code == 400
    assert response.json()
    assert not Token.objects.exists()


def test_a_wrong_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    response = client.get("/api/feed/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_a_token_of_a_user_without_a_role_is_403():
    user = UserFactory()
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/feed/").status_code == 403


def test_session_writes_need_the_csrf_token():
    user = UserFactory(groups=[STAFF_GROUP])
    event = FeedEventFactory()
    client = APIClient(enforce_csrf_checks=True)
    client.get("/accounts/login/")  # sets the CSRF cookie, as a browser gets it
    csrf = client.cookies["csrftoken"].value
    client.force_login(user)
    url = f"/api/feed/{event.event_id}/reactions/like/"
    refused = client.post(url)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert client.get("/api/feed/").status_code == 200  # reads need no token
    accepted = client.post(url, HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 200
    assert accepted.json()["reacted"] is True


def test_the_api_root_is_an_index_of_the_api(client):
    response = client.get("/api/")
    assert response.status_code == 200
    endpoints = response.json()["endpoints"]
    assert endpoints["feed"]["url"] == "http://testserver/api/feed/"
    assert endpoints["events"]["url"] == "http://testserver/api/events/"
    for entry in endpoints.values():
        assert client.get(entry["url"]).status_code != 404, entry
