"""The directory's circuit breaker: pybreaker, its state in the database.

Every worker process has its own ``pybreaker.CircuitBreaker`` object, all of
them reading and writing one ``BreakerState`` row, so they open and close
together:

* **closed**: calls go through; each failure (timeout, connection error,
  5xx) adds one to a shared counter, a success sets it back to 0. At
  ``ONBOARDING_BREAKER_FAIL_MAX`` consecutive failures, whichever process
  saw the last one opens the breaker for everybody.
* **open**: no process calls the directory; a call fails at once with
  ``CircuitBreakerError`` (a transient error: the task is retried after its
  delay, held by RabbitMQ), for ``ONBOARDING_BREAKER_RESET_SECONDS``.
* **half-open**: after that, the first process to ask takes the trial call
  (an atomic ``UPDATE … WHERE state = 'open'``); the others keep failing
  fast while it is in flight (at most one call's timeouts). Its success
  closes the breaker; its failure opens it for another period.

So while the directory is down, the calls made to it are about
``FAIL_MAX`` (plus the calls already in flight when it opened) and then one
per ``RESET_SECONDS``, whatever the number of waiting tasks and processes.
4xx answers are the directory working: they never count as failures.
"""

from datetime import datetime, timedelta
from typing import Any

import pybreaker
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import BreakerState

CircuitBreakerError = pybreaker.CircuitBreakerError


class DatabaseBreakerStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker's state in one ``BreakerState`` row, in autocommit: each
    change is visible to the other processes at once."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.trial_is_mine = False

    def _rows(self):
        return BreakerState.objects.filter(name=self.name)

    def _value(self, field: str) -> Any:
        value = self._rows().values_list(field, flat=True).first()
        if value is None and not self._rows().exists():
            self._create()
            value = self._rows().values_list(field, flat=True).first()
        return value

    def _create(self) -> None:
        try:
            with transaction.atomic():
                BreakerState.objects.create(name=self.name)
        except IntegrityError:
            pass  # another process created it first

    def snapshot(self) -> BreakerState:
        row = self._rows().first()
        if row is None:
            self._create()
            row = self._rows().get()
        return row

    @property
    def state(self) -> str:
        return self._value("state")

    @state.setter
    def state(self, state: str) -> None:
        if state == pybreaker.STATE_HALF_OPEN:
            taken = (
                self._rows()
                .filter(state=pybreaker.STATE_OPEN)
                .update(state=state, half_opened_at=timezone.now())
            )
            if not taken:
                raise CircuitBreakerError(
                    "another worker is making the trial call, circuit breaker open"
                )
            self.trial_is_mine = True
            return
        self.trial_is_mine = False
        if not self._rows().update(state=state):
            self._create()
            self._rows().update(state=state)

    def increment_counter(self) -> None:
        self._rows().update(fail_counter=F("fail_counter") + 1)

    def reset_counter(self) -> None:
        self._rows().filter(fail_counter__gt=0).update(fail_counter=0)

    def increment_success_counter(self) -> None:
        self._rows().update(success_counter=F("success_counter") + 1)

    def reset_success_counter(self) -> None:
        self._rows().filter(success_counter__gt=0).update(success_counter=0)

    @property
    def counter(self) -> int:
        return self._value("fail_counter") or 0

    @property
    def success_counter(self) -> int:
        return self._value("success_counter") or 0

    @property
    def opened_at(self) -> datetime | None:
        return self._value("opened_at")

    @opened_at.setter
    def opened_at(self, moment: datetime) -> None:
        self._rows().update(opened_at=moment)


class SharedCircuitBreaker:
    """A pybreaker breaker on ``DatabaseBreakerStorage`` that lets one
    process at a time make the half-open trial call."""

    def __init__(
        self, name: str, *, fail_max: int, reset_timeout: float, trial_timeout: float
    ) -> None:
        self.storage = DatabaseBreakerStorage(name)
        self.trial_timeout = trial_timeout
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            state_storage=self.storage,
            name=name,
        )

    def call(self, func, *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)`` through the breaker; raises
        ``CircuitBreakerError`` without calling while it is open."""
        row = self.storage.snapshot()
        if (
            row.state == pybreaker.STATE_HALF_OPEN
            and not self.storage.trial_is_mine
            and row.half_opened_at is not None
            and timezone.now() - row.half_opened_at
            < timedelta(seconds=self.trial_timeout)
        ):
            raise CircuitBreakerError(
                "a trial call is in flight elsewhere, circuit breaker open"
            )
        return self.breaker.call(func, *args, **kwargs)

    @property
    def state(self) -> str:
        return self.storage.state

    def reset(self) -> None:
        """Close it (an operator who knows the directory is back)."""
        self.breaker.close()
