"""The contract refuses, at the door, what the database could not store.

Each case here once passed validation and then failed inside a consumer's
batch transaction (PostgreSQL refusing the value), taking the rest of the
batch with it. Refused up front, it gets a precise reason instead; what is
accepted at the edges really is storable.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from feed.models import FeedEvent
from feed.services import feed_events_apply
from portal.messaging.contracts import (
    REASON_INVALID_DATA,
    REASON_INVALID_ENVELOPE,
    REASON_UNKNOWN_TYPE,
    ContractError,
    validate_event,
)
from tests.helpers import make_envelope


def refused(envelope) -> ContractError:
    with pytest.raises(ContractError) as caught:
        validate_event(envelope)
    return caught.value


def messages(error: ContractError) -> str:
    return str(error)


@pytest.mark.parametrize(
    "time",
    [
        "2024-06-01T12:00:00+23:59",
        "2024-06-01T12:00:00-16:00",
        "2024-06-01T12:00:00+15:00",
        "9999-12-31T23:59:59-23:59",
    ],
)
def test_a_time_offset_no_zone_uses_is_refused(time):
    error = refused(make_envelope(time=time))
    assert error.reason == REASON_INVALID_ENVELOPE
    assert error.errors[0]["loc"] == ["time"]
    assert "offset" in messages(error)


@pytest.mark.parametrize(
    "time", ["2024-06-01T12:00:00+14:00", "2024-06-01T01:00:00-12:00"]
)
def test_the_offsets_real_zones_use_are_accepted(time):
    assert validate_event(make_envelope(time=time)).envelope.time.utcoffset()


@pytest.mark.parametrize(
    ("time", "words"),
    [
        ("9999-12-31T23:59:59Z", "future"),
        ("0001-01-01T00:00:00Z", "before"),
        ("1999-12-31T23:59:59Z", "before"),
        (1700000000, "RFC 3339"),
        (1700000000.5, "RFC 3339"),
        ("1700000000", "RFC 3339"),
        ("2024-06-01", "RFC 3339"),
        ("2024-06-01T12:00Z", "RFC 3339"),
        ("2024-06-01T12:00:00", "RFC 3339"),
        ("2024-13-01T12:00:00Z", "RFC 3339"),
        ("2024-06-01T12:00:00Z\n", "RFC 3339"),
    ],
)
def test_a_time_outside_the_window_or_not_rfc3339_is_refused(time, words):
    error = refused(make_envelope(time=time))
    assert error.reason == REASON_INVALID_ENVELOPE
    assert error.errors[0]["loc"] == ["time"]
    assert words in messages(error)


@pytest.mark.parametrize(
    ("time", "microsecond", "offset_minutes"),
    [
        ("2024-06-01T12:00:00.123456789Z", 123456, 0),
        ("2024-06-01t12:00:00.1234567+02:00", 123456, 120),
        ("2024-06-01T12:00:00.5z", 500000, 0),
        ("2024-06-01T12:00:00-03:30", 0, -210),
    ],
)
def test_finer_fractions_than_microseconds_are_cut_not_refused(
    time, microsecond, offset_minutes
):
    moment = validate_event(make_envelope(time=time)).envelope.time
    assert moment.microsecond == microsecond
    assert (moment.year, moment.month, moment.day, moment.second) == (2024, 6, 1, 0)
    assert moment.utcoffset() == timedelta(minutes=offset_minutes)


def test_the_future_window_is_configurable(settings):
    soon = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    later = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    assert validate_event(make_envelope(time=soon))
    assert "future" in messages(refused(make_envelope(time=later)))
    settings.EVENT_TIME_MAX_FUTURE_SECONDS = 3600
    assert validate_event(make_envelope(time=later))


def test_the_earliest_time_is_configurable(settings):
    old = "1995-05-05T10:00:00Z"
    assert "before 2000-01-01" in messages(refused(make_envelope(time=old)))
    settings.EVENT_TIME_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
    assert validate_event(make_envelope(time=old))


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_an_id_that_fits_no_bigint_is_refused(value):
    error = refused(
        make_envelope(data={**make_envelope()["data"], "employee_id": value})
    )
    assert error.reason == REASON_INVALID_DATA
    assert error.errors[0]["loc"] == ["data", "employee_id"]


def test_the_largest_bigint_id_is_accepted():
    data = {**make_envelope()["data"], "employee_id": 2**63 - 1}
    assert validate_event(make_envelope(data=data)).data.employee_id == 2**63 - 1


@pytest.mark.parametrize(
    ("change", "reason", "loc"),
    [
        (
            {"data": {"full_name": "Anna \ud800"}},
            REASON_INVALID_DATA,
            ["data", "full_name"],
        ),
        ({"id": "abc\udfff"}, REASON_INVALID_ENVELOPE, ["id"]),
        ({"source": "/hr\x00"}, REASON_INVALID_ENVELOPE, ["source"]),
        (
            {"data": {"full_name": "An\x00na"}},
            REASON_INVALID_DATA,
            ["data", "full_name"],
        ),
    ],
)
def test_text_postgresql_cannot_hold_is_refused(change, reason, loc):
    envelope = make_envelope()
    for key, value in change.items():
        if key == "data":
            envelope["data"] = {**envelope["data"], **value}
        else:
            envelope[key] = value
    error = refused(envelope)
    assert error.reason == reason
    assert error.errors[0]["loc"] == loc


def test_an_event_nested_too_deeply_is_refused():
    deep: object = "x"
    for _ in range(200):
        deep = {"a": deep}
    error = refused(make_envelope(data={**make_envelope()["data"], "extra": deep}))
    assert error.reason == REASON_INVALID_DATA
    assert "nested" in messages(error)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Bad-Name", "x"),
        ("waytoolongextensionname", "x"),
        ("nested", {"a": 1}),
        ("listed", [1, 2]),
        ("huge", "x" * 5000),
        ("bigint", 2**64),
    ],
)
def test_an_extension_attribute_outside_cloudevents_rules_is_refused(name, value):
    error = refused(make_envelope(**{name: value}))
    assert error.reason == REASON_INVALID_ENVELOPE
    assert error.errors[0]["loc"] == [name]


def test_extension_attributes_within_the_rules_are_kept():
    event = validate_event(make_envelope(tenant="acme", priority=3, urgent=True))
    body = event.as_json()
    assert (body["tenant"], body["priority"], body["urgent"]) == ("acme", 3, True)


@pytest.mark.parametrize("version", ["²", "١", "3\u0663", " 1", "+1", "-1"])
def test_a_version_that_is_not_plain_digits_is_an_unknown_version(version):
    error = refused(make_envelope(dataschemaversion=version))
    assert error.reason == REASON_UNKNOWN_TYPE


@pytest.mark.parametrize("source", ["/hr/../portal/registrar", "/hr/./x", "..", "/a b"])
def test_a_source_with_dot_segments_or_spaces_is_refused(source):
    error = refused(make_envelope(source=source))
    assert error.reason == REASON_INVALID_ENVELOPE
    assert error.errors[0]["loc"] == ["source"]


@pytest.mark.real_stack
@pytest.mark.django_db
def test_what_is_accepted_at_the_edges_is_stored_by_postgresql():
    """The bounds are not only strict enough but loose enough: every edge
    value the contract accepts goes into the feed table."""
    data = make_envelope()["data"]
    edges = [
        make_envelope(time="2024-06-01T12:00:00+14:00"),
        make_envelope(time="2024-06-01T12:00:00-14:00"),
        make_envelope(time="2000-01-01T00:00:00Z"),
        make_envelope(time=(datetime.now(UTC) + timedelta(minutes=4)).isoformat()),
        make_envelope(data={**data, "employee_id": 2**63 - 1}),
        make_envelope(data={**data, "full_name": "é" * 300}),
        make_envelope(id="i" * 200, source="/" + "s" * 199),
        make_envelope(tenant="t" * 2048),
    ]
    edges = json.loads(json.dumps(edges))
    result = feed_events_apply(envelopes=edges)
    assert (result.created, result.dead_lettered) == (len(edges), 0)
    assert FeedEvent.objects.count() == len(edges)
