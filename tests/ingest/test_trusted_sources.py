"""Who may send what: source-bound service tokens, reserved sources, and bad
input that must be a 400, never a 500."""

import importlib
import json
from io import StringIO

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command

from feed.models import FeedEvent
from portal.messaging.apis import service_token_create
from portal.messaging.models import DeadLetter, LoggedEvent, ServiceToken
from portal.messaging.sources import source_is_reserved, source_within
from tests.helpers import make_envelope, wait_for
from tests.ingest.test_amqp import publish
from tests.ingest.test_http import create_token, post

pytestmark = pytest.mark.django_db


def thanks_from(source: str) -> dict:
    return make_envelope(
        source=source,
        type="thanks.sent",
        data={
            "from_employee_id": 1,
            "from_name": "Spoofed CEO",
            "to_employee_id": 2,
            "to_name": "Anna",
            "message": "You are fired",
        },
    )


def test_a_service_token_needs_a_source_prefix():
    with pytest.raises(CommandError, match="source-prefix"):
        call_command("create_service_token", "nobody", stdout=StringIO())
    assert not ServiceToken.objects.exists()


@pytest.mark.parametrize(
    "prefix", ["", "/portal", "/portal/registrar", "/Portal/x", "/hr/../portal", "a b"]
)
def test_a_prefix_that_is_reserved_or_ambiguous_is_refused(prefix):
    with pytest.raises(ValueError, match="prefix"):
        service_token_create(name="bad", source_prefix=prefix)
    assert not ServiceToken.objects.exists()


@pytest.mark.parametrize(
    ("source", "status"),
    [
        ("/hr-import", 202),
        ("/hr-import/eu", 202),
        ("/hr-importer", 403),
        ("/hr-imp", 403),
        ("/hr-import/../portal/registrar", 400),
        ("/hr-import/%2e%2e/portal/registrar", 400),
        ("/portal/registrar", 403),
    ],
)
def test_the_source_prefix_is_checked_by_path_segments(client, source, status):
    key = create_token("hr", "--source-prefix", "/hr-import")
    response = post(client, thanks_from(source), key)
    assert response.status_code == status, response.content
    assert LoggedEvent.objects.count() == (1 if status == 202 else 0)


@pytest.mark.parametrize(
    "source",
    ["/portal", "/portal/registrar", "/portal/feed", "/PORTAL/feed", "/%70ortal/x"],
)
def test_the_portals_own_sources_are_refused_even_to_a_root_token(client, source):
    _, key = service_token_create(name="root", source_prefix="/")
    response = post(client, thanks_from(source), key)
    assert response.status_code == 403
    assert "reserved" in response.json()["detail"]
    assert not LoggedEvent.objects.exists()


def test_a_root_token_may_send_other_sources(client):
    _, key = service_token_create(name="root", source_prefix="/")
    assert post(client, thanks_from("/portality"), key).status_code == 202


def test_a_token_may_be_limited_to_event_types(client):
    _, key = service_token_create(
        name="hr", source_prefix="/hr-import", event_types=["employee.*"]
    )
    allowed = make_envelope(source="/hr-import")
    assert post(client, allowed, key).status_code == 202
    response = post(client, thanks_from("/hr-import"), key)
    assert response.status_code == 403
    assert "thanks.sent" in response.json()["detail"]
    assert LoggedEvent.objects.count() == 1


def test_event_type_patterns_must_be_valid():
    with pytest.raises(ValueError, match="pattern"):
        service_token_create(
            name="hr", source_prefix="/hr", event_types=["employee.**"]
        )


def test_a_token_without_a_prefix_from_before_admits_nothing(client):
    _, key = service_token_create(name="old", source_prefix="/x")
    ServiceToken.objects.update(source_prefix="")
    response = post(client, make_envelope(source="/x"), key)
    assert response.status_code == 403
    assert "no source prefix" in response.json()["detail"]


def test_the_migration_deactivates_tokens_without_a_prefix():
    migration = importlib.import_module(
        "portal.messaging.migrations.0003_service_tokens_bound_to_sources"
    )
    _, _ = service_token_create(name="bound", source_prefix="/hr")
    _, _ = service_token_create(name="old", source_prefix="/x")
    ServiceToken.objects.filter(name="old").update(source_prefix="")
    migration.deactivate_unbound_tokens(django_apps, None)
    assert dict(ServiceToken.objects.values_list("name", "active")) == {
        "bound": True,
        "old": False,
    }


def test_source_helpers():
    assert source_within("/hr-import/eu", "/hr-import")
    assert source_within("/hr-import", "/hr-import/")
    assert not source_within("/hr-importer", "/hr-import")
    assert source_within("https://hr.example.com/x", "https://hr.example.com")
    assert not source_within(
        "https://hr.example.com.evil.org/x", "https://hr.example.com"
    )
    assert source_is_reserved("/portal/registrar")
    assert source_is_reserved("/portal")
    assert not source_is_reserved("/portals")


def test_the_reserved_sources_follow_the_setting(settings):
    """The answers are remembered, and forgotten when the setting changes."""
    assert source_is_reserved("/portal/registrar")
    assert not source_is_reserved("/acme/portal")
    settings.PORTAL_EVENT_SOURCE = "/acme"
    assert not source_is_reserved("/portal/registrar")
    assert source_is_reserved("/ACME/portal")
    assert source_is_reserved("/%61cme/x")


# --- Bad input is a 400, not a 500 -----------------------------------------


def test_a_version_in_unicode_digits_is_a_400(client):
    key = create_token("hr", "--source-prefix", "/tests")
    response = post(client, make_envelope(dataschemaversion="²"), key)
    assert response.status_code == 400
    assert response.json()["reason"] == "unknown type/version"


@pytest.mark.parametrize(
    "attributes",
    [
        {"type": ["employee.registered"]},
        {"type": {"name": "employee.registered"}},
        {"dataschemaversion": [1]},
        {"dataschemaversion": {"v": 1}},
        {"dataschema": ["x"]},
    ],
)
def test_attributes_of_the_wrong_json_type_are_a_400(client, attributes):
    key = create_token("hr", "--source-prefix", "/tests")
    response = post(client, {**make_envelope(), **attributes}, key)
    assert response.status_code == 400
    assert response.json()["errors"]


@pytest.mark.parametrize(
    "url", ["/api/events/", "/api/thanks/", "/api/employees/", "/api/auth/token/"]
)
def test_json_nested_a_thousand_deep_is_a_400(client, admin_client, url):
    key = create_token("hr", "--source-prefix", "/tests")
    body = "[" * 1000 + "]" * 1000
    user_client = client if url == "/api/events/" else admin_client
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"} if url == "/api/events/" else {}
    response = user_client.post(
        url, data=body, content_type="application/json", **headers
    )
    assert response.status_code == 400
    assert "deep" in json.dumps(response.json())


def test_a_time_outside_the_window_is_a_400_naming_the_field(client):
    key = create_token("hr", "--source-prefix", "/tests")
    for time in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", 1700000000):
        response = post(client, make_envelope(time=time), key)
        assert response.status_code == 400
        assert [e["field"] for e in response.json()["errors"]] == ["time"]
    assert not LoggedEvent.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/?type=%00",
        "/?department=%00",
        "/feed/arrived/?type=%00",
        "/feed/arrived/?department=a%00b",
        "/feed/arrived/?since=99999999999999999999999",
        "/feed/arrived/?since=-1",
    ],
)
def test_a_nul_or_overflow_in_the_feed_filters_is_a_400(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 400


def test_a_cursor_holding_nul_starts_the_feed_over(admin_client):
    assert admin_client.get("/?before=%00").status_code == 302


# --- Over AMQP ----------------------------------------------------------------


@pytest.mark.real_stack
@pytest.mark.django_db(transaction=True)
def test_an_event_claiming_a_portal_source_over_amqp_is_dead_lettered(ingest):
    forged = thanks_from("/portal/feed")
    honest = make_envelope(source="/hr-import")
    for envelope in (forged, honest):
        publish(
            ingest,
            json.dumps(envelope),
            routing_key=envelope["type"],
            content_type="application/cloudevents+json",
        )
    wait_for(lambda: FeedEvent.objects.filter(event_id=honest["id"]).exists())
    wait_for(lambda: DeadLetter.objects.filter(event_id=forged["id"]).exists())
    dead = DeadLetter.objects.get(event_id=forged["id"])
    assert dead.reason == "reserved source"
    assert "/portal" in dead.error
    assert not FeedEvent.objects.filter(source="/portal/feed").exists()


@pytest.mark.real_stack
@pytest.mark.django_db(transaction=True)
def test_an_event_time_outside_the_window_over_amqp_is_dead_lettered(ingest):
    outside = [
        make_envelope(source="/hr-import", time=time)
        for time in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", 1700000000)
    ]
    honest = make_envelope(source="/hr-import")
    for envelope in (*outside, honest):
        publish(
            ingest,
            json.dumps(envelope),
            routing_key=envelope["type"],
            content_type="application/cloudevents+json",
        )
    wait_for(lambda: FeedEvent.objects.filter(event_id=honest["id"]).exists())
    ids = [envelope["id"] for envelope in outside]
    wait_for(lambda: DeadLetter.objects.filter(event_id__in=ids).count() == 3)
    for dead in DeadLetter.objects.filter(event_id__in=ids):
        assert dead.reason == "invalid envelope"
        assert "time" in dead.error
    assert not LoggedEvent.objects.filter(event_id__in=ids).exists()


@pytest.mark.parametrize("url", ["/api/thanks/", "/api/employees/"])
def test_a_body_bigger_than_the_api_takes_is_a_413(admin_client, settings, url):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"message": "x" * 2000})
    response = admin_client.post(url, data=body, content_type="application/json")
    assert response.status_code == 413
    assert "bigger than 1000 bytes" in response.json()["detail"]
