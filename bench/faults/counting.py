"""Counting every event of a scenario by id, per subscriber.

A subscriber's receipts are what it applied: the feed's rows
(``FeedEvent``) and the ``audit`` subscriber's (``ReceivedEvent``, one row
per application, deliberately not unique, so a second application shows).
Dead letters are found by the UUIDs their records mention (an event's id,
or the marker a malformed message carries).
"""

import base64
import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from feed.models import FeedEvent
from feed.subscriptions import FEED
from portal.messaging.models import DeadLetter, LoggedEvent
from portal.messaging.subscriptions import destinations_for
from portal.testing.subscriber_app.models import ReceivedEvent
from portal.testing.subscriber_app.subscriptions import AUDIT

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Where malformed messages from other services are refused: no subscriber's.
INGEST = "ingest"


def feed_receipts() -> Counter:
    return Counter(FeedEvent.objects.values_list("event_id", flat=True).iterator())


def audit_receipts() -> Counter:
    return Counter(ReceivedEvent.objects.values_list("event_id", flat=True).iterator())


# Subscriber name -> how many times it applied each event id.
RECEIPTS: dict[str, Callable[[], Counter]] = {
    FEED.name: feed_receipts,
    AUDIT.name: audit_receipts,
}
SUBSCRIBERS = tuple(RECEIPTS)


def applied_total() -> int:
    """Applications by every subscriber together (progress of a scenario)."""
    return FeedEvent.objects.count() + ReceivedEvent.objects.count()


def expected_from_log(**filters: Any) -> dict[str, set[str]]:
    """The ids each subscriber must receive, from the logged events (every
    row, or those ``filters`` select), as the router routes them."""
    expected: dict[str, set[str]] = {name: set() for name in SUBSCRIBERS}
    rows = LoggedEvent.objects.filter(**filters).values_list("event_id", "type")
    for event_id, type_ in rows.iterator():
        for name in destinations_for(type_):
            if name in expected:
                expected[name].add(event_id)
    return expected


def _record_text(record: dict[str, Any]) -> str:
    text = " ".join(str(value) for value in record.values())
    if record.get("body_encoding") == "base64":
        with contextlib.suppress(ValueError):
            text += base64.b64decode(record["body"]).decode("latin-1")
    return text


def dead_letter_counts(subscriber: str | None = None) -> Counter:
    """How many dead-letter records mention each UUID (an id or a marker);
    ``subscriber``: only the records of the subscriber that gave up."""
    rows = DeadLetter.objects.all()
    if subscriber is not None:
        rows = rows.filter(subscriber=subscriber)
    found: Counter = Counter()
    for record in rows.values().iterator():
        found.update(set(_UUID.findall(_record_text(record))))
    return found


def dead_letter_reasons(tokens: Iterable[str]) -> dict[str, str]:
    """The reason recorded for each token found in the dead-letter store."""
    wanted = set(tokens)
    reasons: dict[str, str] = {}
    for record in DeadLetter.objects.values().iterator():
        for token in set(_UUID.findall(_record_text(record))) & wanted:
            reasons[token] = record["reason"]
    return reasons


@dataclass
class Tally:
    """One subscriber's count: of ``sent`` (events it must apply plus
    malformed messages sent its way), how many it applied, how many are in
    the dead-letter store, lost (neither) and duplicated (extra copies);
    ``unexpected``: applications of events nobody sent it."""

    subscriber: str
    sent: int
    applied: int
    dead_lettered: int
    lost: int
    duplicated: int
    unexpected: int = 0


@dataclass
class Outcome:
    scenario: str
    tallies: dict[str, Tally]
    drain_seconds: float | None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, subscriber: str) -> Tally:
        return self.tallies[subscriber]

    @property
    def lost(self) -> int:
        return sum(t.lost for t in self.tallies.values())

    @property
    def duplicated(self) -> int:
        return sum(t.duplicated for t in self.tallies.values())

    @property
    def unexpected(self) -> int:
        return sum(t.unexpected for t in self.tallies.values())

    def rows(self) -> list[list[str]]:
        """One table row per subscriber (the scenario and drain on the first)."""
        drain = "-" if self.drain_seconds is None else f"{self.drain_seconds:.1f} s"
        rows = []
        for i, tally in enumerate(self.tallies.values()):
            rows.append(
                [
                    self.scenario if i == 0 else "",
                    tally.subscriber,
                    str(tally.sent),
                    str(tally.applied),
                    str(tally.dead_lettered),
                    str(tally.lost),
                    str(tally.duplicated),
                    drain if i == 0 else "",
                ]
            )
        return rows


ROW_HEADERS = [
    "scenario",
    "subscriber",
    "sent",
    "applied",
    "dead-lettered",
    "lost",
    "duplicated",
    "drain after recovery",
]


def count(
    scenario: str,
    *,
    expected: Mapping[str, Iterable[str]],
    dead: Mapping[str, Iterable[str]] | None = None,
    drain_seconds: float | None,
) -> Outcome:
    """Count every event, per subscriber.

    ``expected[name]``: ids subscriber ``name`` must apply; ``dead[name]``:
    markers of malformed messages sent its way (``INGEST``: to the ingest
    consumer), which must reach the dead-letter store. An expected id is
    dead-lettered if that subscriber's dead letters name it; lost if
    neither applied nor dead-lettered; duplicated counts extra copies.
    """
    dead = dead or {}
    names = [n for n in SUBSCRIBERS if n in expected or n in dead]
    names += [n for n in [*expected, *dead] if n not in names]
    all_dead = dead_letter_counts()
    tallies = {}
    for name in names:
        to_apply = set(expected.get(name, ()))
        to_dead = set(dead.get(name, ()))
        receipts = RECEIPTS[name]() if name in RECEIPTS else Counter()
        own_dead = dead_letter_counts(name) if to_apply else Counter()
        tallies[name] = Tally(
            subscriber=name,
            sent=len(to_apply) + len(to_dead),
            applied=sum(1 for i in to_apply if receipts[i]),
            dead_lettered=sum(1 for i in to_apply if own_dead[i])
            + sum(1 for m in to_dead if all_dead[m]),
            lost=sum(1 for i in to_apply if not receipts[i] and not own_dead[i])
            + sum(1 for m in to_dead if not all_dead[m] and not receipts[m]),
            duplicated=sum(max(receipts[i] - 1, 0) for i in to_apply)
            + sum(max(all_dead[m] - 1, 0) for m in to_dead),
            unexpected=sum(n for i, n in receipts.items() if i not in to_apply),
        )
    return Outcome(scenario=scenario, tallies=tallies, drain_seconds=drain_seconds)


def wait_drained(
    expected: Mapping[str, Iterable[str]],
    dead: Iterable[str] = (),
    *,
    timeout: float,
    give_up: Callable[[], bool] = lambda: False,
    settle: float = 1.0,
) -> bool:
    """Wait until every subscriber applied every event expected of it and
    every marker in ``dead`` is in the dead-letter store (or ``give_up()``),
    then ``settle`` seconds more so that a late redelivery would show as a
    duplicate. Returns whether everything arrived."""
    expected = {name: set(ids) for name, ids in expected.items()}
    dead = set(dead)

    def done() -> bool:
        for name, ids in expected.items():
            receipts = RECEIPTS[name]()
            if any(not receipts[i] for i in ids):
                return False
        if dead:
            found = dead_letter_counts()
            return all(found[m] for m in dead)
        return True

    deadline = time.monotonic() + timeout
    arrived = False
    while time.monotonic() < deadline:
        if give_up():
            break
        if done():
            arrived = True
            break
        time.sleep(0.25)
    time.sleep(settle)
    return arrived
