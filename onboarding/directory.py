"""The directory service's HTTP client: timeouts, breaker, rate limit.

``directory_account_create`` asks the directory to create an employee's
account, sending the idempotency key as ``Idempotency-Key`` so that a repeated
call (a lost answer, a killed worker, a retry) returns the same account
instead of making a second one. What can happen:

* 2xx: the account id.
* The directory is slow, unreachable or failing (connect/read timeouts,
  connection errors, 5xx, 408, 429): the HTTP client's error or
  ``DirectoryUnavailable`` propagates, the breaker counts it, and the task
  retries after its delay. While the breaker is open no call is made:
  ``CircuitBreakerError`` at once.
* Any other 4xx: ``DirectoryRefused`` with the answer; retrying the same
  request cannot help.

Calls go through ``rate_limit_wait`` (``ONBOARDING_DIRECTORY_RATE_LIMIT`` per
second across all workers). Must not run inside a transaction: the breaker
and the limiter write their shared state in autocommit, and a transaction
must never stay open over a network call.
"""

import json
import os
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from .breaker import CircuitBreakerError, SharedCircuitBreaker
from .ratelimit import rate_limit_wait

BREAKER_NAME = "directory"
RATE_LIMIT_NAME = "directory"
ACCOUNTS_PATH = "/accounts"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Answers that say "not now" rather than "never".
RETRYABLE_CLIENT_ERRORS = {408, 425, 429}


class DirectoryUnavailable(Exception):
    """The directory answered with a server error (or "not now")."""


class DirectoryRefused(Exception):
    """The directory refused the request (4xx): permanent."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        self.message = _message_of(body) or f"HTTP {status}"
        super().__init__(f"directory answered {status}: {self.message}")


# The errors that make the directory's task retry later.
TRANSIENT_DIRECTORY_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,
    httpx.TransportError,
    DirectoryUnavailable,
    CircuitBreakerError,
)


@dataclass(frozen=True)
class DirectoryAnswer:
    account_id: str
    status: int


def _message_of(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500]
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if isinstance(data.get(key), str):
                return data[key][:500]
    return body.strip()[:500]


_per_process: dict[str, Any] = {}


def _process_local(key: str, make):
    """One object per process (the worker's pool processes are forked)."""
    pid = os.getpid()
    if _per_process.get("pid") != pid:
        _per_process.clear()
        _per_process["pid"] = pid
    if key not in _per_process:
        _per_process[key] = make()
    return _per_process[key]


def directory_client() -> httpx.Client:
    return _process_local(
        "client",
        lambda: httpx.Client(
            base_url=settings.ONBOARDING_DIRECTORY_URL,
            timeout=httpx.Timeout(
                settings.ONBOARDING_DIRECTORY_READ_TIMEOUT,
                connect=settings.ONBOARDING_DIRECTORY_CONNECT_TIMEOUT,
            ),
            headers={"User-Agent": "portal-onboarding"},
        ),
    )


def directory_breaker() -> SharedCircuitBreaker:
    return _process_local(
        "breaker",
        lambda: SharedCircuitBreaker(
            BREAKER_NAME,
            fail_max=settings.ONBOARDING_BREAKER_FAIL_MAX,
            reset_timeout=settings.ONBOARDING_BREAKER_RESET_SECONDS,
            trial_timeout=settings.ONBOARDING_DIRECTORY_CONNECT_TIMEOUT
            + settings.ONBOARDING_DIRECTORY_READ_TIMEOUT
            + 1,
        ),
    )


def _post(idempotency_key: str, account: dict[str, Any]) -> httpx.Response:
    rate_limit_wait(RATE_LIMIT_NAME, settings.ONBOARDING_DIRECTORY_RATE_LIMIT)
    response = directory_client().post(
        ACCOUNTS_PATH, json=account, headers={IDEMPOTENCY_HEADER: idempotency_key}
    )
    if response.status_code >= 500 or response.status_code in RETRYABLE_CLIENT_ERRORS:
        raise DirectoryUnavailable(
            f"directory answered {response.status_code}: "
            f"{_message_of(response.text) or response.reason_phrase}"
        )
    return response


def directory_account_create(
    *, idempotency_key: str, account: dict[str, Any]
) -> DirectoryAnswer:
    """Create (or find, for a key already used) the account; see the module
    doc for what it raises."""
    response = directory_breaker().call(_post, idempotency_key, account)
    if not 200 <= response.status_code < 300:
        raise DirectoryRefused(response.status_code, response.text)
    try:
        account_id = response.json()["id"]
    except (ValueError, KeyError, TypeError):
        raise DirectoryRefused(response.status_code, response.text) from None
    return DirectoryAnswer(account_id=str(account_id), status=response.status_code)


def directory_forget_process_state() -> None:
    """Drop this process's client and breaker object (after settings change;
    the shared state in the database stays)."""
    client = _per_process.get("client")
    if client is not None:
        client.close()
    _per_process.clear()
