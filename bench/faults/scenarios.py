"""The seven fault-injection scenarios, one implementation for the tests
(``tests/faults/test_scenarios.py``) and the benchmark (``bench/chaos.py``).

Each scenario sends a known set of events through real PostgreSQL, RabbitMQ,
worker and relay processes while injecting one fault, then counts every
event by id for each subscriber (the feed and ``audit``, who both take
``employee.registered``): applied, dead-lettered, lost, duplicated.

Events meant for the subscribers enter the portal as in production: through
the event log (``event_log_emit``; registrations in scenario 1, other
services' messages through the ingest queue in scenario 5) and reach both
subscribers through the relay. Only what is about the feed consumer's own
robustness is put on its queue directly: malformed task messages, events
mixed with malformed ones in one task message (scenario 5), the poison
message (scenario 7), and the second copies of scenario 6.

``scale`` multiplies the number of events (1.0 is the size the tests use).
"""

import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from feed.subscriptions import FEED
from portal.messaging import topology
from portal.messaging.amqp_publish import publisher_reset
from portal.messaging.eventlog import event_log_emit
from portal.messaging.models import LoggedEvent
from portal.messaging.relay import Relay
from portal.messaging.subscriptions import subscriptions
from portal.testing.broker import (
    Publisher,
    RawMessage,
    broker_connection,
    queue_depth,
    queues_delete,
)
from portal.testing.environment import SUBSCRIBER_APP, process_env
from portal.testing.events import cloud_event
from portal.testing.processes import RelayProcess, Worker
from portal.testing.proxy import FaultProxy
from portal.testing.rabbit_node import PrivateRabbitNode
from portal.testing.urls import database_url, host_port, via_port
from registrar.models import Employee
from registrar.services import department_create, employee_register

from .counting import (
    INGEST,
    SUBSCRIBERS,
    Outcome,
    applied_total,
    count,
    dead_letter_reasons,
    expected_from_log,
    wait_drained,
)

REASON_DELIVERY_LIMIT = "delivery limit"
# Short enough for a test, long enough (30 s in all) to outlast a 10 s outage.
RETRY_DELAYS = "2,4,8,16"
SOURCE = "/chaos"
EVENT_TYPE = "employee.registered"  # every subscriber takes it
_BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
# The scenarios' own queues: a worker other tests left running on the
# default queues must not take (and so hide the fate of) their messages.
QUEUE_PREFIX = "faults"


def lab_queue_settings(prefix: str = QUEUE_PREFIX) -> dict[str, str]:
    """Settings naming the scenarios' queues: ``<prefix>-<subscriber>`` and
    ``<prefix>-ingest`` (joined by "-": no queue may end with "." and
    another's name, see ``tests/messaging/conftest.py``)."""
    names = {
        f"{s.settings_prefix}_QUEUE": f"{prefix}-{s.name}" for s in subscriptions()
    }
    names["INGEST_QUEUE"] = f"{prefix}-ingest"
    return names


def _queues() -> list[str]:
    names = [q for s in subscriptions() for q in (s.queue, s.dead_letter_queue)]
    return [
        *names,
        topology.ingest_queue_name(),
        topology.ingest_dead_letter_queue_name(),
    ]


def prepare_broker() -> None:
    """Declare the topology and empty the scenarios' queues."""
    with broker_connection() as conn:
        topology.declare(conn)
        topology.declare_ingest(conn)
        channel = conn.channel()
        for name in _queues():
            channel.queue_purge(name)
        channel.close()


def remove_queues() -> None:
    """Delete the scenarios' queues; the ingest queue is bound to every key
    of ``portal.events`` and would otherwise keep a copy of every event."""
    queues_delete(_queues())


@dataclass
class Lab:
    """Where scenario processes write their logs, and how they are started:
    on this process's database, broker and queues, with the ``audit``
    subscriber installed and retry delays that outlast the outages."""

    log_dir: Path

    def env(self, **overrides: str) -> dict[str, str]:
        delays = {
            f"{s.settings_prefix}_RETRY_DELAYS": RETRY_DELAYS for s in subscriptions()
        }
        # A database outage is waited out 2 s at a time.
        delays["WORKER_OUTAGE_RETRY_SECONDS"] = "2"
        return process_env(extra_apps=(SUBSCRIBER_APP,), **{**delays, **overrides})

    def worker(
        self, name: str, *, env: dict[str, str] | None = None, **kwargs: Any
    ) -> Worker:
        """A worker consuming every subscriber's queue (``queues=`` for some)."""
        return Worker(self.env(**(env or {})), self.log_dir / f"{name}.log", **kwargs)

    def relay(self, name: str, **env: str) -> RelayProcess:
        env.setdefault("OUTBOX_RELAY_GRACE_SECONDS", "0.5")
        env.setdefault("OUTBOX_RELAY_INTERVAL_SECONDS", "0.2")
        return RelayProcess(self.env(**env), self.log_dir / f"{name}.log")


def per_message(events: int) -> dict[str, str]:
    """Settings (or env) packing at most ``events`` events per task message
    for every subscriber: many small messages, so a kill hits some mid-way."""
    return {
        f"{s.settings_prefix}_EVENTS_PER_MESSAGE": str(events) for s in subscriptions()
    }


def n_of(base: int, scale: float) -> int:
    return max(10, int(base * scale))


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(interval)


@contextmanager
def proxy_to(url: str, default_port: int) -> Iterator[FaultProxy]:
    with FaultProxy(*host_port(url, default_port)) as proxy:
        yield proxy


def valid_event(n: int, *, event_id: str | None = None) -> dict[str, Any]:
    """The n-th valid ``employee.registered`` CloudEvent of a scenario."""
    return cloud_event(
        EVENT_TYPE,
        n=n,
        source=SOURCE,
        event_id=event_id,
        time=_BASE_TIME + timedelta(seconds=n),
    )


def log_events(events: Sequence[dict[str, Any]], chunk: int = 1000) -> list[str]:
    """Log ``events`` as the portal logs its own (``event_log_emit``), for
    the relay to route; nothing is published from here."""
    ids = []
    with override_settings(OUTBOX_PUBLISH_MODE="off"):
        for start in range(0, len(events), chunk):
            with transaction.atomic():
                for event in events[start : start + chunk]:
                    event_log_emit(
                        type=event["type"],
                        data=event["data"],
                        source=event["source"],
                        time=datetime.fromisoformat(event["time"]),
                        event_id=event["id"],
                    )
                    ids.append(event["id"])
    return ids


def relay_drain(**overrides: Any) -> int:
    """Route every pending row from this process, as the relay would."""
    with override_settings(**overrides):
        relay = Relay(grace=0)
        total = 0
        while sent := relay.drain():
            total += sent
        return total


def everyone(ids: Iterable[str]) -> dict[str, set[str]]:
    """The same ids expected of every subscriber."""
    ids = set(ids)
    return {name: set(ids) for name in SUBSCRIBERS}


# --- 1 ---------------------------------------------------------------------------


def broker_outage(lab: Lab, scale: float = 1.0, outage: float = 4.0) -> Outcome:
    """RabbitMQ unreachable (a TCP proxy cuts every connection) for part of a
    stream of registrations: every registration succeeds; the fast path and a
    relay process publish through the proxy; after recovery all events reach
    both subscribers."""
    n = n_of(1000, scale)
    department = department_create(name="Chaos")
    slowest = 0.0
    with proxy_to(settings.CELERY_BROKER_URL, 5672) as proxy:
        through_proxy = via_port(settings.CELERY_BROKER_URL, proxy.port)
        with (
            lab.worker("s1-worker"),
            lab.relay("s1-relay", CELERY_BROKER_URL=through_proxy),
            override_settings(
                OUTBOX_PUBLISH_MODE="thread", CELERY_BROKER_URL=through_proxy
            ),
        ):
            cut_at, restore_at = n // 5, (n * 7) // 10
            cut_started = 0.0
            for i in range(n):
                if i == cut_at:
                    proxy.cut()
                    cut_started = time.monotonic()
                if i == restore_at:
                    time.sleep(max(0.0, outage - (time.monotonic() - cut_started)))
                    proxy.restore()
                    recovered = time.monotonic()
                    recovered_at = timezone.now()
                started = time.monotonic()
                employee_register(
                    full_name=f"Person {i}",
                    email=f"person{i}@chaos.example",
                    position="Engineer",
                    department=department,
                )
                slowest = max(slowest, time.monotonic() - started)
            registered = Employee.objects.filter(
                email__endswith="@chaos.example"
            ).count()
            expected = expected_from_log()
            wait_drained(expected, timeout=60 + n / 50)
            drained = time.monotonic() - recovered
            held_back = LoggedEvent.objects.filter(
                published_at__gt=recovered_at
            ).count()
    outcome = count("1 broker unreachable", expected=expected, drain_seconds=drained)
    outcome.notes.append(f"{registered}/{n} registrations succeeded")
    outcome.notes.append(f"slowest registration {slowest * 1000:.0f} ms")
    outcome.notes.append(
        f"{held_back} events published only after recovery; "
        f"{proxy.refused} connections refused during the outage"
    )
    outcome.extra = {"registered": registered, "expected": n, "held_back": held_back}
    return outcome


# --- 2 ---------------------------------------------------------------------------


def worker_killed(lab: Lab, scale: float = 1.0, kills: int = 4) -> Outcome:
    """Workers SIGKILLed mid-processing, pool processes and the whole worker in
    turn, while a relay routes logged events to both subscribers; a
    supervisor restarts the worker, Celery replaces pool processes."""
    n = n_of(5000, scale)
    ids = log_events([valid_event(i) for i in range(n)])
    expected = everyone(ids)
    total = n * len(SUBSCRIBERS)
    killed = []
    with (
        lab.relay("s2-relay", **per_message(5)),
        lab.worker("s2-worker", supervise=True) as worker,
    ):
        for k in range(kills):
            threshold = total * (k + 1) // (kills + 2)
            wait_until(
                lambda t=threshold: applied_total() >= t,
                timeout=120,
                what=f"{threshold} applications",
                interval=0.02,
            )
            if k % 2 == 0:
                killed.append(f"pool process {worker.kill_child()}")
            else:
                starts = worker.starts
                worker.kill()
                killed.append("whole worker")
                worker.wait_restarted(starts)
        last_kill = time.monotonic()
        wait_drained(expected, timeout=60 + n / 50)
        drained = time.monotonic() - last_kill
    outcome = count("2 worker SIGKILLed", expected=expected, drain_seconds=drained)
    outcome.notes.append(
        f"killed: {', '.join(killed)}; worker started {worker.starts}x"
    )
    outcome.extra = {"kills": killed, "starts": worker.starts}
    return outcome


# --- 3 ---------------------------------------------------------------------------


def database_outage(lab: Lab, scale: float = 1.0, outage: float = 10.0) -> Outcome:
    """PostgreSQL unreachable to the worker (a TCP proxy cuts it) while it
    consumes both subscribers' queues and a relay keeps routing: failed
    messages are retried after delays held by RabbitMQ."""
    n = n_of(2000, scale)
    events = [valid_event(i) for i in range(n)]
    expected = everyone(e["id"] for e in events)
    before, during = events[: n // 4], events[n // 4 :]
    with (
        proxy_to(database_url(), 5432) as proxy,
        lab.relay("s3-relay", **per_message(10)),
        lab.worker(
            "s3-worker", env={"DATABASE_URL": via_port(database_url(), proxy.port)}
        ) as worker,
    ):
        log_events(before)
        wait_until(
            lambda: applied_total() >= len(before),
            timeout=60,
            what="consumption under way",
            interval=0.02,
        )
        proxy.cut()
        cut = time.monotonic()
        log_events(during)
        time.sleep(max(0.0, outage - (time.monotonic() - cut)))
        proxy.restore()
        recovered = time.monotonic()
        wait_drained(expected, timeout=90 + n / 50)
        drained = time.monotonic() - recovered
        log = worker.log()
        retries = log.count("Transient error") + log.count("Database unreachable")
    outcome = count("3 database unreachable", expected=expected, drain_seconds=drained)
    outcome.notes.append(
        f"{outage:.0f} s outage, {retries} retries, {proxy.refused} refused connects"
    )
    outcome.extra = {"retries": retries}
    return outcome


# --- 4 ---------------------------------------------------------------------------


def broker_restart(lab: Lab, scale: float = 1.0) -> Outcome:
    """RabbitMQ restarted (``stop_app``/``start_app``) with every message still
    queued: the durable quorum queues and persistent messages survive.

    The broker restarted is a private node started for the scenario
    (``PrivateRabbitNode``), never the machine's own: the relay routes to it,
    its application is restarted, then a worker drains it.
    """
    n = n_of(1000, scale)
    ids = log_events([valid_event(i) for i in range(n)])
    expected = everyone(ids)
    names = {s.name: s.queue for s in subscriptions()}
    with (
        PrivateRabbitNode(lab.log_dir) as node,
        override_settings(CELERY_BROKER_URL=node.url),
    ):
        try:
            relay_drain(**per_message(10))
            queued = {name: queue_depth(q, url=node.url) for name, q in names.items()}
            node.stop_app()
            node.start_app()
            up = time.monotonic()
            after = wait_until(
                lambda: _depths_or_none(names, node.url),
                timeout=60,
                what="the queues are back",
                interval=0.5,
            )
            with lab.worker("s4-worker"):
                wait_drained(expected, timeout=60 + n / 50)
                drained = time.monotonic() - up
        finally:
            publisher_reset()  # this thread's connection to the node
    outcome = count("4 broker restarted", expected=expected, drain_seconds=drained)
    outcome.notes.append(
        "private node "
        + ", ".join(
            f"{name}: {queued[name]} messages queued before, {after[name]} after"
            for name in names
        )
    )
    outcome.extra = {"queued_before": queued, "queued_after": after}
    return outcome


def _depths_or_none(names: dict[str, str], url: str) -> dict[str, int] | None:
    try:
        return {name: queue_depth(q, url=url) for name, q in names.items()}
    except Exception:  # noqa: BLE001 - a queue's leader may still be electing
        return None


# --- 5 ---------------------------------------------------------------------------


def _marker() -> str:
    return str(uuid.uuid4())


def _bad_envelopes(i: int, marker: str) -> dict[str, Any] | str | list[Any]:
    """One malformed envelope, carrying ``marker`` so it can be found again."""
    good = valid_event(100_000 + i, event_id=marker)
    kind = i % 9
    if kind == 0:  # missing field
        del good["source"]
    elif kind == 1:  # wrong type in data
        good["data"]["employee_id"] = str(i)
    elif kind == 2:  # unknown type
        good["type"] = "employee.promoted_to_ceo"
    elif kind == 3:  # unknown version
        good["dataschemaversion"] = 7
    elif kind == 4:  # not a timestamp
        good["time"] = "yesterday"
    elif kind == 5:  # wrong specversion
        good["specversion"] = "0.3"
    elif kind == 6:  # missing data field
        del good["data"]["full_name"]
    elif kind == 7:  # not an object at all
        return ["not", "an", "event", marker]
    else:  # wrong type of the envelope itself
        good["data"] = f"data as a string {marker}"
    return good


def _huge_envelope(i: int, marker: str) -> dict[str, Any]:
    """Valid in every field, but far over any sane event size (1 MiB)."""
    event = valid_event(200_000 + i, event_id=marker)
    event["padding"] = "x" * (1024 * 1024)
    return event


def _feed_raw(body: bytes, **kwargs: Any) -> RawMessage:
    return RawMessage(body, routing_key=FEED.queue, **kwargs)


def _bad_raw(i: int, marker: str) -> RawMessage:
    """One malformed task message, as bytes on the feed queue."""
    task = {"task": FEED.task, "id": marker, "lang": "py"}
    if i % 50 == 49:  # a huge body of garbage (2 MiB)
        return _feed_raw(
            f"{marker} ".encode() + b"\xff" * (2 * 1024 * 1024), headers=task
        )
    kind = i % 5
    if kind == 0:  # not JSON
        return _feed_raw(f"\x00{{not json {marker}".encode(), headers=task)
    if kind == 1:  # wrong content type
        return _feed_raw(
            f"marker: {marker}".encode(), content_type="text/plain", headers=task
        )
    if kind == 2:  # JSON, but not a task body
        return _feed_raw(json.dumps({"marker": marker}).encode(), headers=task)
    if kind == 3:  # a task nobody has
        return _feed_raw(
            json.dumps([[marker], {}, {}]).encode(),
            headers={**task, "task": "feed.no_such_task"},
        )
    # a task message whose args are not a list of events
    return _feed_raw(json.dumps([marker, {}, {}]).encode(), headers=task)


def _ingested(body: bytes, marker: str, content_type: str) -> RawMessage:
    """A plain CloudEvents message as another service publishes it (straight
    to the ingest queue: ``portal.events`` would copy it to every queue bound
    there)."""
    return RawMessage(
        body,
        content_type=content_type,
        exchange="",
        routing_key=topology.ingest_queue_name(),
        properties={"message_id": marker, "app_id": SOURCE},
    )


def _good_ingested(event: dict[str, Any]) -> RawMessage:
    return _ingested(
        json.dumps(event).encode(), event["id"], "application/cloudevents+json"
    )


def _bad_ingested(i: int, marker: str) -> RawMessage:
    """One malformed message from another service."""
    ce = "application/cloudevents+json"
    event = valid_event(300_000 + i, event_id=marker)
    if i % 50 == 49:  # huge (1 MiB)
        return _ingested(json.dumps(_huge_envelope(i, marker)).encode(), marker, ce)
    kind = i % 6
    if kind == 0:
        return _ingested(f"{{not json {marker}".encode(), marker, ce)
    if kind == 1:
        return _ingested(json.dumps(event).encode(), marker, "text/plain")
    if kind == 2:
        del event["time"]
    elif kind == 3:
        event["type"] = "employee.teleported"
    elif kind == 4:
        event["data"]["employee_id"] = [i]
    else:
        return _ingested(json.dumps([event]).encode(), marker, ce)
    return _ingested(json.dumps(event).encode(), marker, ce)


def malformed_messages(lab: Lab, scale: float = 1.0) -> Outcome:
    """Malformed messages of every kind mixed into valid ones: the worker never
    dies, every malformed one is in the dead-letter store with a reason, every
    valid one reaches the subscribers it was meant for.

    Malformed (as many as valid): 40 % events inside task messages on the
    feed's queue next to valid ones (a few huge ones alone), 30 % whole task
    messages on the feed's queue that are broken, 30 % messages from other
    services (the ingest queue). Valid: 20 % from other services and 40 %
    logged by the portal (both reach both subscribers), 40 % in the feed's
    task messages beside the malformed events (the feed's only).
    """
    n = n_of(1000, scale)
    rng = random.Random(5)
    valid = [valid_event(i) for i in range(n)]
    from_services = valid[: n // 5]
    logged = valid[n // 5 : n * 3 // 5]
    direct = valid[n * 3 // 5 :]
    feed_markers: list[str] = []
    ingest_markers: list[str] = []
    plan: list[tuple[str, Any]] = []
    bad_envelopes = []
    for i in range(n * 4 // 10):
        marker = _marker()
        feed_markers.append(marker)
        if i % 50 == 49:
            plan.append(("task", [_huge_envelope(i, marker)]))
        else:
            bad_envelopes.append(_bad_envelopes(i, marker))
    for i in range(n * 3 // 10):
        marker = _marker()
        feed_markers.append(marker)
        plan.append(("raw", _bad_raw(i, marker)))
    for i in range(n - len(feed_markers)):
        marker = _marker()
        ingest_markers.append(marker)
        plan.append(("raw", _bad_ingested(i, marker)))
    plan.extend(("raw", _good_ingested(e)) for e in from_services)
    plan.extend(("log", [e]) for e in logged)
    mixed = direct + bad_envelopes
    rng.shuffle(mixed)
    plan.extend(("task", list(batch)) for batch in _chunks(mixed, 5))
    rng.shuffle(plan)
    both = {e["id"] for e in from_services + logged}
    expected = {FEED.name: both | {e["id"] for e in direct}}
    expected.update({name: both for name in SUBSCRIBERS if name != FEED.name})
    markers = feed_markers + ingest_markers
    with (
        lab.worker("s5-worker") as worker,
        lab.relay("s5-relay", **per_message(5)),
    ):
        pid = worker.pid
        started = time.monotonic()
        with Publisher() as publisher:
            for kind, item in plan:
                if kind == "task":
                    publisher.events(FEED, item)
                elif kind == "log":
                    log_events(item)
                else:
                    publisher.raw(item)
        wait_drained(expected, markers, timeout=60 + n / 20, give_up=worker.crashed)
        drained = time.monotonic() - started
        alive = not worker.crashed() and worker.pid == pid
        lost_children = worker.lost_children()
    outcome = count(
        "5 malformed messages",
        expected=expected,
        dead={FEED.name: feed_markers, INGEST: ingest_markers},
        drain_seconds=drained,
    )
    reasons = dead_letter_reasons(markers)
    outcome.extra = {
        "worker_survived": alive,
        "lost_children": lost_children,
        "without_reason": sum(1 for m in markers if not reasons.get(m, "").strip()),
        "malformed": len(markers),
        "valid": len(valid),
        "reasons": dict(_tally(reasons.values())),
    }
    if not alive:
        outcome.notes.append(
            "THE WORKER DIED (Celery: 'Unrecoverable error'); counting stopped "
            "there, so 'lost' means not processed before the crash"
        )
    outcome.notes.append(
        f"{len(valid)} valid ({len(direct)} of them in the feed's task messages "
        f"only) + {len(markers)} malformed; worker survived: {alive}; reasons: "
        + ", ".join(f"{r} {c}" for r, c in sorted(_tally(reasons.values()).items()))
    )
    return outcome


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _tally(values) -> dict[str, int]:
    found: dict[str, int] = {}
    for value in values:
        found[value] = found.get(value, 0) + 1
    return found


# --- 6 ---------------------------------------------------------------------------


def published_twice(lab: Lab, scale: float = 1.0) -> Outcome:
    """The same events delivered twice to every subscriber, by the relay and
    again by hand, in different batches: each subscriber applies each once."""
    n = n_of(1000, scale)
    ids = log_events([valid_event(i) for i in range(n)])
    expected = everyone(ids)
    envelopes = list(
        LoggedEvent.objects.order_by("id").values_list("envelope", flat=True)
    )
    with lab.worker("s6-worker"):
        started = time.monotonic()
        relay_drain()
        with Publisher() as publisher:
            for subscription in subscriptions():
                for batch in _chunks(envelopes[::-1], 7):
                    publisher.events(subscription, batch)
        wait_drained(expected, timeout=60 + n / 25)
        drained = time.monotonic() - started
    return count("6 published twice", expected=expected, drain_seconds=drained)


# --- 7 ---------------------------------------------------------------------------


def poison_message(lab: Lab, scale: float = 1.0) -> Outcome:
    """A message on the feed's queue that kills the worker process handling
    it, every time, among logged events routed to both subscribers: the pool
    process is replaced each time, every event reaches both subscribers, and
    the poison ends in the dead-letter store after the queue's delivery
    limit."""
    n = n_of(500, scale)
    events = [valid_event(i) for i in range(n)]
    expected = everyone(e["id"] for e in events)
    marker = _marker()
    with lab.worker("s7-worker", app="bench.faults.poison") as worker:
        started = time.monotonic()
        log_events(events[: n // 2])
        relay_drain(**per_message(5))
        with Publisher() as publisher:
            publisher.task(
                "chaos.poison", [marker], queue=topology.subscription_queue(FEED)
            )
        log_events(events[n // 2 :])
        relay_drain(**per_message(5))
        wait_drained(expected, {marker}, timeout=90 + n / 25)
        drained = time.monotonic() - started
        alive = not worker.crashed()
        deaths = worker.lost_children()
    outcome = count(
        "7 poison message",
        expected=expected,
        dead={FEED.name: [marker]},
        drain_seconds=drained,
    )
    reason = dead_letter_reasons([marker]).get(marker)
    outcome.extra = {"reason": reason, "deaths": deaths, "worker_alive": alive}
    outcome.notes.append(
        f"pool process killed {deaths}x by the poison; dead-lettered as {reason!r}"
    )
    return outcome


SCENARIOS = {
    "broker-outage": broker_outage,
    "worker-killed": worker_killed,
    "database-outage": database_outage,
    "broker-restart": broker_restart,
    "malformed": malformed_messages,
    "published-twice": published_twice,
    "poison": poison_message,
}
