"""The AsyncAPI document and docs/events.md come from the contract registry
and the subscriptions."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pydantic import StrictStr

from portal.messaging import asyncapi, contracts, subscriptions, topology
from portal.testing.subscriber_app.subscriptions import AUDIT

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def portal_subscribers_only() -> Iterator[None]:
    """The registry as the portal has it, without the tests' own subscriber
    and with onboarding's (switched off in the tests unless asked for)."""
    from tests.onboarding.conftest import ONBOARDING_SUBSCRIPTIONS

    subscriptions.subscription_unregister(AUDIT.name)
    for subscription in ONBOARDING_SUBSCRIPTIONS:
        subscriptions.subscription_register(subscription)
    try:
        yield
    finally:
        for subscription in ONBOARDING_SUBSCRIPTIONS:
            subscriptions.subscription_unregister(subscription.name)
        subscriptions.subscription_register(AUDIT)


def test_the_served_asyncapi_document_describes_every_registered_type(client):
    response = client.get("/api/asyncapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc == asyncapi.asyncapi()
    assert doc["asyncapi"] == "2.6.0"
    types = {type_ for type_, _ in contracts.EVENT_TYPES}
    assert set(doc["channels"]) == {
        f"{exchange}/{type_}"
        for type_ in types
        for exchange in (topology.EVENTS_EXCHANGE, topology.BROADCAST_EXCHANGE)
    }
    for (type_, version), model in contracts.EVENT_TYPES.items():
        inbound = doc["channels"][f"{topology.EVENTS_EXCHANGE}/{type_}"]
        outbound = doc["channels"][f"{topology.BROADCAST_EXCHANGE}/{type_}"]
        for channel, exchange_name, operation in (
            (inbound, topology.EVENTS_EXCHANGE, "publish"),
            (outbound, topology.BROADCAST_EXCHANGE, "subscribe"),
        ):
            exchange = channel["bindings"]["amqp"]["exchange"]
            assert (exchange["name"], exchange["type"]) == (exchange_name, "topic")
            assert operation in channel
        name = f"{type_}.v{version}"
        payload = doc["components"]["schemas"][name]
        assert payload["properties"]["type"] == {
            "const": type_,
            "description": "The event type.",
        }
        assert payload["properties"]["data"] == model.model_json_schema()
        assert set(payload["required"]) >= {"specversion", "id", "source", "data"}


def test_the_document_lists_the_subscribers_inside_the_portal(client):
    doc = client.get("/api/asyncapi.json").json()
    listed = {s["name"]: s for s in doc["x-portal-subscribers"]}
    assert set(listed) == {s.name for s in subscriptions.subscriptions()}
    assert listed["feed"]["task"] == "feed.apply_events"
    assert listed["feed"]["spreadOverMessages"] == 1
    assert listed["audit"]["patterns"] == ["employee.*"]
    registered = doc["channels"][f"{topology.EVENTS_EXCHANGE}/employee.registered"]
    assert "feed, audit" in registered["description"]
    thanks = doc["channels"][f"{topology.EVENTS_EXCHANGE}/thanks.sent"]
    assert "audit" not in thanks["description"]


def test_a_new_type_in_the_registry_shows_up_in_both_documents(monkeypatch):
    class Promoted(contracts.EventData):
        employee_id: contracts.Id
        rank: StrictStr

    monkeypatch.setattr(contracts, "EVENT_TYPES", dict(contracts.EVENT_TYPES))
    monkeypatch.setattr(contracts, "CONTRACTS", dict(contracts.CONTRACTS))
    monkeypatch.setattr(contracts, "_TYPED_ENVELOPES", dict(contracts._TYPED_ENVELOPES))
    contracts.contract_register("employee.promoted", 2, Promoted, owner="registrar")
    channels = asyncapi.asyncapi()["channels"]
    assert f"{topology.BROADCAST_EXCHANGE}/employee.promoted" in channels
    assert "### `employee.promoted` (version 2)" in asyncapi.events_markdown()


def test_a_contract_cannot_change_in_place():
    class Other(contracts.EventData):
        whatever: StrictStr

    with pytest.raises(ValueError, match="registered already"):
        contracts.contract_register("employee.registered", 1, Other, owner="x")


def test_the_examples_in_the_docs_satisfy_the_contract():
    for type_, version in contracts.EVENT_TYPES:
        contracts.validate_event(asyncapi.example_event(type_, version))


def test_docs_events_md_is_up_to_date(portal_subscribers_only):
    """Regenerate with `manage.py events_doc` when the registry changes."""
    assert (ROOT / "docs" / "events.md").read_text() == asyncapi.events_markdown()
    call_command("events_doc", "--check")


def test_events_doc_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "events.md"
    stale.write_text("# old\n")
    with pytest.raises(CommandError, match="out of date"):
        call_command("events_doc", "--check", "--output", str(stale))
    call_command("events_doc", "--output", str(stale))
    call_command("events_doc", "--check", "--output", str(stale))
