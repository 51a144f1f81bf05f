"""Every write of the feed."""

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from portal.messaging.contracts import ContractError, Event, validate_event
from portal.messaging.models import DeadLetter

from .models import FeedEvent
from .rendering import department_of, render_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyResult:
    created: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


def _dead_letter(raw: Any, error: ContractError) -> DeadLetter:
    fields = raw if isinstance(raw, dict) else {}

    def text(key: str) -> str:
        value = fields.get(key)
        return value[:200] if isinstance(value, str) else ""

    try:
        body = json.dumps(raw, sort_keys=True, default=str)
    except (TypeError, ValueError):
        body = repr(raw)
    return DeadLetter(
        reason=error.reason,
        error=str(error),
        event_type=text("type")[:100],
        source=text("source"),
        event_id=text("id"),
        body=body,
    )


def _feed_event(event: Event) -> FeedEvent:
    env = event.envelope
    data = event.data.model_dump(mode="json")
    return FeedEvent(
        source=env.source,
        event_id=env.id,
        type=env.type,
        time=env.time,
        data=data,
        text=render_text(env.type, data),
        department=department_of(env.type, data),
        traceparent=env.traceparent or "",
    )


@transaction.atomic
def feed_events_apply(*, envelopes: Iterable[Any]) -> ApplyResult:
    """Validate CloudEvents and add the valid ones to the feed, in one transaction.

    Idempotent: an event whose (source, id) is already on the feed, or appears
    twice in ``envelopes``, is skipped. An event that can never be applied is
    stored as a ``DeadLetter`` with its reason instead, without failing the
    others. Database errors propagate (the caller retries the whole batch,
    which is safe because of the idempotency).
    """
    valid: dict[tuple[str, str], FeedEvent] = {}
    dead: list[DeadLetter] = []
    duplicates = 0
    for raw in envelopes:
        try:
            event = validate_event(raw)
        except ContractError as error:
            logger.warning("Dead-lettering event: %s", error)
            dead.append(_dead_letter(raw, error))
            continue
        key = (event.envelope.source, event.envelope.id)
        if key in valid:
            duplicates += 1
            continue
        valid[key] = _feed_event(event)

    if valid:
        ids = {event_id for _, event_id in valid}
        existing = set(
            FeedEvent.objects.filter(event_id__in=ids).values_list("source", "event_id")
        )
        new = [event for key, event in valid.items() if key not in existing]
        duplicates += len(valid) - len(new)
        # ON CONFLICT DO NOTHING: a concurrent worker may insert the same event
        # between the check above and this insert.
        FeedEvent.objects.bulk_create(new, ignore_conflicts=True)
    else:
        new = []
    if dead:
        DeadLetter.objects.bulk_create(dead)
    return ApplyResult(created=len(new), duplicates=duplicates, dead_lettered=len(dead))
