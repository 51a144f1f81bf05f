"""Message bodies read through orjson mean what kombu's own decoder reads."""

import json
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from kombu.exceptions import DecodeError
from kombu.serialization import dumps, loads
from kombu.utils import json as kombu_json

import portal.celery  # noqa: F401 - installs the codec, as every process does
from portal.messaging.json_codec import exact_loads, message_loads
from portal.testing.events import cloud_event

BODIES = [
    b"[[[" + json.dumps(cloud_event("employee.registered")).encode() + b"]],{},{}]",
    "[[], {}, {}]",
    b'{"a": 1.5, "b": [true, false, null], "c": "\\u00e9\\ud83d\\ude00"}',
    b'{"n": 123456789012345678901234567890}',  # beyond 64 bits
    b'{"n": 18446744073709551615, "m": -9223372036854775808}',  # 64 bits: orjson
    b'{"m": -9223372036854775809}',  # 19 digits, below 64 bits signed
    b'{"m": -9999999999999999999, "n": 9999999999999999999}',
    b'{"x": NaN, "y": -Infinity}',  # not JSON; the standard library reads it
    b'{"s": "\\udc00"}',  # an escaped unpaired surrogate
    '["\ud800"]',  # text holding an unpaired surrogate itself
    '{"n": -123456789012345678901234567890}',  # beyond 64 bits, as text
    b'{"k": 1, "k": 2}',
    bytearray(b'{"a": [1, 2]}'),
    memoryview(b'{"a": {"b": {}}}'),
]


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_every_body_decodes_as_kombus_own_decoder_reads_it(body):
    assert same(message_loads(body), kombu_json.loads(body))


EVENT_BODIES = [
    b'{"x": 1E400}',  # infinity for the standard library, refused by orjson
    b'{"x": "\\ud800"}',
    b'{"x": NaN}',
    b'\xef\xbb\xbf{"x": 1}',  # a byte order mark
    '{"x": "\u00e9"}'.encode("utf-16"),
    b'{"m": -9223372036854775809, "n": 123456789012345678901234567890}',
    b'{"__type__": "datetime", "__value__": "2026-01-01T00:00:00"}',  # no hook
    json.dumps(cloud_event("employee.registered")).encode(),
]


@pytest.mark.parametrize("body", EVENT_BODIES, ids=range(len(EVENT_BODIES)))
def test_an_event_body_decodes_as_the_standard_library_reads_it(body):
    assert same(exact_loads(body), json.loads(body))


@pytest.mark.parametrize("body", [b'{"x": 1,}', b"\xff{}", b"[" * 5000])
def test_an_event_body_neither_reads_fails_with_the_standard_librarys_error(body):
    with pytest.raises((ValueError, RecursionError)) as expected:
        json.loads(body)
    with pytest.raises(expected.type):
        exact_loads(body)


def test_a_body_too_deep_for_either_fails_as_kombus_own():
    body = b"[" * 5000 + b"]" * 5000
    with pytest.raises(RecursionError):
        kombu_json.loads(body)
    with pytest.raises(RecursionError):
        message_loads(body)


def test_kombus_type_markers_still_become_dates_uuids_and_decimals():
    value = {
        "at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        "id": uuid.UUID(int=7),
        "amount": Decimal("1.10"),
    }
    content_type, encoding, body = dumps(value, serializer="json")
    assert "__type__" in body
    assert loads(body, content_type, encoding) == value
    assert loads(body.encode(), content_type, encoding) == value


def test_the_installed_decoder_is_ours_and_bad_bodies_still_fail_as_before():
    content_type = "application/json"
    assert loads(b'{"a": 1}', content_type, "utf-8") == {"a": 1}
    with pytest.raises(DecodeError) as ours:
        loads(b'{"a": ', content_type, "utf-8")
    with pytest.raises(ValueError, match="Expecting value") as theirs:
        kombu_json.loads(b'{"a": ')
    assert str(theirs.value) in str(ours.value)
