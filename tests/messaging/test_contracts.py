"""The event contract: what is accepted and why the rest is refused."""

import json

import pytest
from pydantic import ValidationError

from portal.messaging.contracts import (
    EVENT_TYPES,
    REASON_INVALID_DATA,
    REASON_INVALID_ENVELOPE,
    REASON_UNKNOWN_TYPE,
    ContractError,
    Envelope,
    _raw_version,
    build_event,
    validate_event,
)
from tests.helpers import make_envelope


def test_a_valid_event_round_trips_through_json():
    event = validate_event(make_envelope())
    again = validate_event(json.loads(json.dumps(event.as_json())))
    assert again.as_json() == event.as_json()
    assert again.envelope.version == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": ""}, REASON_INVALID_ENVELOPE),
        ({"specversion": "0.3"}, REASON_INVALID_ENVELOPE),
        ({"time": "yesterday"}, REASON_INVALID_ENVELOPE),
        ({"time": "2026-01-01T10:00:00"}, REASON_INVALID_ENVELOPE),  # no zone
        ({"data": "not an object"}, REASON_INVALID_ENVELOPE),
        ({"type": "employee.fired"}, REASON_UNKNOWN_TYPE),
        ({"dataschemaversion": 3}, REASON_UNKNOWN_TYPE),
        ({"data": {"employee_id": "7"}}, REASON_INVALID_DATA),
    ],
)
def test_invalid_events_are_refused_with_a_reason(change, reason):
    with pytest.raises(ContractError) as caught:
        validate_event(make_envelope(**change))
    assert caught.value.reason == reason
    assert str(caught.value).startswith(reason)


def test_missing_id_names_the_field():
    envelope = make_envelope()
    del envelope["id"]
    with pytest.raises(ContractError) as caught:
        validate_event(envelope)
    assert ["id"] in [error["loc"] for error in caught.value.errors]


def test_non_object_is_refused():
    with pytest.raises(ContractError) as caught:
        validate_event(["not", "an", "event"])
    assert caught.value.reason == REASON_INVALID_ENVELOPE


def test_version_may_come_from_dataschema():
    event = validate_event(make_envelope(dataschema="https://example.com/schemas/v1"))
    assert event.envelope.version == 1
    with pytest.raises(ContractError) as caught:
        validate_event(make_envelope(dataschema="https://example.com/schemas/v9"))
    assert caught.value.reason == REASON_UNKNOWN_TYPE


def test_build_event_fills_the_envelope():
    event = build_event(
        type="department.renamed",
        source="/portal/registrar",
        data={"department_id": 3, "old_name": "A", "new_name": "B"},
    ).as_json()
    assert event["specversion"] == "1.0"
    assert event["dataschemaversion"] == 1
    assert event["datacontenttype"] == "application/json"
    assert event["id"]
    assert event["time"].endswith("Z") or "+" in event["time"]


def test_a_nul_character_is_refused_anywhere_in_the_event():
    with pytest.raises(ContractError) as data_error:
        validate_event(make_envelope(data={**make_envelope()["data"], "team": "A\x00"}))
    assert data_error.value.reason == REASON_INVALID_DATA
    assert data_error.value.errors[0]["loc"] == ["data", "team"]
    with pytest.raises(ContractError) as envelope_error:
        validate_event(make_envelope(source="/x\x00"))
    assert envelope_error.value.reason == REASON_INVALID_ENVELOPE


@pytest.mark.parametrize(
    ("attributes", "version"),
    [
        ({}, 1),
        ({"dataschemaversion": 1}, 1),
        ({"dataschemaversion": "1"}, 1),
        ({"dataschemaversion": 2}, 2),
        ({"dataschemaversion": "v1"}, None),
        ({"dataschemaversion": True}, None),
        ({"dataschema": "https://example.com/schemas/employee/v3/"}, 3),
        ({"dataschema": "https://example.com/schemas/employee"}, None),
        ({"dataschemaversion": "1", "dataschema": "https://x/v2"}, 1),
    ],
)
def test_the_version_read_off_raw_attributes_is_the_envelopes(attributes, version):
    """The one-pass validation picks its model by the version read off the raw
    event: it must be what the validated envelope says, or none at all."""
    raw = {**make_envelope(), **attributes}
    assert _raw_version(raw) == version
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError:
        return  # refused by the envelope: the slow path explains why
    if version is not None:
        assert envelope.version == version


def test_the_one_pass_validation_gives_the_same_event_for_every_type():
    team = {"team_id": 2, "team": "T", "employee_id": 1, "full_name": "A"}
    samples = {
        "employee.registered": make_envelope()["data"],
        "employee.position_changed": {
            "employee_id": 1,
            "full_name": "Anna",
            "old_position": "A",
            "new_position": "B",
        },
        "team.member_joined": team,
        "team.member_left": team,
        "department.renamed": {"department_id": 3, "old_name": "X", "new_name": "Y"},
        "thanks.sent": {
            "from_employee_id": 1,
            "from_name": "A",
            "to_employee_id": 2,
            "to_name": "B",
            "message": "Thanks!",
        },
        # Onboarding's replies and HR's retry.
        "employee.welcome_sent": {
            "employee_id": 1,
            "email": "a@x",
            "message_id": "<m>",
        },
        "employee.account_provisioned": {"employee_id": 1, "account_id": "acct-1"},
        "employee.onboarding_failed": {
            "employee_id": 1,
            "step": "account",
            "reason": "refused",
        },
        "employee.onboarding_retry_requested": {
            "employee_id": 1,
            "full_name": "Anna",
            "steps": ["account"],
        },
    }
    assert set(samples) == {type_ for type_, _ in EVENT_TYPES}
    for type_, data in samples.items():
        raw = make_envelope(type=type_, data={**data, "extra": "ignored"})
        event = validate_event(raw)
        model = EVENT_TYPES[(type_, 1)]
        assert isinstance(event.data, model)
        assert event.data == model.model_validate(raw["data"])
        assert event.as_json()["data"] == data
        assert event.envelope.id == raw["id"]


def test_a_contract_error_passes_through_generator_context_managers():
    """contextlib sets ``__traceback__`` on what passes through it: the
    error must allow that."""
    import contextlib

    @contextlib.contextmanager
    def around():
        yield

    with pytest.raises(ContractError), around():
        validate_event(make_envelope(type="employee.fired"))
