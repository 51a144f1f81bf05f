"""The audit subscriber's task: validate, claim in the inbox, record."""

import os
from typing import Any

from django.db import OperationalError, transaction

from portal.messaging.contracts import ContractError, validate_event
from portal.messaging.dead_letter_records import (
    dead_letter_for_contract_error,
    dead_letters_store,
)
from portal.messaging.inbox import inbox_claim
from portal.messaging.subscriber_tasks import subscriber_task

from .models import ReceivedEvent
from .subscriptions import AUDIT


@subscriber_task(AUDIT)
def record(events: list[Any]) -> dict[str, int]:
    """Record each employee event once; AUDIT_FAIL=1 makes it always fail."""
    if os.environ.get("AUDIT_FAIL") == "1":
        raise OperationalError("the audit store is down (AUDIT_FAIL=1)")
    valid, dead = [], []
    for raw in events:
        try:
            valid.append(validate_event(raw).as_json())
        except ContractError as error:
            dead.append(
                dead_letter_for_contract_error(
                    raw, error, subscriber=AUDIT.name, queue=AUDIT.queue
                )
            )
    with transaction.atomic():
        fresh = inbox_claim(subscriber=AUDIT.name, events=valid)
        ReceivedEvent.objects.bulk_create(
            ReceivedEvent(source=e["source"], event_id=e["id"], type=e["type"])
            for e in fresh
        )
        dead_letters_store(dead)
    return {"recorded": len(fresh), "dead_lettered": len(dead)}
