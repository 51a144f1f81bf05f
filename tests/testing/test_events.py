"""The harness's event factories make a valid event of every registered type."""

import json
from datetime import UTC, datetime

import pytest

from portal.messaging.contracts import CONTRACTS, validate_event
from portal.testing.events import EVENT_TYPES, cloud_event, event_data


def test_every_registered_contract_has_a_factory():
    assert {type_ for type_, _ in CONTRACTS} == set(EVENT_TYPES)


@pytest.mark.parametrize("type_", EVENT_TYPES)
@pytest.mark.parametrize("n", [0, 1, 123])
def test_the_factory_event_of_each_type_is_valid(type_, n):
    event = cloud_event(type_, n=n)
    assert json.loads(json.dumps(event)) == event
    validated = validate_event(event).as_json()
    assert (validated["type"], validated["data"]) == (type_, event_data(type_, n))


def test_attributes_and_data_can_be_chosen():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = cloud_event(
        "thanks.sent",
        source="/hr",
        event_id="e-1",
        time=when,
        data={**event_data("thanks.sent", 5), "message": "Merci"},
        dataschemaversion=1,
    )
    assert (event["id"], event["source"], event["time"]) == (
        "e-1",
        "/hr",
        when.isoformat(),
    )
    assert event["data"]["message"] == "Merci"
    assert validate_event(event).as_json()["data"]["from_name"] == "Person 5"


def test_each_event_gets_its_own_id():
    assert cloud_event()["id"] != cloud_event()["id"]


def test_an_unknown_type_has_no_factory():
    with pytest.raises(ValueError, match="employee.promoted"):
        event_data("employee.promoted")
