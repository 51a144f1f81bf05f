"""How the relay packs events into task messages: by count, by size, and
spread over a subscriber's processes."""

import orjson
import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.messaging.subscriptions import Subscription
from portal.messaging.task_messages import (
    encode_event,
    task_message,
    task_message_groups,
)


def subscription(
    *, per_message: int = 1000, max_bytes: int = 1024 * 1024, spread: int = 1
):
    return Subscription(
        name="packing",
        patterns=("#",),
        task="tests.packing",
        settings_prefix="PACKING_TEST",
        events_per_message=per_message,
        task_max_bytes=max_bytes,
        spread=spread,
    )


def items(*sizes: int) -> list[tuple[int, bytes]]:
    """(id, encoded event) pairs of about ``size`` bytes each."""
    return [
        (i, encode_event({"pad": "x" * (size - 12)})) for i, size in enumerate(sizes)
    ]


def test_events_are_packed_up_to_the_count():
    groups = list(task_message_groups(subscription(per_message=3), items(*[100] * 7)))
    assert [len(g) for g in groups] == [3, 3, 1]
    assert [pk for g in groups for pk, _ in g] == list(range(7))


def test_a_burst_is_spread_evenly_over_the_fewest_messages_asked_for():
    spread = subscription(per_message=100, spread=4)
    assert [len(g) for g in task_message_groups(spread, items(*[100] * 10))] == [
        3,
        3,
        3,
        1,
    ]
    # Fewer events than messages: one each.
    assert [len(g) for g in task_message_groups(spread, items(100, 100))] == [1, 1]
    # A backlog: the count per message still caps it.
    groups = list(task_message_groups(spread, items(*[100] * 1000)))
    assert [len(g) for g in groups] == [100] * 10
    assert [pk for g in groups for pk, _ in g] == list(range(1000))
    # Without a spread, a burst fills one message.
    single = subscription(per_message=100)
    assert [len(g) for g in task_message_groups(single, items(*[100] * 10))] == [10]


def test_the_spread_comes_from_settings_and_is_checked(settings):
    settings.PACKING_TEST_SPREAD = 2
    assert subscription(spread=4).min_messages == 2
    groups = task_message_groups(subscription(), iter(items(*[100] * 6)))
    assert [len(g) for g in groups] == [3, 3]
    settings.PACKING_TEST_SPREAD = 0
    with pytest.raises(ImproperlyConfigured, match="PACKING_TEST_SPREAD"):
        list(task_message_groups(subscription(), items(100)))


def test_a_message_never_grows_past_the_size_limit():
    limited = subscription(max_bytes=4096 + 1_000)
    groups = list(task_message_groups(limited, items(*[400] * 10)))
    assert [len(g) for g in groups] == [2, 2, 2, 2, 2]
    for group in groups:
        body = task_message(limited, [body for _, body in group]).body
        assert len(body) <= limited.max_message_bytes


def test_an_event_bigger_than_the_limit_travels_alone():
    limited = subscription(max_bytes=4096 + 1_000)
    groups = list(task_message_groups(limited, items(100, 5_000, 100)))
    assert [len(g) for g in groups] == [1, 1, 1]
    assert groups[1][0][0] == 1


def test_a_spliced_task_message_is_what_celery_would_send():
    """The relay splices encoded events into Celery's protocol-2 body: the
    worker must read exactly [[events], {}, embed]."""
    events = [{"id": "1", "n": 1}, {"id": "2", "text": "ü"}]
    message = task_message(subscription(), [encode_event(e) for e in events])
    args, kwargs, embed = orjson.loads(message.body)
    assert args == [events]
    assert kwargs == {}
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}
    assert message.headers["task"] == "tests.packing"
    assert message.headers["argsrepr"] == "[<2 events>]"
    assert message.properties["correlation_id"] == message.headers["id"]
    assert message.routing_key == "packing"
