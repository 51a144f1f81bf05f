"""The fault scenarios on a three-node RabbitMQ cluster, one implementation
for the tests (``tests/faults/test_cluster.py``, marked ``cluster``) and
``bench/chaos_cluster.py`` (``make chaos-cluster``).

Each scenario runs two relays and two workers (each with its ingest
consumer), every one with the cluster's URL list starting at a different
node, while a stream of events arrives at a steady pace: registrations
through the registrar (the event log, routed by the relays) and, in between,
CloudEvents that another service publishes on ``portal.events`` (the ingest
consumers log them, the relays route them). Both reach both subscribers (the
feed and ``audit``). One fault is injected while the stream runs; then every
event is counted by id, per subscriber (``counting``), and the **failover
pause** is the longest time, from the fault on, in which some subscriber's
applied count did not grow.

1. ``leader-killed``: ``kill -9`` of the node leading the subscriber queues,
   started again later.
2. ``rolling-restart``: each node stopped and started again, one at a time.
3. ``node-paused``: the leader node frozen (SIGSTOP) for 30 s: cut off from
   the others and from its clients, the minority side; then SIGCONT.
4. ``node-relay-worker-killed``: a relay, a worker and the leader node
   SIGKILLed at the same moment (like a lost machine); a supervisor starts
   the relay and the worker again, the node comes back later.
5. ``database-outage``: PostgreSQL unreachable to every relay and worker (a
   TCP proxy they all connect through) for 2 minutes, longer than the whole
   (shortened) retry schedule.

``delayed_delivery_pause`` measures how long a worker whose node died takes
to consume again, with Celery's own native-delayed-delivery start-up step or
the portal's (``portal.messaging.task_consumer.ClusterDelayedDelivery``).

The cluster is ``scripts/rabbitmq-cluster``'s (``Cluster``), never the
machine's own RabbitMQ. Django must be set up before importing this module.
"""

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection

from feed.models import FeedEvent
from feed.subscriptions import FEED
from portal.messaging import topology
from portal.messaging.amqp_publish import (
    OutgoingMessage,
    publish_confirmed,
    publisher_reset,
)
from portal.testing.processes import RelayProcess, Worker
from portal.testing.subscriber_app.models import ReceivedEvent
from portal.testing.urls import database_url, via_port
from registrar.services import department_create, employee_register

from .cluster_nodes import Cluster
from .counting import SUBSCRIBERS, Outcome, count, expected_from_log, wait_drained
from .scenarios import (
    EVENT_TYPE,
    SOURCE,
    Lab,
    log_events,
    per_message,
    proxy_to,
    relay_drain,
    valid_event,
    wait_until,
)

QUEUE_PREFIX = "cluster"
# The stream: at most this many events a second (registrations are
# transactions of their own, on a shared 2-core machine), starting this many
# seconds before the fault and going on this long after it.
MAX_RATE = 150.0
LEAD_SECONDS = 5.0
TAIL_SECONDS = 10.0
# The relays pack this many events per task message: many messages, so a
# fault catches some in flight.
EVENTS_PER_MESSAGE = 20


def lab_settings(cluster: Cluster) -> dict[str, Any]:
    """The test process's settings for a cluster scenario: the URL list,
    queues on three nodes, the scenarios' own queue names, nothing published
    from this process but by the relays."""
    from .scenarios import lab_queue_settings

    return {
        "CELERY_BROKER_URL": cluster.urls(),
        "QUEUE_INITIAL_GROUP_SIZE": 3,
        "OUTBOX_PUBLISH_MODE": "off",
        **lab_queue_settings(QUEUE_PREFIX),
    }


@dataclass
class ClusterLab(Lab):
    """A ``Lab`` on a cluster: each process gets the URL list starting at a
    node of its own, and no metrics port (two relays on one machine)."""

    cluster: Cluster | None = None

    def env(self, **overrides: str) -> dict[str, str]:
        base = {
            "QUEUE_INITIAL_GROUP_SIZE": "3",
            "RELAY_METRICS_PORT": "0",
            "WORKER_METRICS_PORT": "0",
            **per_message(EVENTS_PER_MESSAGE),
        }
        return super().env(**{**base, **overrides})

    def first_node(self, i: int) -> str:
        assert self.cluster is not None
        return self.cluster.nodes[i % self.cluster.size]

    def cluster_worker(self, name: str, i: int, **env: str) -> Worker:
        env.setdefault("CELERY_BROKER_URL", self.cluster.urls(self.first_node(i)))
        return Worker(
            self.env(**env), self.log_dir / f"{name}.log", concurrency=1, name=name
        )

    def cluster_relay(self, name: str, i: int, **env: str) -> RelayProcess:
        env.setdefault("CELERY_BROKER_URL", self.cluster.urls(self.first_node(i)))
        env.setdefault("OUTBOX_RELAY_GRACE_SECONDS", "0.5")
        env.setdefault("OUTBOX_RELAY_INTERVAL_SECONDS", "0.2")
        return RelayProcess(self.env(**env), self.log_dir / f"{name}.log")


# --- the stream and its progress -----------------------------------------------


class EventStream(threading.Thread):
    """Sends ``events`` events at a steady pace over ``seconds``: every other
    one a registration (``employee_register``, into the event log), the rest
    CloudEvents published on ``portal.events`` as another service would, in
    confirmed batches re-sent until confirmed (at least once: a confirm lost
    with a node means a copy, which the portal absorbs)."""

    def __init__(self, *, events: int, seconds: float, run: str) -> None:
        super().__init__(daemon=True)
        self.events = events
        self.seconds = seconds
        self.run_id = run
        self.sent = 0
        self.outside_ids: list[str] = []
        self.republished = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._stream()
        except BaseException as exc:  # noqa: BLE001 - reported by the scenario
            self.error = exc
        finally:
            publisher_reset()
            connection.close()

    def _stream(self) -> None:
        department = department_create(name=f"Cluster {self.run_id}")
        started = time.monotonic()
        batch: list[dict[str, Any]] = []
        for i in range(self.events):
            delay = started + i * self.seconds / self.events - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if i % 2 == 0:
                employee_register(
                    full_name=f"Person {i}",
                    email=f"p{i}-{self.run_id}@cluster.example",
                    position="Engineer",
                    department=department,
                )
            else:
                batch.append(valid_event(i, event_id=str(uuid.uuid4())))
                if len(batch) >= 10:
                    self._publish(batch)
                    batch = []
            self.sent = i + 1
        self._publish(batch)

    def _publish(self, events: list[dict[str, Any]]) -> None:
        pending = [
            OutgoingMessage(
                exchange=topology.EVENTS_EXCHANGE,
                routing_key=EVENT_TYPE,
                body=json.dumps(event).encode(),
                content_type="application/cloudevents+json",
                properties={"message_id": event["id"], "app_id": SOURCE},
            )
            for event in events
        ]
        for attempt in range(600):
            if not pending:
                break
            if attempt:
                self.republished += len(pending)
                time.sleep(0.5)
            try:
                outcomes = publish_confirmed(pending)
            except Exception:  # noqa: BLE001 - a node went away: the next one
                publisher_reset()
                continue
            pending = [m for m, why in zip(pending, outcomes, strict=True) if why]
        if pending:
            raise RuntimeError(f"{len(pending)} outside events never confirmed")
        self.outside_ids.extend(event["id"] for event in events)


class Progress(threading.Thread):
    """Samples each subscriber's applied count every ``interval`` seconds."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []
        self._halt = threading.Event()

    def __enter__(self) -> "Progress":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self.join()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                with contextlib.suppress(Exception):
                    self.samples.append(
                        (
                            time.monotonic(),
                            FeedEvent.objects.count(),
                            ReceivedEvent.objects.count(),
                        )
                    )
                self._halt.wait(self.interval)
        finally:
            connection.close()

    def longest_stall(self, since: float, until: float) -> float:
        """The longest time in [since, until] in which some subscriber's
        applied count did not grow."""
        longest = 0.0
        for column in (1, 2):
            last_growth, last_value = since, None
            for sample in self.samples:
                t, value = sample[0], sample[column]
                if t < since:
                    last_value = value
                    continue
                if t > until:
                    break
                if last_value is not None and value > last_value:
                    longest = max(longest, t - last_growth)
                    last_growth = t
                last_value = value
            longest = max(longest, until - last_growth)
        return longest


# --- running a scenario --------------------------------------------------------


@dataclass
class Fleet:
    relays: list[RelayProcess]
    workers: list[Worker]

    def start(self) -> None:
        for process in [*self.relays, *self.workers]:
            process.spawn()
        for process in [*self.relays, *self.workers]:
            process.wait_ready(120)

    def stop(self) -> None:
        for process in [*self.workers, *self.relays]:
            process.stop()

    def log(self, text: str) -> int:
        return sum(p.log().count(text) for p in [*self.relays, *self.workers])


@contextlib.contextmanager
def fleet(
    lab: ClusterLab, tag: str, *, supervise: bool = False, **env: str
) -> Iterator[Fleet]:
    """Two relays and two workers (each with the ingest consumer), their URL
    lists starting at nodes 3, 2 (relays) and 1, 2 (workers)."""
    relays = [lab.cluster_relay(f"{tag}-relay{i + 1}", 2 - i, **env) for i in range(2)]
    workers = [lab.cluster_worker(f"{tag}-worker{i + 1}", i, **env) for i in range(2)]
    for process in [*relays, *workers]:
        process.supervise = supervise
    group = Fleet(relays=relays, workers=workers)
    try:
        group.start()
        yield group
    finally:
        group.stop()


def subscriber_queue_leader(lab: ClusterLab) -> str:
    """The node leading the feed's queue (where it was declared: every
    subscriber queue of a scenario is, so it leads them all)."""
    node = lab.cluster.leader(FEED.queue)
    if node is None:
        raise RuntimeError(f"no leader found for {FEED.queue}")
    return node


def run_scenario(
    lab: ClusterLab,
    title: str,
    *,
    events: int,
    fault: Callable[[Fleet], str],
    fault_seconds: float,
    supervise: bool = False,
    **env: str,
) -> Outcome:
    """Stream ``events`` events through ``fleet`` while ``fault`` runs (it
    returns when the fault is over, with a note on what it did); count."""
    seconds = max(LEAD_SECONDS + fault_seconds + TAIL_SECONDS, events / MAX_RATE)
    stream = EventStream(events=events, seconds=seconds, run=uuid.uuid4().hex[:8])
    with (
        fleet(lab, title.split()[0], supervise=supervise, **env) as group,
        Progress() as progress,
    ):
        started = time.monotonic()
        stream.start()
        wait_until(
            lambda: progress.samples and progress.samples[-1][1] > 0,
            timeout=60,
            what="the first events applied",
            interval=0.2,
        )
        time.sleep(max(0.0, started + LEAD_SECONDS - time.monotonic()))
        faulted = time.monotonic()
        note = fault(group)
        recovered = time.monotonic()
        stream.join()
        if stream.error is not None:
            raise stream.error
        expected = expected_from_log()
        for name in SUBSCRIBERS:
            expected[name] |= set(stream.outside_ids)
        wait_drained(expected, timeout=120 + events / 50, settle=0.0)
        drained = time.monotonic()
        time.sleep(2.0)  # a late redelivery would show as a duplicate
        pause = progress.longest_stall(faulted, drained)
        restarts = sum(p.starts - 1 for p in [*group.relays, *group.workers])
    outcome = count(title, expected=expected, drain_seconds=drained - recovered)
    outcome.extra = {
        "pause": pause,
        "fault_seconds": recovered - faulted,
        "stream_seconds": seconds,
        "events": events,
        "registrations": (events + 1) // 2,
        "outside": len(stream.outside_ids),
        "republished": stream.republished,
        "process_restarts": restarts,
    }
    outcome.notes.append(note)
    outcome.notes.append(
        f"{events} events in {seconds:.0f} s ({(events + 1) // 2} registrations, "
        f"{len(stream.outside_ids)} published on portal.events, "
        f"{stream.republished} re-published after a lost confirm); fault "
        f"{recovered - faulted:.0f} s; longest pause {pause:.1f} s"
    )
    return outcome


# --- 1 ---------------------------------------------------------------------------


def leader_killed(lab: ClusterLab, events: int, down: float = 15.0) -> Outcome:
    """``kill -9`` of the node leading the subscriber queues; started again
    ``down`` seconds later."""

    def fault(group: Fleet) -> str:
        node = subscriber_queue_leader(lab)
        lab.cluster.kill(node)
        time.sleep(down)
        lab.cluster.restart(node)
        return f"killed {node} (leader), restarted it {down:.0f} s later"

    return run_scenario(
        lab, "1 leader node killed", events=events, fault=fault, fault_seconds=down + 8
    )


# --- 2 ---------------------------------------------------------------------------


def rolling_restart(lab: ClusterLab, events: int, settle: float = 5.0) -> Outcome:
    """Each node stopped and started again, one at a time, ``settle``
    seconds apart (a restarted node catching up on its queues)."""

    def fault(group: Fleet) -> str:
        order = []
        for node in lab.cluster.nodes:
            lab.cluster.stop(node)
            lab.cluster.restart(node)
            order.append(node)
            time.sleep(settle)
        return f"stopped and started {', '.join(order)} in turn"

    return run_scenario(
        lab,
        "2 rolling restart",
        events=events,
        fault=fault,
        fault_seconds=lab.cluster.size * (15 + settle),
    )


# --- 3 ---------------------------------------------------------------------------


def node_paused(lab: ClusterLab, events: int, pause: float = 30.0) -> Outcome:
    """The leader node frozen (SIGSTOP) for ``pause`` seconds: its peers and
    its clients get no answer, as on the minority side of a partition."""

    def fault(group: Fleet) -> str:
        node = subscriber_queue_leader(lab)
        lab.cluster.pause(node)
        time.sleep(pause)
        lab.cluster.resume(node)
        lab.cluster.wait_all_running()
        return f"paused {node} (leader) for {pause:.0f} s"

    return run_scenario(
        lab, "3 node paused", events=events, fault=fault, fault_seconds=pause + 3
    )


# --- 4 ---------------------------------------------------------------------------


def node_relay_worker_killed(
    lab: ClusterLab, events: int, down: float = 15.0
) -> Outcome:
    """A relay, a worker and the leader node SIGKILLed at the same moment;
    the relay and the worker are supervised (started again at once), the
    node comes back ``down`` seconds later."""

    def fault(group: Fleet) -> str:
        node = subscriber_queue_leader(lab)
        relay, worker = group.relays[0], group.workers[0]
        lab.cluster.kill(node)
        relay.kill()
        worker.kill()
        time.sleep(down)
        lab.cluster.restart(node)
        return (
            f"killed {node} (leader), a relay and a worker at once; the node "
            f"restarted {down:.0f} s later"
        )

    return run_scenario(
        lab,
        "4 node+relay+worker killed",
        events=events,
        fault=fault,
        fault_seconds=down + 8,
        supervise=True,
    )


# --- 5 ---------------------------------------------------------------------------


def database_outage(lab: ClusterLab, events: int, outage: float = 120.0) -> Outcome:
    """PostgreSQL unreachable for ``outage`` seconds to every relay and
    worker (they connect through a TCP proxy that cuts every connection),
    with the shortened retry schedule (``RETRY_DELAYS``, 30 s in all):
    subscribers wait the outage out, nothing is dead-lettered."""
    with proxy_to(database_url(), 5432) as proxy:
        through = via_port(database_url(), proxy.port)

        def fault(group: Fleet) -> str:
            proxy.cut()
            time.sleep(outage)
            proxy.restore()
            waits = group.log("Database unreachable") + group.log("Transient error")
            return (
                f"PostgreSQL cut for {outage:.0f} s; {proxy.refused} connections "
                f"refused, {waits} waits/retries logged"
            )

        return run_scenario(
            lab,
            "5 database unreachable",
            events=events,
            fault=fault,
            fault_seconds=outage,
            DATABASE_URL=through,
            # Batching consumers hand held messages back this soon.
            WORKER_HOLD_MAX_SECONDS="20",
        )


SCENARIOS: dict[str, Callable[..., Outcome]] = {
    "leader-killed": leader_killed,
    "rolling-restart": rolling_restart,
    "node-paused": node_paused,
    "node-relay-worker-killed": node_relay_worker_killed,
    "database-outage": database_outage,
}


# --- the delayed-delivery start-up pause ------------------------------------------


def delayed_delivery_pause(
    lab: ClusterLab, *, stock: bool, events: int = 3000
) -> float:
    """Seconds without an application after the node a lone worker is
    connected to is killed, with its queues full: Celery's own delayed
    delivery step (``stock``) or the portal's. The node is started again
    after."""
    log_events([valid_event(i, event_id=str(uuid.uuid4())) for i in range(events)])
    relay_drain(**per_message(1))
    app = "bench.faults.stock_delayed_delivery" if stock else "portal"
    node = lab.cluster.nodes[0]
    worker = Worker(
        lab.env(CELERY_BROKER_URL=lab.cluster.urls(node)),
        lab.log_dir / f"dd-{'celery' if stock else 'portal'}.log",
        app=app,
        concurrency=1,
        name="dd",
    )
    with worker, Progress(interval=0.1) as progress:
        wait_until(
            lambda: progress.samples and progress.samples[-1][1] > events // 10,
            timeout=120,
            what="the worker consuming",
            interval=0.1,
        )
        killed = time.monotonic()
        lab.cluster.kill(node)
        # Past the pause, whatever the lone worker still has to do.
        wait_until(
            lambda: (
                progress.samples[-1][0] > killed + 1
                and progress.samples[-1][1] > progress_at(progress, killed + 1) + 20
            ),
            timeout=120,
            what="the worker consuming again",
            interval=0.2,
        )
        resumed = time.monotonic()
        pause = progress.longest_stall(killed, resumed)
    lab.cluster.restart(node)
    return pause


def progress_at(progress: Progress, t: float) -> int:
    value = 0
    for sample in progress.samples:
        if sample[0] > t:
            break
        value = sample[1]
    return value
