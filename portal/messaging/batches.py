"""Applying a batch of events when the database may refuse one of them.

A consumer applies a whole batch in one transaction: that is what makes it
fast, and what lets it ack the batch after one commit. The price is that one
event the database refuses for good (a value the contract did not foresee)
would fail the whole transaction, and with it every other event of the
batch. ``batch_apply`` keeps the fast path and, only after such a refusal,
finds the culprit by bisection inside one new transaction (a savepoint per
part), applies everything else, and hands the culprit to ``refuse``.
"""

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.db import (
    DataError,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    transaction,
)

logger = logging.getLogger(__name__)

# Worth waiting for: the database restarting or unreachable, a deadlock, a
# serialization failure, a statement timeout. The batch is retried whole.
TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)
# The database refuses the data itself: retrying the same rows cannot help.
PERMANENT_DATABASE_ERRORS = (
    DataError,
    IntegrityError,
    InternalError,
    NotSupportedError,
    ProgrammingError,
)

Item = TypeVar("Item")
Result = TypeVar("Result")


def batch_apply(
    items: Sequence[Item],
    *,
    apply: Callable[[Sequence[Item]], Result],
    refuse: Callable[[Item, Exception], None],
    finish: Callable[[], None] | None = None,
) -> list[Result]:
    """Run ``apply(items)`` and then ``finish()`` in one transaction.

    If the database refuses part of the batch for good
    (``PERMANENT_DATABASE_ERRORS``), that transaction is rolled back and a
    new one applies the batch in parts, each in a savepoint, halving any part
    the database refuses until the refused items stand alone; each is passed
    to ``refuse`` (which records it, say as a dead letter, for ``finish`` to
    store), the rest is applied, and ``finish`` runs before that commit.
    ``apply`` must therefore be idempotent over its items and write nothing
    outside the transaction. Transient errors propagate, for the caller to
    retry the whole batch. Returns the results of the ``apply`` calls that
    committed.
    """
    try:
        with transaction.atomic():
            results = [apply(items)]
            if finish is not None:
                finish()
            return results
    except PERMANENT_DATABASE_ERRORS as exc:
        logger.warning(
            "The database refused part of a batch of %d; isolating it: %s",
            len(items),
            exc,
        )
    with transaction.atomic():
        results = _apply_in_parts(items, apply=apply, refuse=refuse)
        if finish is not None:
            finish()
        return results


def _apply_in_parts(
    items: Sequence[Item],
    *,
    apply: Callable[[Sequence[Item]], Result],
    refuse: Callable[[Item, Exception], None],
) -> list[Result]:
    results: list[Result] = []
    parts = [items]
    while parts:
        part = parts.pop()
        try:
            with transaction.atomic():  # a savepoint
                results.append(apply(part))
        except PERMANENT_DATABASE_ERRORS as exc:
            if len(part) == 1:
                logger.error("The database refused an item for good: %s", exc)
                refuse(part[0], exc)
            else:
                middle = len(part) // 2
                parts += [part[middle:], part[:middle]]  # first half first
    return results
