"""Retention: the log, the journey, dead letters and inboxes do not grow for ever.

``events_prune(older_than=…)`` removes, in batches:

* **log rows** older than the window that every subscriber has finished
  with: the row is ``sent`` (every destination confirmed) and each
  subscriber it was routed to has a final journey hop for it (applied,
  skipped as a duplicate, dead-lettered) or a dead letter. A row a
  subscriber still owes — not yet routed, or routed but sitting unapplied in
  a stopped subscriber's queue — is never removed. Rows routed before the
  journey recorded routes (or with ``EVENT_JOURNEY`` off) need a final hop
  from every subscriber that wants their type now;
* **subscribers' inbox keys** (``ProcessedEvent``) older than the window;
* **journey hops** older than ``EVENT_JOURNEY_RETENTION_DAYS`` whose log
  row is gone (the hops of a row still in the log are its proof);
* **dead letters** older than ``DEAD_LETTER_RETENTION_DAYS``;
* **relay heartbeats** of relays silent for a day.

``manage.py events_prune`` runs it; the relay runs it every
``EVENT_PRUNE_INTERVAL_SECONDS`` (one relay at a time).
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from . import metrics
from .models import DeadLetter, EventHop, LoggedEvent, ProcessedEvent, RelayHeartbeat
from .subscriptions import BROADCAST, subscriptions

logger = logging.getLogger(__name__)

FINAL_OUTCOMES = (
    EventHop.Outcome.APPLIED,
    EventHop.Outcome.DUPLICATE,
    EventHop.Outcome.DEAD_LETTERED,
)
# Two relays never prune at once (PostgreSQL advisory lock key).
_PRUNE_LOCK = 0x706F7274616C  # "portal"


@dataclass
class PruneResult:
    events: int = 0
    kept_owed: int = 0
    inbox: int = 0
    hops: int = 0
    dead_letters: int = 0
    heartbeats: int = 0

    def __str__(self) -> str:
        return (
            f"{self.events} log row(s) removed ({self.kept_owed} older kept: "
            f"still owed), {self.inbox} inbox key(s), {self.hops} journey hop row(s), "
            f"{self.dead_letters} dead letter(s), {self.heartbeats} relay heartbeat(s)"
        )


def retention_window() -> timedelta:
    return timedelta(days=settings.EVENT_LOG_RETENTION_DAYS)


def events_prune(
    *,
    older_than: timedelta | None = None,
    dry_run: bool = False,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> PruneResult:
    """Remove what retention allows (see the module doc). ``dry_run``
    counts without removing; ``progress(n)`` hears of each batch of log
    rows looked at."""
    older_than = older_than if older_than is not None else retention_window()
    now = timezone.now()
    cutoff = now - older_than
    result = PruneResult()
    # Not yet routed everywhere: owed, whatever their age.
    result.kept_owed = LoggedEvent.objects.filter(
        status=LoggedEvent.Status.PENDING, created_at__lt=cutoff
    ).count()
    after = 0
    while True:
        candidates = list(
            LoggedEvent.objects.filter(
                status=LoggedEvent.Status.SENT, created_at__lt=cutoff, id__gt=after
            )
            .order_by("id")
            .values_list("id", "source", "event_id", "type", "routes")[:batch_size]
        )
        if not candidates:
            break
        after = candidates[-1][0]
        prunable = _finished(candidates)
        result.kept_owed += len(candidates) - len(prunable)
        if prunable and not dry_run:
            with transaction.atomic():
                LoggedEvent.objects.filter(id__in=prunable).delete()
        result.events += len(prunable)
        if progress:
            progress(len(candidates))
    inbox = ProcessedEvent.objects.filter(processed_at__lt=cutoff)
    journey_cutoff = now - timedelta(days=settings.EVENT_JOURNEY_RETENTION_DAYS)
    hops = EventHop.objects.filter(finished_at__lt=journey_cutoff).filter(
        ~Exists(
            LoggedEvent.objects.filter(
                id__gte=OuterRef("log_id"), id__lte=OuterRef("log_id_last")
            )
        )
    )
    dead = DeadLetter.objects.filter(
        created_at__lt=now - timedelta(days=settings.DEAD_LETTER_RETENTION_DAYS)
    )
    beats = RelayHeartbeat.objects.filter(last_pass_at__lt=now - timedelta(days=1))
    if dry_run:
        result.inbox = inbox.count()
        result.hops = hops.count()
        result.dead_letters = dead.count()
        result.heartbeats = beats.count()
        return result
    result.inbox = inbox.delete()[0]
    result.hops = hops.delete()[0]
    result.dead_letters = dead.delete()[0]
    result.heartbeats = beats.delete()[0]
    metrics.EVENTS_PRUNED.inc(result.events)
    return result


def _finished(candidates: list[tuple]) -> list[int]:
    """The ids among ``candidates`` that every subscriber has finished with."""
    ids = {row[0] for row in candidates}
    low, high = min(ids), max(ids)
    final: dict[int, set[str]] = defaultdict(set)
    for first, last, subscriber in (
        EventHop.objects.covering(low, high)
        .filter(outcome__in=FINAL_OUTCOMES)
        .values_list("log_id", "log_id_last", "subscriber")
    ):
        for log_id in range(max(first, low), min(last, high) + 1):
            if log_id in ids:
                final[log_id].add(subscriber)
    dead: dict[tuple[str, str], set[str]] = defaultdict(set)
    for source, event_id, subscriber in DeadLetter.objects.filter(
        event_id__in=[row[2] for row in candidates]
    ).values_list("source", "event_id", "subscriber"):
        dead[(source, event_id)].add(subscriber)
    wanting: dict[str, set[str]] = {}
    prunable = []
    for log_id, source, event_id, type_, routes in candidates:
        owed = {d for d in (routes or {}) if d != BROADCAST}
        if not routes:
            if type_ not in wanting:
                wanting[type_] = {s.name for s in subscriptions() if s.wants(type_)}
            owed = wanting[type_]
        if owed <= final[log_id] | dead[(source, event_id)]:
            prunable.append(log_id)
    return prunable


def events_prune_if_due(state: dict[str, float], *, clock: float) -> PruneResult | None:
    """The relay's duty: prune every ``EVENT_PRUNE_INTERVAL_SECONDS`` (0: never),
    one relay at a time. ``state`` keeps when it last ran."""
    interval = settings.EVENT_PRUNE_INTERVAL_SECONDS
    if not interval or clock - state.get("pruned", float("-inf")) < interval:
        return None
    state["pruned"] = clock
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_PRUNE_LOCK])
            if not cursor.fetchone()[0]:
                return None
        try:
            result = events_prune()
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_PRUNE_LOCK])
    else:
        result = events_prune()
    logger.info("Retention: %s", result)
    return result
