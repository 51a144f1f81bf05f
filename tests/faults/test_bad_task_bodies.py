"""Task messages whose JSON body is not Celery's ``[args, kwargs, embed]``.

Celery unpacks the body in the worker's main process, outside its own handling
of invalid tasks: a ``ValueError`` there is an "Unrecoverable error" and the
whole worker exits (and the next one, on redelivery). Such a message must be
dead-lettered like any other malformed one while the worker goes on.
"""

import json
import uuid

import pytest

from bench.faults.counting import count, wait_drained
from bench.faults.scenarios import valid_event
from feed.subscriptions import FEED
from portal.testing.broker import Publisher, RawMessage

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    "body",
    [{"not": "a task body"}, [["only args"]], "a string"],
    ids=["object", "one-element list", "string"],
)
def test_a_task_body_that_is_not_args_kwargs_embed_is_dead_lettered(lab, body):
    marker = str(uuid.uuid4())
    event = valid_event(1)
    headers = {"task": FEED.task, "id": marker, "lang": "py"}
    expected = {FEED.name: {event["id"]}}
    with lab.worker("worker", queues=[FEED.queue]) as worker:
        with Publisher() as publisher:
            publisher.raw(
                RawMessage(
                    json.dumps(body).encode(), routing_key=FEED.queue, headers=headers
                )
            )
            publisher.events(FEED, [event])
        wait_drained(expected, {marker}, timeout=20, give_up=worker.crashed)
        alive = not worker.crashed()
    outcome = count(
        "bad body",
        expected=expected,
        dead={FEED.name: [marker]},
        drain_seconds=0,
    )
    assert alive, "the worker exited"
    feed = outcome[FEED.name]
    assert (feed.applied, feed.dead_lettered, feed.lost) == (1, 1, 0)
