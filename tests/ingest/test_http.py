"""``POST /api/events/``: events from other services over HTTP, with a service token."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from feed.models import FeedEvent
from portal.messaging.apis import token_hash
from portal.messaging.models import LoggedEvent, ServiceToken
from tests.helpers import make_envelope, wait_for

URL = "/api/events/"


def create_token(name: str = "hr-import", *args: str) -> str:
    """A service token's key; bound to the root source prefix unless told."""
    if "--source-prefix" not in args:
        args = (*args, "--source-prefix", "/")
    out, err = StringIO(), StringIO()
    call_command("create_service_token", name, *args, stdout=out, stderr=err)
    assert "shown once" in err.getvalue()
    return out.getvalue().strip()


def post(client: Client, body, key: str | None = None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}
    return client.post(
        URL,
        data=body if isinstance(body, str) else json.dumps(body),
        content_type=extra.pop("content_type", "application/cloudevents+json"),
        **headers,
        **extra,
    )


@pytest.mark.django_db
def test_a_token_is_printed_once_and_stored_only_hashed():
    key = create_token("hr-import", "--source-prefix", "/hr")
    token = ServiceToken.objects.get()
    assert (token.name, token.source_prefix, token.active) == ("hr-import", "/hr", True)
    assert token.key_hash == token_hash(key)
    assert key not in token.key_hash
    assert len(key) > 40


@pytest.mark.django_db
def test_an_event_is_accepted_once_stored_and_a_repost_changes_nothing(client):
    key = create_token()
    envelope = make_envelope(source="/hr-import")
    response = post(client, envelope, key)
    assert response.status_code == 202, response.content
    assert response.json() == {
        "id": envelope["id"],
        "source": "/hr-import",
        "status": "accepted",
    }
    row = LoggedEvent.objects.get()
    assert (row.source, row.event_id, row.type) == (
        "/hr-import",
        envelope["id"],
        "employee.registered",
    )
    assert row.envelope["data"] == envelope["data"]

    again = post(client, envelope, key, content_type="application/json")
    assert again.status_code == 202
    assert again.json()["status"] == "already accepted"
    assert LoggedEvent.objects.count() == 1
    assert ServiceToken.objects.get().last_used_at is not None


@pytest.mark.django_db
def test_an_invalid_event_is_refused_with_its_field_errors(client):
    key = create_token()
    bad = make_envelope(data={"employee_id": "42", "full_name": ""})
    response = post(client, bad, key)
    assert response.status_code == 400
    body = response.json()
    assert body["reason"] == "invalid data"
    fields = {e["field"] for e in body["errors"]}
    assert {"data.employee_id", "data.full_name"} <= fields
    assert post(client, "{not json", key).status_code == 400
    unknown = post(client, make_envelope(type="employee.cloned"), key)
    assert unknown.json()["reason"] == "unknown type/version"
    assert not LoggedEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Token nope", 401), ("Token", 401), ("Bearer x", 401)],
)
def test_no_valid_token_no_entry(client, authorization, status):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = post(client, make_envelope(), **extra)
    assert response.status_code == status
    assert not LoggedEvent.objects.exists()


@pytest.mark.django_db
def test_an_inactive_token_or_a_foreign_source_is_refused(client):
    key = create_token("hr", "--source-prefix", "/hr-import")
    assert post(client, make_envelope(source="/payroll"), key).status_code == 403
    ServiceToken.objects.update(active=False)
    assert post(client, make_envelope(source="/hr-import"), key).status_code == 401
    assert not LoggedEvent.objects.exists()


@pytest.mark.django_db
def test_a_logged_in_user_is_not_a_service(admin_client):
    assert post(admin_client, make_envelope()).status_code == 401


@pytest.mark.django_db
def test_an_oversized_body_is_refused(client, settings):
    settings.MESSAGE_MAX_BYTES = 1000
    key = create_token()
    response = post(client, make_envelope(data={"pad": "x" * 2000}), key)
    assert response.status_code == 413


@pytest.mark.real_stack
@pytest.mark.django_db(transaction=True)
def test_a_posted_event_reaches_the_feed_once(clean_queues, feed_worker, settings):
    settings.OUTBOX_PUBLISH_MODE = "inline"
    key = create_token()
    envelope = make_envelope(source="/hr-import")
    client = Client()
    assert post(client, envelope, key).status_code == 202
    assert post(client, envelope, key).status_code == 202
    wait_for(lambda: FeedEvent.objects.filter(event_id=envelope["id"]).exists())
    assert FeedEvent.objects.get().source == "/hr-import"
    assert LoggedEvent.objects.get().status == "sent"
