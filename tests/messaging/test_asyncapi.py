"""The AsyncAPI document and docs/events.md come from the contract registry."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.messaging import asyncapi, contracts, topology

ROOT = Path(__file__).resolve().parents[2]


def test_the_served_asyncapi_document_describes_every_registered_type(client):
    response = client.get("/api/asyncapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc == asyncapi.asyncapi()
    assert doc["asyncapi"] == "2.6.0"
    types = {type_ for type_, _ in contracts.EVENT_TYPES}
    assert set(doc["channels"]) == types
    for (type_, version), model in contracts.EVENT_TYPES.items():
        channel = doc["channels"][type_]
        exchange = channel["bindings"]["amqp"]["exchange"]
        assert (exchange["name"], exchange["type"]) == (
            topology.EVENTS_EXCHANGE,
            "topic",
        )
        name = f"{type_}.v{version}"
        payload = doc["components"]["schemas"][name]
        assert payload["properties"]["type"] == {
            "const": type_,
            "description": "The event type.",
        }
        assert payload["properties"]["data"] == model.model_json_schema()
        assert set(payload["required"]) >= {"specversion", "id", "source", "data"}


def test_a_new_type_in_the_registry_shows_up_in_both_documents(monkeypatch):
    class Promoted(contracts._Data):
        employee_id: int
        rank: str

    monkeypatch.setitem(contracts.EVENT_TYPES, ("employee.promoted", 2), Promoted)
    assert "employee.promoted" in asyncapi.asyncapi()["channels"]
    assert "### `employee.promoted` (version 2)" in asyncapi.events_markdown()


def test_the_examples_in_the_docs_satisfy_the_contract():
    for type_, version in contracts.EVENT_TYPES:
        contracts.validate_event(asyncapi.example_event(type_, version))


def test_docs_events_md_is_up_to_date():
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
