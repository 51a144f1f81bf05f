"""The state of the event log, read from the database when the web is scraped.

Values no single process counts, so each scrape reads them (a few indexed
queries; the pending rows are a partial index):

* ``portal_event_log_undelivered_events{destination}``: log rows still owed
  to each destination (a subscriber, or ``broadcast``);
* ``portal_event_log_oldest_undelivered_age_seconds{destination}``: how long
  the oldest of them has waited (0 when none);
* ``portal_relay_last_pass_timestamp_seconds``: when any relay last finished
  a pass (its heartbeat row): it stops moving when every relay is gone,
  even though no relay is left to say so;
* ``portal_dead_letters{subscriber,reason}``: dead letters stored and not
  requeued.
"""

import logging
import time
from collections import defaultdict

from django.db import DatabaseError, connection
from django.db.models import Count, Max
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from portal.messaging.models import DeadLetter, LoggedEvent, RelayHeartbeat
from portal.messaging.subscriptions import BROADCAST, broadcast_enabled, subscriptions

logger = logging.getLogger(__name__)


class EventLogCollector(Collector):
    def collect(self):
        try:
            backlog = backlog_by_destination()
            heartbeat = RelayHeartbeat.objects.aggregate(last=Max("last_pass_at"))
            dead = list(
                DeadLetter.objects.filter(status=DeadLetter.Status.DEAD)
                .values_list("subscriber", "reason")
                .annotate(n=Count("id"))
            )
        except DatabaseError as exc:
            logger.warning("Event log metrics not read: %s", exc)
            return
        now = time.time()
        count = GaugeMetricFamily(
            "portal_event_log_undelivered_events",
            "Log rows still owed to a destination (a subscriber, or broadcast).",
            labels=["destination"],
        )
        age = GaugeMetricFamily(
            "portal_event_log_oldest_undelivered_age_seconds",
            "Age of the oldest log row still owed to a destination (0: none).",
            labels=["destination"],
        )
        destinations = [s.name for s in subscriptions()]
        if broadcast_enabled():
            destinations.append(BROADCAST)
        for destination in sorted(set(destinations) | set(backlog)):
            rows, oldest = backlog.get(destination, (0, None))
            count.add_metric([destination], rows)
            age.add_metric([destination], max(0.0, now - oldest) if oldest else 0.0)
        yield count
        yield age
        last = GaugeMetricFamily(
            "portal_relay_last_pass_timestamp_seconds",
            "When a relay last finished a routing pass (Unix time), from the "
            "relays' heartbeat rows.",
        )
        if heartbeat["last"] is not None:
            last.add_metric([], heartbeat["last"].timestamp())
        else:
            last.add_metric([], 0.0)
        yield last
        stored = GaugeMetricFamily(
            "portal_dead_letters",
            "Dead letters in the store (not requeued), by the subscriber that "
            "gave up (empty: refused on the way in) and reason.",
            labels=["subscriber", "reason"],
        )
        for subscriber, reason, n in dead:
            stored.add_metric([subscriber, reason], n)
        yield stored


def backlog_by_destination() -> dict[str, tuple[int, float | None]]:
    """Per destination: pending rows owing it, and the oldest one's time."""
    table = connection.ops.quote_name(LoggedEvent._meta.db_table)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT d, count(*), extract(epoch FROM min(created_at))
                FROM {table}, jsonb_array_elements_text(undelivered) AS d
                WHERE status = 'pending'
                GROUP BY d
                """
            )
            return {d: (n, float(at)) for d, n, at in cursor.fetchall()}
    found: dict[str, list] = defaultdict(lambda: [0, None])
    pending = LoggedEvent.objects.filter(status=LoggedEvent.Status.PENDING)
    for undelivered, created in pending.values_list("undelivered", "created_at"):
        for destination in undelivered or []:
            entry = found[destination]
            entry[0] += 1
            at = created.timestamp()
            entry[1] = at if entry[1] is None else min(entry[1], at)
    return {d: (n, at) for d, (n, at) in found.items()}
