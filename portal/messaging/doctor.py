"""``portal_doctor``: the live broker and database against what the portal needs.

Each check says what it found and, when something is wrong, why it matters
and what to do. Checks:

* the database answers, and its timeouts are set (``statement_timeout``,
  ``idle_in_transaction_session_timeout``, ``lock_timeout``);
* RabbitMQ answers; each subscriber's task queue and the ingest queue exist
  as quorum queues with the delivery limit and dead-letter exchange the
  portal declares; the dead-letter exchange and every dead-letter queue
  exist; the exchange that brings retries back from their delay has its
  alternate exchange, and that exchange's queue exists;
* each subscriber's delivery limit is above its retry count, and the
  broker's ``consumer_timeout`` is longer than the longest delay a consumer
  holds a message for;
* a relay is alive (its heartbeat), and nothing is stuck: no destination
  owed an event for long, no queue with messages and no consumer.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Max
from django.utils import timezone

from . import topology
from .delayed_delivery import DELIVERY_EXCHANGE, UNROUTABLE, delivery_exchange_problem
from .models import DeadLetter, RelayHeartbeat
from .subscriptions import subscriptions

OK, WARNING, PROBLEM = "ok", "warning", "problem"


@dataclass
class Finding:
    level: str
    check: str
    message: str
    explanation: str = ""


def doctor_run() -> list[Finding]:
    findings = list(_database())
    findings += list(_configuration())
    findings += list(_broker())
    findings += list(_relay_and_backlog())
    return findings


# --- Database ---------------------------------------------------------------------


def _database() -> Iterator[Finding]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        yield Finding(
            PROBLEM,
            "database",
            f"unreachable: {exc}",
            "Nothing can be logged or applied: registrations fail, workers retry.",
        )
        return
    yield Finding(OK, "database", f"{connection.vendor} answers")
    if connection.vendor != "postgresql":
        return
    explanations = {
        "statement_timeout": "a runaway query holds its locks (and the log rows "
        "the relay took FOR UPDATE) until it ends",
        "idle_in_transaction_session_timeout": "a process that stopped mid-"
        "transaction holds its row locks for ever: the relay skips those log "
        "rows (SKIP LOCKED) and they are never routed",
        "lock_timeout": "a blocked write waits for ever instead of failing and "
        "being retried",
    }
    with connection.cursor() as cursor:
        for name, why in explanations.items():
            cursor.execute(f"SHOW {name}")
            value = cursor.fetchone()[0]
            if value in ("0", "0ms"):
                yield Finding(
                    WARNING,
                    f"database {name}",
                    "not set (0: no limit)",
                    f"Without it {why}. Set it for the portal's role "
                    f"(ALTER ROLE … SET {name} = '…') or in DATABASES OPTIONS.",
                )
            else:
                yield Finding(OK, f"database {name}", value)


# --- Configuration ---------------------------------------------------------------


def _configuration() -> Iterator[Finding]:
    for subscription in subscriptions():
        delays = subscription.delays
        limit = subscription.max_deliveries
        check = f"{subscription.name}: delivery limit vs retries"
        if limit <= len(delays):
            yield Finding(
                PROBLEM,
                check,
                f"delivery limit {limit} <= {len(delays)} retries",
                "A message is delivered once per attempt when its worker dies "
                "mid-task; with a limit no higher than the retries, RabbitMQ "
                "dead-letters it before its retries have run. Raise "
                f"{subscription.settings_prefix}_DELIVERY_LIMIT above "
                f"{len(delays)}.",
            )
        else:
            yield Finding(OK, check, f"limit {limit} > {len(delays)} retries")
    held = _longest_consumer_hold()
    timeout = settings.BROKER_CONSUMER_TIMEOUT_SECONDS
    check = "broker consumer_timeout"
    if timeout and held >= timeout:
        yield Finding(
            PROBLEM,
            check,
            f"consumer_timeout {timeout:g}s <= {held:g}s a consumer may hold a message",
            "RabbitMQ closes the channel of a consumer that keeps a message "
            "unacked longer than consumer_timeout, and the whole prefetch is "
            "redelivered. Raise consumer_timeout in rabbitmq.conf (and "
            "BROKER_CONSUMER_TIMEOUT_SECONDS here), or shorten the delays.",
        )
    else:
        yield Finding(
            OK,
            check,
            f"{timeout:g}s (BROKER_CONSUMER_TIMEOUT_SECONDS) > {held:g}s "
            "held by a consumer (retry delays are held by RabbitMQ on quorum "
            "queues; a task's own run time counts)",
        )


def _longest_consumer_hold() -> float:
    """The longest a consumer keeps a message unacked: a batch's run time
    times the prefetch, and the retry delay wherever RabbitMQ does not hold
    it (native delayed delivery needs quorum queues)."""
    prefetch = settings.CELERY_WORKER_PREFETCH_MULTIPLIER
    run = settings.TASK_EXPECTED_SECONDS * max(1, prefetch)
    if getattr(settings, "CELERY_TASK_DEFAULT_QUEUE_TYPE", "quorum") == "quorum":
        return run
    return max([run, *(max(s.delays, default=0) for s in subscriptions())])


# --- Broker ----------------------------------------------------------------------


def _broker() -> Iterator[Finding]:
    if not settings.CELERY_BROKER_URL.startswith(("amqp", "pyamqp")):
        yield Finding(OK, "broker", "embedded broker (no queues to check)")
        return
    from kombu import Connection

    try:
        conn = Connection(
            settings.CELERY_BROKER_URL,
            connect_timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT,
        )
        conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - reported
        yield Finding(
            PROBLEM,
            "broker",
            f"unreachable: {exc}",
            "Events stay in the log (nothing is lost) until it is back; the "
            "relay retries with backoff.",
        )
        return
    with conn:
        yield Finding(OK, "broker", "RabbitMQ answers")
        yield from _exchange(conn, topology.DEAD_LETTER_EXCHANGE, "direct")
        yield from _exchange(conn, topology.TASKS_EXCHANGE, "topic")
        yield from _delivery_exchange(conn)
        queues = [
            (f"subscriber {s.name}", topology.subscription_queue(s))
            for s in subscriptions()
        ]
        queues.append(("ingest", topology.ingest_queue()))
        for label, queue in queues:
            yield from _queue(conn, label, queue)
        for name in topology.dead_letter_queue_names():
            yield from _dead_letter_queue(conn, name)
        yield from _dead_letter_queue(
            conn,
            UNROUTABLE,
            "A retry whose queue is gone when its delay ends is then kept by "
            "RabbitMQ for ever, and 32 of them stop every retry of the vhost.",
        )


def _exchange(conn, name: str, kind: str) -> Iterator[Finding]:
    channel = conn.channel()
    try:
        channel.exchange_declare(exchange=name, type=kind, passive=True)
        yield Finding(OK, f"exchange {name}", "exists")
    except Exception as exc:  # noqa: BLE001 - reported
        why = (
            "Dead-lettered messages (delivery limit, rejected, retries "
            "exhausted) would be dropped instead of stored."
            if name == topology.DEAD_LETTER_EXCHANGE
            else "The relay cannot deliver to any subscriber."
        )
        yield Finding(
            PROBLEM,
            f"exchange {name}",
            f"missing ({exc})",
            f"{why} A worker declares it when it starts.",
        )
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def _delivery_exchange(conn) -> Iterator[Finding]:
    check = f"exchange {DELIVERY_EXCHANGE}"
    try:
        with topology.own_channel(conn) as channel:
            channel.exchange_declare(
                exchange=DELIVERY_EXCHANGE, type="topic", passive=True
            )
    except Exception as exc:  # noqa: BLE001 - reported
        yield Finding(
            PROBLEM,
            check,
            f"missing ({exc})",
            "Retries held by RabbitMQ have no way back to their queues. A "
            "worker declares it when it starts.",
        )
        return
    problem = delivery_exchange_problem(conn)
    if problem:
        yield Finding(
            PROBLEM,
            check,
            f"no alternate exchange {UNROUTABLE}: {problem}",
            "A retry whose queue is gone when its delay ends is kept by RabbitMQ "
            "for ever, and 32 of them stop every retry of the vhost. Stop the "
            "workers and run manage.py messaging_queues --migrate.",
        )
        return
    yield Finding(
        OK,
        check,
        f"retries no queue takes go to {UNROUTABLE} (then to the dead-letter store)",
    )


def _queue(conn, label: str, queue) -> Iterator[Finding]:
    check = f"queue {queue.name} ({label})"
    channel = conn.channel()
    try:
        _, messages, consumers = channel.queue_declare(queue=queue.name, passive=True)
    except Exception:  # noqa: BLE001 - reported
        yield Finding(
            PROBLEM,
            check,
            "missing",
            "The relay cannot deliver to it (its events stay owed). A worker "
            "declares it when it starts.",
        )
        return
    finally:
        with contextlib.suppress(Exception):
            channel.close()
    # Declaring it again with the portal's arguments is a no-op when they
    # match; RabbitMQ refuses (and says which argument differs) otherwise.
    channel = conn.channel()
    try:
        channel.queue_declare(
            queue=queue.name,
            durable=True,
            auto_delete=False,
            arguments=queue.queue_arguments,
        )
    except Exception as exc:  # noqa: BLE001 - reported
        yield Finding(
            PROBLEM,
            check,
            f"not as the portal declares it: {exc}",
            "It must be a durable quorum queue with x-delivery-limit "
            f"{queue.queue_arguments.get('x-delivery-limit')} and dead-letter "
            f"exchange {topology.DEAD_LETTER_EXCHANGE}: a classic queue neither "
            "counts deliveries (a message that kills its worker loops for ever) "
            "nor holds retry delays in the broker. Delete it when it is empty "
            "and let a worker declare it again.",
        )
        return
    finally:
        with contextlib.suppress(Exception):
            channel.close()
    level, note = OK, ""
    if messages and not consumers:
        level = PROBLEM
        note = (
            "Messages wait and no worker consumes them: start a worker for this queue."
        )
    yield Finding(
        level,
        check,
        f"quorum, delivery limit {queue.queue_arguments.get('x-delivery-limit')}, "
        f"dead-letters to {topology.DEAD_LETTER_EXCHANGE}; {messages} ready, "
        f"{consumers} consumer(s)",
        note,
    )


def _dead_letter_queue(
    conn,
    name: str,
    missing_why: str = "What its queue dead-letters is dropped by RabbitMQ.",
) -> Iterator[Finding]:
    channel = conn.channel()
    try:
        _, messages, consumers = channel.queue_declare(queue=name, passive=True)
    except Exception:  # noqa: BLE001 - reported
        yield Finding(
            PROBLEM,
            f"dead-letter queue {name}",
            "missing",
            f"{missing_why} A worker declares it when it starts.",
        )
        return
    finally:
        with contextlib.suppress(Exception):
            channel.close()
    level = PROBLEM if messages and not consumers else OK
    yield Finding(
        level,
        f"dead-letter queue {name}",
        f"{messages} waiting, {consumers} consumer(s)",
        "Dead letters wait to be stored: a worker moves them into the store."
        if level == PROBLEM
        else "",
    )


# --- Relay and backlog ------------------------------------------------------------


def _relay_and_backlog() -> Iterator[Finding]:
    from portal.observability.collectors import backlog_by_destination

    try:
        last = RelayHeartbeat.objects.aggregate(last=Max("last_pass_at"))["last"]
        backlog = backlog_by_destination()
        dead = DeadLetter.objects.filter(status=DeadLetter.Status.DEAD).count()
    except DatabaseError as exc:
        yield Finding(PROBLEM, "relay", f"cannot read the log: {exc}")
        return
    now = timezone.now()
    limit = settings.RELAY_SILENT_AFTER_SECONDS
    if last is None or (now - last).total_seconds() > limit:
        when = "never" if last is None else f"{(now - last).total_seconds():.0f}s ago"
        yield Finding(
            PROBLEM,
            "relay",
            f"no relay finished a pass within {limit:g}s (last: {when})",
            "Web processes never publish on PostgreSQL: without a relay every "
            "event stays in the log and the feed stops, while registrations "
            "keep succeeding. Start `manage.py relay_outbox`.",
        )
    else:
        yield Finding(OK, "relay", f"last pass {(now - last).total_seconds():.1f}s ago")
    stuck = {
        d: (n, at)
        for d, (n, at) in backlog.items()
        if at and now.timestamp() - at > limit
    }
    if stuck:
        for destination, (n, at) in sorted(stuck.items()):
            yield Finding(
                PROBLEM,
                f"backlog {destination}",
                f"{n} event(s) owed, the oldest for {now.timestamp() - at:.0f}s",
                "Routing to it keeps failing or no relay runs: see the event "
                "log in the admin (last error) and the relay's log.",
            )
    else:
        owed = sum(n for n, _ in backlog.values())
        yield Finding(OK, "backlog", f"{owed} event(s) owed, none for over {limit:g}s")
    if dead:
        yield Finding(
            WARNING,
            "dead letters",
            f"{dead} in the store",
            "Look at them in the admin (Messaging → Dead letters) or with "
            "`manage.py deadletters list`; requeue once the cause is fixed.",
        )
    else:
        yield Finding(OK, "dead letters", "none")
