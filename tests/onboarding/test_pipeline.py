"""Onboarding on the real stack: PostgreSQL, RabbitMQ, a real ``celery
worker``, an aiosmtpd SMTP server process and the stand-in directory service
process (examples/directory_service.py).

The outage test keeps the directory down ``ONBOARDING_OUTAGE_SECONDS`` (15
here; `make test-onboarding-outage` runs the 60 s version) after the breaker
opened, with
``ONBOARDING_OUTAGE_REGISTRATIONS`` (500) registrations; its counts are
printed (run with ``-s`` to see them).
"""

import json
import math
import os
import time
import uuid

import pytest

from feed.models import FeedEvent
from onboarding.models import BreakerState, DirectoryAccount, WelcomeMail
from portal.messaging.models import DeadLetter, LoggedEvent
from portal.messaging.router import route_pending
from registrar.models import Onboarding
from registrar.services import (
    employee_change_position,
    employee_onboarding_retry,
    employee_register,
)
from tests.factories import DepartmentFactory
from tests.helpers import wait_for

from .conftest import kill_pool_processes

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

PREFIX = "onboarding-test"
OUTAGE_SECONDS = float(os.environ.get("ONBOARDING_OUTAGE_SECONDS", "15"))
OUTAGE_REGISTRATIONS = int(os.environ.get("ONBOARDING_OUTAGE_REGISTRATIONS", "500"))


def register(count: int, *, position: str = "Engineer", prefix: str = "person"):
    department = DepartmentFactory(name=f"Dept {uuid.uuid4().hex[:6]}")
    tag = uuid.uuid4().hex[:6]
    return [
        employee_register(
            full_name=f"Person {n} {tag}",
            email=f"{prefix}{n}-{tag}@example.com",
            position=position,
            department=department,
        )
        for n in range(count)
    ]


def route_everything() -> None:
    while route_pending().sent:
        pass


def statuses(employees) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Onboarding.objects.filter(
        employee__in=[e.pk for e in employees]
    ).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def all_ready(employees):
    def check():
        return statuses(employees) == {"ready": len(employees)}

    check.__doc__ = f"all {len(employees)} onboardings ready"
    return check


def registration_id(employee) -> str:
    return Onboarding.objects.get(employee=employee).registration_event_id


def test_registering_sends_one_mail_makes_one_account_and_becomes_ready(
    onboarding_worker, smtp_server, directory
):
    onboarding_worker(PREFIX)
    [anna] = register(1)
    assert Onboarding.objects.get(employee=anna).status == "pending"
    route_everything()

    wait_for(all_ready([anna]), timeout=60)
    [message] = smtp_server.messages()
    assert message["To"] == anna.email
    assert "Welcome aboard" in message["Subject"]
    assert sorted(p.get_content_type() for p in message.walk()) == [
        "multipart/alternative",
        "text/html",
        "text/plain",
    ]
    key = registration_id(anna)
    stats = directory.stats()
    assert stats["accounts_by_key"] == {key: 1}
    assert stats["calls_by_key"] == {key: 1}
    onboarding = Onboarding.objects.get(employee=anna)
    assert onboarding.account_id == "acct-000001"
    assert onboarding.welcome_sent_at is not None
    # The replies went through the log, correlated with the registration.
    replies = LoggedEvent.objects.filter(source="/portal/onboarding")
    assert sorted(r.type for r in replies) == [
        "employee.account_provisioned",
        "employee.welcome_sent",
    ]
    assert {r.envelope["correlationid"] for r in replies} == {key}
    assert FeedEvent.objects.filter(type="employee.registered").count() == 1


def test_directory_down_during_registrations_breaker_bounds_calls_all_ready_once(
    onboarding_worker, smtp_server, directory
):
    fail_max, reset, concurrency = 5, 5.0, 2
    # Retries long enough to outlast the outage, held by RabbitMQ.
    delays = ",".join(["1", "2", "3", *["5"] * (int(OUTAGE_SECONDS / 5) * 2 + 12)])
    onboarding_worker(
        PREFIX,
        concurrency=concurrency,
        ONBOARDING_BREAKER_FAIL_MAX=str(fail_max),
        ONBOARDING_BREAKER_RESET_SECONDS=str(reset),
        ONBOARDING_ACCOUNTS_RETRY_DELAYS=delays,
        ONBOARDING_DIRECTORY_RATE_LIMIT="0",
    )
    directory.control(down=True, down_mode="reset")
    outage_started = time.monotonic()

    employees = register(OUTAGE_REGISTRATIONS)  # none of them waits or fails
    assert statuses(employees) == {"pending": OUTAGE_REGISTRATIONS}
    route_everything()

    # The workers find the directory down and the breaker opens; it stays
    # down ONBOARDING_OUTAGE_SECONDS from then (however long the workers took
    # to get to the first account on this shared machine), then comes back.
    def breaker_open():
        """the breaker opened"""
        return BreakerState.objects.filter(name="directory", state="open").exists()

    wait_for(breaker_open, timeout=120, interval=0.2)
    time.sleep(OUTAGE_SECONDS)
    during = directory.stats()
    # Read before the directory is back: a worker may finish one at once.
    during_statuses = statuses(employees)
    directory.control(down=False)
    outage = time.monotonic() - outage_started
    assert during["accounts"] == 0
    assert during_statuses == {"pending": OUTAGE_REGISTRATIONS}

    wait_for(all_ready(employees), timeout=240, interval=0.5)
    after = directory.stats()
    keys = {registration_id(e) for e in employees}
    per_key = after["accounts_by_key"]
    per_employee = after["accounts_by_employee"]
    mails = smtp_server.messages()
    summary = {
        "registrations": OUTAGE_REGISTRATIONS,
        "outage_seconds": round(outage, 1),
        "calls_during_outage": during["calls_while_down"],
        "calls_total": after["calls"],
        "accounts": after["accounts"],
        "accounts_per_key": sorted(set(per_key.values())),
        "accounts_per_employee": sorted(set(per_employee.values())),
        "answers": after["answers"],
        "replays_by_key": after["replays_by_key"],
        "statuses": statuses(employees),
        "mails": len(mails),
    }
    print(f"\nonboarding outage: {json.dumps(summary)}")

    # The breaker bounded the calls: the failures that opened it (plus those
    # already in flight), then about one trial per reset period.
    bound = fail_max + concurrency + math.ceil(outage / reset) + 1
    assert fail_max <= during["calls_while_down"] <= bound, summary
    # Exactly one account per registration, each made by one successful
    # call (no replays needed), every onboarding ready, one mail each.
    assert set(per_key) == keys
    assert set(per_key.values()) == {1}
    assert len(per_employee) == OUTAGE_REGISTRATIONS
    assert set(per_employee.values()) == {1}
    assert after["answers"].get("201") == OUTAGE_REGISTRATIONS
    assert after["replays_by_key"] == {}
    assert sorted(m["To"] for m in mails) == sorted(e.email for e in employees)
    assert not DeadLetter.objects.exists()


def test_a_slow_directory_never_holds_back_registration_or_the_feed(
    onboarding_worker, directory
):
    directory.control(latency_ms=2000)
    onboarding_worker(PREFIX)
    [first] = register(1)
    route_everything()

    def call_in_flight():
        """the directory is answering the first call (2 s)"""
        return directory.stats()["calls"] >= 1

    wait_for(call_in_flight, timeout=30)
    # Registrations go through while the directory holds its answer.
    later = register(4)
    route_everything()
    assert not DirectoryAccount.objects.filter(
        employee_id=first.pk, state="provisioned"
    ).exists()
    assert statuses(later) == {"pending": 4}
    # The feed has them all before the directory is done with them.
    wait_for(lambda: FeedEvent.objects.count() == 5, what="the feed has all five")
    assert DirectoryAccount.objects.filter(state="provisioned").count() < 5

    wait_for(all_ready([first, *later]), timeout=90)
    assert set(directory.stats()["accounts_by_key"].values()) == {1}


def test_a_refused_employee_fails_alone_and_hr_retry_after_the_fix_makes_it_ready(
    onboarding_worker, directory
):
    directory.control(refuse={"position": ["Contractor"]})
    onboarding_worker(PREFIX)
    others = register(3)
    [refused] = register(1, position="Contractor", prefix="contractor")
    route_everything()

    def refused_failed():
        """the refused employee's onboarding failed"""
        return Onboarding.objects.get(employee=refused).status == "failed"

    wait_for(all_ready(others), timeout=60)
    wait_for(refused_failed, timeout=60)
    onboarding = Onboarding.objects.get(employee=refused)
    assert list(onboarding.failures) == ["account"]
    assert "'Contractor' has no place in the directory" in onboarding.account_error
    assert onboarding.welcome_sent_at is not None
    [dead] = DeadLetter.objects.all()
    assert (dead.reason, dead.subscriber) == (
        "refused by directory",
        "onboarding_accounts",
    )
    assert "HTTP 400" in dead.error

    employee_change_position(employee=refused, position="Engineer")
    employee_onboarding_retry(employee=refused)
    route_everything()
    wait_for(all_ready([refused, *others]), timeout=60)
    stats = directory.stats()
    assert stats["accounts_by_key"][registration_id(refused)] == 1
    assert set(stats["accounts_by_key"].values()) == {1}
    assert len(stats["accounts_by_key"]) == 4


def test_smtp_server_down_mails_go_out_once_each_after_it_returns(
    onboarding_worker, smtp_server, directory
):
    smtp_server.stop()
    onboarding_worker(PREFIX)
    employees = register(3)
    route_everything()

    def tried_and_waiting():
        """a mail was tried and waits for its retry, none was sent"""
        mails = WelcomeMail.objects.filter(employee_id__in=[e.pk for e in employees])
        return any(
            m.attempts >= 1 and "Connection refused" in m.last_error for m in mails
        ) and all(m.state == "pending" for m in mails)

    wait_for(tried_and_waiting, timeout=60)
    wait_for(
        lambda: DirectoryAccount.objects.filter(state="provisioned").count() == 3,
        what="the accounts are made meanwhile",
    )
    assert statuses(employees) == {"pending": 3}
    assert not WelcomeMail.objects.filter(state="sent").exists()

    smtp_server.start()
    wait_for(all_ready(employees), timeout=90)
    mails = smtp_server.messages()
    assert sorted(m["To"] for m in mails) == sorted(e.email for e in employees)


def test_a_worker_killed_while_provisioning_makes_no_second_account(
    onboarding_worker, directory, smtp_server
):
    directory.control(latency_ms=4000)
    worker = onboarding_worker(PREFIX, concurrency=1)
    [anna] = register(1)
    key = registration_id(anna)
    route_everything()

    def call_in_flight():
        """the directory made the account and holds its answer"""
        return directory.stats()["accounts_by_key"].get(key) == 1

    wait_for(call_in_flight, timeout=30)
    killed = kill_pool_processes(worker)
    assert killed
    directory.control(latency_ms=0)

    wait_for(all_ready([anna]), timeout=90)
    stats = directory.stats()
    assert stats["calls_by_key"] == {key: 2}  # asked again after the kill
    assert stats["accounts_by_key"] == {key: 1}  # but one account
    assert stats["accounts_by_employee"] == {str(anna.pk): 1}
    assert DirectoryAccount.objects.get(employee_id=anna.pk).calls == 2
    assert len(smtp_server.messages()) == 1
    assert worker.alive()
