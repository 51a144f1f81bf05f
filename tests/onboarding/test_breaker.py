"""The directory's circuit breaker and rate limit keep their state in the
database, shared by every process (here: several breaker objects, as
several worker processes would have)."""

import time
from collections import Counter

import pybreaker
import pytest

from onboarding.breaker import CircuitBreakerError, SharedCircuitBreaker
from onboarding.models import BreakerState, RateWindow
from onboarding.ratelimit import rate_limit_wait

pytestmark = pytest.mark.django_db


class Down(Exception):
    pass


def failing():
    raise Down("directory down")


def breakers(count: int, **options) -> list[SharedCircuitBreaker]:
    options = {"fail_max": 3, "reset_timeout": 60, "trial_timeout": 30, **options}
    return [SharedCircuitBreaker("test", **options) for _ in range(count)]


def test_failures_in_any_process_open_it_for_all():
    first, second = breakers(2)
    calls = []

    def call():
        calls.append(1)
        raise Down

    with pytest.raises(Down):
        first.call(call)
    with pytest.raises(Down):
        second.call(call)
    with pytest.raises(CircuitBreakerError):  # the third failure trips it
        first.call(call)
    assert BreakerState.objects.get(name="test").state == pybreaker.STATE_OPEN
    for breaker in (first, second):
        with pytest.raises(CircuitBreakerError):
            breaker.call(call)
    assert len(calls) == 3


def test_a_success_resets_the_shared_failure_count():
    first, second = breakers(2)
    for _ in range(2):
        with pytest.raises(Down):
            first.call(failing)
    assert second.call(lambda: "ok") == "ok"
    assert BreakerState.objects.get(name="test").fail_counter == 0
    with pytest.raises(Down):
        first.call(failing)
    assert first.state == pybreaker.STATE_CLOSED


def test_after_the_reset_timeout_one_process_makes_the_trial_call():
    first, second, third = breakers(3, reset_timeout=0.2)
    for _ in range(3):
        with pytest.raises((Down, CircuitBreakerError)):
            first.call(failing)
    time.sleep(0.3)
    seen = []

    def trial():
        # While the trial is in flight, the other processes fail fast.
        for other in (second, third):
            with pytest.raises(CircuitBreakerError, match="trial call"):
                other.call(lambda: seen.append("other"))
        seen.append("trial")
        return "ok"

    assert first.call(trial) == "ok"
    assert seen == ["trial"]
    assert BreakerState.objects.get(name="test").state == pybreaker.STATE_CLOSED
    assert second.call(lambda: "closed") == "closed"


def test_a_failed_trial_opens_it_for_another_period():
    (breaker,) = breakers(1, reset_timeout=0.2)
    for _ in range(3):
        with pytest.raises((Down, CircuitBreakerError)):
            breaker.call(failing)
    time.sleep(0.3)
    with pytest.raises(CircuitBreakerError, match="Trial call failed"):
        breaker.call(failing)
    with pytest.raises(CircuitBreakerError, match="still open"):
        breaker.call(lambda: "not called")


def test_the_rate_limit_admits_n_calls_per_second():
    admitted = []
    for _ in range(12):
        rate_limit_wait("test", 5)
        admitted.append(int(time.time()))
    per_second = Counter(admitted)
    assert max(per_second.values()) <= 5
    assert len(per_second) >= 3  # 12 calls at 5 a second: three seconds
    assert RateWindow.objects.get(name="test").count <= 5


def test_no_rate_limit_when_zero():
    assert [rate_limit_wait("test", 0) for _ in range(100)] == [0.0] * 100
    assert not RateWindow.objects.exists()
