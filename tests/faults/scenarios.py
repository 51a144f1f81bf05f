"""The seven fault-injection scenarios, one implementation for the tests
(``tests/faults/test_scenarios.py``) and the benchmark (``bench/chaos.py``).

Each scenario sends a known set of events through real PostgreSQL, RabbitMQ
and worker processes while injecting one fault, then counts every event by id:
in the feed, dead-lettered, lost, duplicated. ``scale`` multiplies the number
of events (1.0 is the size the issue asks for; the tests use it).
"""

import json
import random
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from feed.models import FeedEvent
from feed.subscriptions import FEED
from portal.messaging import topology
from portal.messaging.eventlog import event_log_emit
from portal.messaging.models import LoggedEvent
from portal.messaging.relay import Relay
from registrar.models import Employee
from registrar.services import department_create, employee_register

from .proxy import FaultProxy
from .stack import (
    SOURCE,
    Outcome,
    Publisher,
    RawMessage,
    RelayProcess,
    Worker,
    chunks,
    count,
    database_url,
    dead_letter_reasons,
    host_port,
    process_env,
    publish_tasks,
    queue_depth,
    valid_event,
    via_port,
    wait_drained,
    wait_until,
)

REASON_DELIVERY_LIMIT = "delivery limit"
# The scenarios' own feed queue: a worker other tests left running on the
# default queue must not take (and so hide the fate of) their messages.
QUEUE = "feed.chaos"
INGEST_QUEUE = "feed.chaos.ingest"


@dataclass
class Lab:
    """Where scenario processes write their logs."""

    log_dir: Path

    def worker(self, name: str, **kwargs: Any) -> Worker:
        env = process_env(**kwargs.pop("env", {}))
        return Worker(env, self.log_dir / f"{name}.log", **kwargs)

    def relay(self, name: str, **env: str) -> RelayProcess:
        env.setdefault("OUTBOX_RELAY_GRACE_SECONDS", "1")
        env.setdefault("OUTBOX_RELAY_INTERVAL_SECONDS", "0.2")
        return RelayProcess(process_env(**env), self.log_dir / f"{name}.log")


def n_of(base: int, scale: float) -> int:
    return max(10, int(base * scale))


@contextmanager
def proxy_to(url: str, default_port: int) -> Iterator[FaultProxy]:
    with FaultProxy(*host_port(url, default_port)) as proxy:
        yield proxy


def emit_outbox_rows(n: int) -> list[str]:
    """Store ``n`` events in the outbox (not published: the relay's job)."""
    ids = []
    with override_settings(OUTBOX_PUBLISH_MODE="off"), transaction.atomic():
        for i in range(n):
            event = valid_event(i)
            event_log_emit(
                type=event["type"],
                data=event["data"],
                source=SOURCE,
                event_id=event["id"],
            )
            ids.append(event["id"])
    return ids


# --- 1 ---------------------------------------------------------------------------


def broker_outage(lab: Lab, scale: float = 1.0, outage: float = 4.0) -> Outcome:
    """RabbitMQ unreachable (a TCP proxy cuts every connection) for part of a
    stream of registrations: every registration succeeds; the fast path and a
    relay process publish through the proxy; all events reach the feed after
    recovery."""
    n = n_of(1000, scale)
    department = department_create(name="Chaos")
    slowest = 0.0
    with (
        proxy_to(settings.CELERY_BROKER_URL, 5672) as proxy,
        lab.worker("s1-worker"),
        lab.relay(
            "s1-relay",
            CELERY_BROKER_URL=via_port(settings.CELERY_BROKER_URL, proxy.port),
        ),
        override_settings(
            OUTBOX_PUBLISH_MODE="thread",
            CELERY_BROKER_URL=via_port(settings.CELERY_BROKER_URL, proxy.port),
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
        registered = Employee.objects.filter(email__endswith="@chaos.example").count()
        ids = set(LoggedEvent.objects.values_list("event_id", flat=True))
        wait_drained(ids, timeout=60 + n / 50)
        drained = time.monotonic() - recovered
        held_back = LoggedEvent.objects.filter(published_at__gt=recovered_at).count()
    outcome = count("1 broker unreachable", to_feed=ids, drain_seconds=drained)
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
    turn; a supervisor restarts the worker, Celery replaces pool processes."""
    n = n_of(5000, scale)
    events = [valid_event(i) for i in range(n)]
    ids = {e["id"] for e in events}
    publish_tasks(chunks(events, 5))
    killed = []
    with lab.worker("s2-worker", supervise=True) as worker:
        for k in range(kills):
            threshold = n * (k + 1) // (kills + 2)
            wait_until(
                lambda t=threshold: _feed_size() >= t,
                timeout=120,
                what=f"{threshold} events in the feed",
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
        wait_drained(ids, timeout=60 + n / 100)
        drained = time.monotonic() - last_kill
    outcome = count("2 worker SIGKILLed", to_feed=ids, drain_seconds=drained)
    outcome.notes.append(
        f"killed: {', '.join(killed)}; worker started {worker.starts}x"
    )
    outcome.extra = {"kills": killed, "starts": worker.starts}
    return outcome


def _feed_size() -> int:
    return FeedEvent.objects.count()


# --- 3 ---------------------------------------------------------------------------


def database_outage(lab: Lab, scale: float = 1.0, outage: float = 10.0) -> Outcome:
    """PostgreSQL unreachable to the worker (a TCP proxy cuts it) while it
    consumes: failed messages are retried after delays held by RabbitMQ."""
    n = n_of(2000, scale)
    events = [valid_event(i) for i in range(n)]
    ids = {e["id"] for e in events}
    before, during = events[: n // 4], events[n // 4 :]
    with proxy_to(database_url(), 5432) as proxy:
        db_url = via_port(database_url(), proxy.port)
        with lab.worker("s3-worker", env={"DATABASE_URL": db_url}) as worker:
            publish_tasks(chunks(before, 10))
            wait_until(
                lambda: _feed_size() >= len(before) // 2,
                timeout=60,
                what="consumption under way",
                interval=0.02,
            )
            proxy.cut()
            cut = time.monotonic()
            publish_tasks(chunks(during, 10))
            time.sleep(max(0.0, outage - (time.monotonic() - cut)))
            proxy.restore()
            recovered = time.monotonic()
            wait_drained(ids, timeout=90 + n / 100)
            drained = time.monotonic() - recovered
            retries = worker.log().count("Transient error")
    outcome = count("3 database unreachable", to_feed=ids, drain_seconds=drained)
    outcome.notes.append(
        f"{outage:.0f} s outage, {retries} retries, {proxy.refused} refused connects"
    )
    outcome.extra = {"retries": retries}
    return outcome


# --- 4 ---------------------------------------------------------------------------


def rabbitmqctl(*args: str, timeout: float = 120) -> None:
    subprocess.run(
        ["rabbitmqctl", *args], check=True, timeout=timeout, capture_output=True
    )


def broker_restart(lab: Lab, scale: float = 1.0) -> Outcome:
    """RabbitMQ restarted (``stop_app``/``start_app``) with every message still
    queued: the durable quorum queue and persistent messages survive."""
    n = n_of(1000, scale)
    ids = set(emit_outbox_rows(n))
    with override_settings(OUTBOX_EVENTS_PER_MESSAGE=10):
        relay = Relay(grace=0)
        while relay.drain():
            pass
    queued = queue_depth()
    try:
        rabbitmqctl("stop_app")
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
    up = time.monotonic()
    survived = wait_until(
        _depth_or_none, timeout=60, what="the feed queue is back", interval=0.5
    )
    with lab.worker("s4-worker"):
        wait_drained(ids, timeout=60 + n / 100)
        drained = time.monotonic() - up
    outcome = count("4 broker restarted", to_feed=ids, drain_seconds=drained)
    outcome.notes.append(
        f"{queued} messages queued before, {survived[0]} after restart"
    )
    outcome.extra = {"queued_before": queued, "queued_after": survived[0]}
    return outcome


def _depth_or_none() -> tuple[int] | None:
    try:
        return (queue_depth(),)
    except Exception:  # noqa: BLE001 - the queue's leader may still be electing
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


def _bad_raw(i: int, marker: str) -> RawMessage:
    """One malformed task message, as bytes on the feed queue."""
    task = {"task": FEED.task, "id": marker, "lang": "py"}
    if i % 50 == 49:  # a huge body of garbage (2 MiB)
        return RawMessage(
            f"{marker} ".encode() + b"\xff" * (2 * 1024 * 1024), headers=task
        )
    kind = i % 5
    if kind == 0:  # not JSON
        return RawMessage(f"\x00{{not json {marker}".encode(), headers=task)
    if kind == 1:  # wrong content type
        return RawMessage(
            f"marker: {marker}".encode(), content_type="text/plain", headers=task
        )
    if kind == 2:  # JSON, but not a task body
        return RawMessage(json.dumps({"marker": marker}).encode(), headers=task)
    if kind == 3:  # a task nobody has
        return RawMessage(
            json.dumps([[marker], {}, {}]).encode(),
            headers={**task, "task": "feed.no_such_task"},
        )
    # a task message whose args are not a list of events
    return RawMessage(json.dumps([marker, {}, {}]).encode(), headers=task)


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
    valid one is in the feed.

    Malformed: 40 % are events inside task messages next to valid ones (a few
    huge ones alone), 30 % whole task messages that are broken, 30 % messages
    from other services (the ingest queue). Valid: 80 % in task messages,
    20 % from other services.
    """
    n = n_of(1000, scale)
    rng = random.Random(5)
    valid = [valid_event(i) for i in range(n)]
    bad_markers: list[str] = []
    plan: list[tuple[str, Any]] = []
    bad_envelopes = []
    for i in range(n * 4 // 10):
        marker = _marker()
        bad_markers.append(marker)
        if i % 50 == 49:
            plan.append(("task", [_huge_envelope(i, marker)]))
        else:
            bad_envelopes.append(_bad_envelopes(i, marker))
    for i in range(n * 3 // 10):
        marker = _marker()
        bad_markers.append(marker)
        plan.append(("raw", _bad_raw(i, marker)))
    for i in range(n - len(bad_markers)):
        marker = _marker()
        bad_markers.append(marker)
        plan.append(("raw", _bad_ingested(i, marker)))
    from_services = n // 5
    plan.extend(("raw", _good_ingested(e)) for e in valid[:from_services])
    mixed = valid[from_services:] + bad_envelopes
    rng.shuffle(mixed)
    plan.extend(("task", batch) for batch in chunks(mixed, 5))
    rng.shuffle(plan)
    with lab.worker("s5-worker") as worker:
        pid = worker.pid
        started = time.monotonic()
        with Publisher() as publisher:
            for kind, item in plan:
                if kind == "task":
                    publisher.task(item)
                else:
                    publisher.raw(item)
        ids = {e["id"] for e in valid}
        wait_drained(ids, set(bad_markers), timeout=60 + n / 20, give_up=worker.crashed)
        drained = time.monotonic() - started
        alive = not worker.crashed() and worker.pid == pid
        lost_children = worker.lost_children()
    outcome = count(
        "5 malformed messages",
        to_feed=ids,
        to_dead=bad_markers,
        drain_seconds=drained,
    )
    reasons = dead_letter_reasons(bad_markers)
    outcome.extra = {
        "worker_survived": alive,
        "lost_children": lost_children,
        "without_reason": sum(1 for m in bad_markers if not reasons.get(m, "").strip()),
        "malformed": len(bad_markers),
        "valid": len(valid),
        "reasons": dict(Counter(reasons.values())),
    }
    if not alive:
        outcome.notes.append(
            "THE WORKER DIED (Celery: 'Unrecoverable error'); counting stopped "
            "there, so 'lost' means not processed before the crash"
        )
    outcome.notes.append(
        f"{len(valid)} valid + {len(bad_markers)} malformed; worker survived: "
        f"{alive}; reasons: "
        + ", ".join(f"{r} {c}" for r, c in sorted(Counter(reasons.values()).items()))
    )
    return outcome


# --- 6 ---------------------------------------------------------------------------


def published_twice(lab: Lab, scale: float = 1.0) -> Outcome:
    """The same events published twice, by the relay and by hand, in
    different batches: each appears once."""
    n = n_of(1000, scale)
    ids = emit_outbox_rows(n)
    envelopes = list(
        LoggedEvent.objects.order_by("id").values_list("envelope", flat=True)
    )
    with lab.worker("s6-worker"):
        started = time.monotonic()
        relay = Relay(grace=0)
        while relay.drain():
            pass
        again = envelopes[::-1]
        publish_tasks(chunks(again, 7))
        wait_drained(set(ids), timeout=60 + n / 50)
        drained = time.monotonic() - started
    return count("6 published twice", to_feed=ids, drain_seconds=drained)


# --- 7 ---------------------------------------------------------------------------


def poison_message(lab: Lab, scale: float = 1.0) -> Outcome:
    """A message that kills the worker process every time it is handled, among
    valid ones: the pool process is replaced each time, the valid events reach
    the feed, and the poison ends in the dead-letter store after the queue's
    delivery limit."""
    n = n_of(500, scale)
    events = [valid_event(i) for i in range(n)]
    ids = {e["id"] for e in events}
    marker = _marker()
    with lab.worker("s7-worker", app="tests.faults.poison") as worker:
        started = time.monotonic()
        with Publisher() as publisher:
            for batch in chunks(events[: n // 2], 5):
                publisher.task(batch)
            publisher.task([marker], name="chaos.poison")
            for batch in chunks(events[n // 2 :], 5):
                publisher.task(batch)
        wait_drained(ids, {marker}, timeout=90 + n / 50)
        drained = time.monotonic() - started
        alive = not worker.crashed()
        deaths = worker.lost_children()
    outcome = count(
        "7 poison message", to_feed=ids, to_dead=[marker], drain_seconds=drained
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
