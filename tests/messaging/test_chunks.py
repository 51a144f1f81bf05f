"""How the relay packs events into task messages: by count and by size."""

import json

from portal.messaging.publisher import _chunks


def pairs(*sizes: int) -> list[tuple[int, dict]]:
    """(id, envelope) pairs whose envelopes encode to about ``size`` bytes."""
    return [(i, {"pad": "x" * (size - 12)}) for i, size in enumerate(sizes)]


def encoded(chunk) -> int:
    return sum(len(json.dumps(e, separators=(",", ":"))) for _, e in chunk)


def test_events_are_packed_up_to_the_count():
    chunks = list(_chunks(pairs(*[100] * 7), 3, 10_000))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [pk for c in chunks for pk, _ in c] == list(range(7))


def test_a_message_never_grows_past_the_byte_budget():
    chunks = list(_chunks(pairs(*[400] * 10), 100, 1_000))
    assert [len(c) for c in chunks] == [2, 2, 2, 2, 2]
    assert all(encoded(c) <= 1_000 for c in chunks)


def test_an_event_bigger_than_the_budget_travels_alone():
    chunks = list(_chunks(pairs(100, 5_000, 100), 100, 1_000))
    assert [len(c) for c in chunks] == [1, 1, 1]
    assert chunks[1][0][0] == 1
