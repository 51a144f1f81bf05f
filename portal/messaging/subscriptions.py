"""Subscriptions: who receives which events of the log, and how.

An app that wants events declares a ``Subscription`` in its own code and
registers it in its ``AppConfig.ready()``; the messaging layer never names
an app. The relay routes every logged event whose type matches one of a
subscription's patterns (``patterns.type_matches``: ``employee.*``, ``#``)
to that subscription's Celery task, on the subscription's own durable quorum
queue, several events per task message. Each subscription has its own retry
delays, delivery limit and dead letters, so one slow or failing subscriber
never holds back another.

Every knob can be overridden from the environment through Django settings
named after the subscription's ``settings_prefix`` (``FEED_QUEUE``,
``FEED_RETRY_DELAYS``, ``FEED_DELIVERY_LIMIT``, ``FEED_TASK_MAX_BYTES``,
``FEED_EVENTS_PER_MESSAGE``, ``FEED_SPREAD``), read each time they are used.

The ``portal.broadcast`` exchange is a destination too (``BROADCAST``): every
logged event is published there once, for services outside the portal.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .patterns import pattern_problem, types_match

# The destination name of the portal.broadcast exchange in LoggedEvent.undelivered.
BROADCAST = "broadcast"


@dataclass(frozen=True)
class Subscription:
    """What one subscriber receives and how it is delivered.

    ``name`` identifies it in the log's delivery tracking, in dead letters
    and in metrics; ``patterns`` select event types; ``task`` is the name of
    its Celery task (which takes a list of CloudEvents), made with
    ``subscriber_task``. The rest are defaults that settings named
    ``<settings_prefix>_<KNOB>`` override.
    """

    name: str
    patterns: tuple[str, ...]
    task: str
    settings_prefix: str
    queue_name: str = ""
    retry_delays: tuple[int, ...] = (5, 30, 300, 1800)
    delivery_limit: int = 10
    task_max_bytes: int = 1024 * 1024
    events_per_message: int = 1000
    # The fewest task messages a pass's events go out in (when there are at
    # least that many events): a burst is shared by as many worker processes.
    spread: int = 1
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or self.name == BROADCAST or "." in self.name:
            raise ValueError(f"invalid subscription name {self.name!r}")
        if not self.patterns:
            raise ValueError(f"subscription {self.name!r} has no event-type patterns")
        for pattern in self.patterns:
            if problem := pattern_problem(pattern):
                raise ValueError(f"subscription {self.name!r}: {problem}")

    def _setting(self, knob: str, default: Any, cast: Any = str) -> Any:
        """``<prefix>_<knob>`` from Django's settings, else from the
        environment (so an app's subscriber needs no settings of its own),
        else ``default``."""
        name = f"{self.settings_prefix}_{knob}"
        if hasattr(settings, name):
            return getattr(settings, name)
        if name in os.environ:
            return cast(os.environ[name])
        return default

    @property
    def queue(self) -> str:
        """Its task queue (``<prefix>_QUEUE``; the name by default)."""
        return str(self._setting("QUEUE", self.queue_name or self.name))

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"

    @property
    def delays(self) -> tuple[int, ...]:
        """Seconds between retries of a transient failure (``_RETRY_DELAYS``):
        whole seconds, at least 1 (RabbitMQ holds them: native delayed
        delivery counts in seconds)."""
        delays = tuple(self._setting("RETRY_DELAYS", self.retry_delays, _seconds))
        if any(not isinstance(d, int) or d < 1 for d in delays):
            raise ImproperlyConfigured(
                f"{self.settings_prefix}_RETRY_DELAYS: whole seconds of at least "
                f"1, e.g. 5,30,300 (got {delays!r})"
            )
        return delays

    @property
    def max_deliveries(self) -> int:
        """Deliveries before RabbitMQ dead-letters a message (``_DELIVERY_LIMIT``)."""
        return int(self._setting("DELIVERY_LIMIT", self.delivery_limit, int))

    @property
    def max_message_bytes(self) -> int:
        """The biggest task message its consumer reads (``<prefix>_TASK_MAX_BYTES``)."""
        return int(self._setting("TASK_MAX_BYTES", self.task_max_bytes, int))

    @property
    def max_events_per_message(self) -> int:
        """The most events the relay packs into one task message."""
        return int(self._setting("EVENTS_PER_MESSAGE", self.events_per_message, int))

    @property
    def min_messages(self) -> int:
        """The fewest task messages the events of one relay pass (or one
        replay chunk) are split into, when there are at least that many
        (``<prefix>_SPREAD``): a subscriber whose work per event is slow
        (an outside call) packs many events per message in a backlog, and
        still shares a small burst among that many worker processes."""
        spread = self._setting("SPREAD", self.spread, int)
        if not isinstance(spread, int) or spread < 1:
            raise ImproperlyConfigured(
                f"{self.settings_prefix}_SPREAD: a whole number of at least 1 "
                f"(got {spread!r})"
            )
        return spread

    def wants(self, event_type: str) -> bool:
        return types_match(self.patterns, event_type)


def _seconds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ImproperlyConfigured(
            f"retry delays are whole seconds separated by commas, not {text!r}"
        ) from None


_registry: dict[str, Subscription] = {}


def subscription_register(subscription: Subscription) -> Subscription:
    """Add ``subscription`` (from an app's ``ready()``); idempotent for the
    same declaration, an error for another one under the same name."""
    known = _registry.get(subscription.name)
    if known is not None and known != subscription:
        raise ValueError(f"another subscription is named {subscription.name!r}")
    _registry[subscription.name] = subscription
    return subscription


def subscription_unregister(name: str) -> None:
    """Forget a subscription (tests that declare one of their own)."""
    _registry.pop(name, None)


def subscriptions() -> list[Subscription]:
    """Every registered subscription, in registration order."""
    return list(_registry.values())


def subscription_named(name: str) -> Subscription | None:
    return _registry.get(name)


def subscription_for_task(task: str) -> Subscription | None:
    return next((s for s in _registry.values() if s.task == task), None)


def subscription_for_queue(queue: str) -> Subscription | None:
    """The subscription whose task or dead-letter queue is ``queue``."""
    return next(
        (s for s in _registry.values() if queue in (s.queue, s.dead_letter_queue)),
        None,
    )


def broadcast_enabled() -> bool:
    """Is ``portal.broadcast`` a destination? Only on RabbitMQ, unless switched off."""
    return settings.EVENTS_BROADCAST and settings.CELERY_BROKER_URL.startswith(
        ("amqp", "pyamqp")
    )


def destinations_for(event_type: str) -> list[str]:
    """Where a logged event of ``event_type`` must go: the subscriptions that
    want it, in registration order, then the broadcast exchange."""
    names = [s.name for s in _registry.values() if s.wants(event_type)]
    if broadcast_enabled():
        names.append(BROADCAST)
    return names


def destinations_known(names: Iterable[str]) -> list[str]:
    """``names`` less any no longer registered (a removed subscriber)."""
    return [n for n in names if n == BROADCAST or n in _registry]
