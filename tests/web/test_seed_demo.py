"""seed_demo: demo users per role, a company built through the services,
and safe to run again."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from feed.models import Reaction, Thanks
from portal.messaging.models import LoggedEvent
from portal.roles import is_hr, is_staff_member
from registrar.models import Employee
from tests.web.factories import FeedEventFactory

pytestmark = pytest.mark.django_db


def _seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def test_seed_demo_builds_users_company_and_is_idempotent(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    output = _seed(employees=8, events=12)
    users = get_user_model().objects
    admin, hr, staff = (users.get(username=n) for n in ("admin", "hr", "staff"))
    assert admin.is_superuser
    assert (is_hr(hr), is_hr(staff), is_staff_member(staff)) == (True, False, True)
    assert hr.employee.email == "hr@example.com"
    assert staff.employee.email == "staff@example.com"
    password = (tmp_path / "demo-credentials.txt").read_text().strip()
    assert password in output
    assert staff.check_password(password)
    assert "people       [" in output
    assert Employee.objects.count() == 8 + 2
    # Every registration and change went through the services: one outbox
    # row per event, thanks included.
    registered = LoggedEvent.objects.filter(type="employee.registered").count()
    assert registered == 10
    assert LoggedEvent.objects.filter(type="thanks.sent").count() == (
        Thanks.objects.count()
    )
    rows = LoggedEvent.objects.count()
    assert not Reaction.objects.exists()  # the feed is still empty
    colleagues = users.exclude(username__in=["admin", "hr", "staff"])
    assert colleagues.count() == 6
    assert not any(u.has_usable_password() for u in colleagues)
    assert all(u.employee for u in colleagues)

    FeedEventFactory.create_batch(5)
    output = _seed(employees=8, events=12)
    assert "Demo company exists" in output
    assert Employee.objects.count() == 10
    assert LoggedEvent.objects.count() == rows
    assert users.count() == 3 + 6  # and colleagues who react
    assert Reaction.objects.exists()
    reactions = Reaction.objects.count()
    _seed()
    assert Reaction.objects.count() == reactions


def test_the_demo_history_spreads_over_weeks_with_careers_that_go_up(
    settings, tmp_path
):
    from datetime import datetime, timedelta

    from django.utils import timezone

    from registrar.management.commands.seed_demo import LADDERS, NAMES

    settings.VAR_DIR = tmp_path
    _seed(employees=30, events=80, seed=3)
    times = [
        datetime.fromisoformat(row.envelope["time"])
        for row in LoggedEvent.objects.all()
    ]
    assert max(times) - min(times) > timedelta(days=21)
    assert max(times) <= timezone.now()
    # Hired on the day their registration says.
    for row in LoggedEvent.objects.filter(type="employee.registered"):
        employee = Employee.objects.get(pk=row.envelope["data"]["employee_id"])
        assert employee.hired_on == datetime.fromisoformat(row.envelope["time"]).date()
    # Every promotion is one rung up a ladder of the person's department.
    rungs = {
        title: (ladder, rung)
        for ladders in LADDERS.values()
        for ladder in ladders
        for rung, title in enumerate(ladder)
    }
    promotions = LoggedEvent.objects.filter(type="employee.position_changed")
    assert promotions.count() > 5
    for row in promotions:
        data = row.envelope["data"]
        old, new = rungs[data["old_position"]], rungs[data["new_position"]]
        assert old[0] is new[0]
        assert new[1] == old[1] + 1
    # Given and family names of one locale (and agreeing in gender).
    for employee in Employee.objects.all():
        given, family = employee.full_name.split(" ", 1)
        if employee.email in ("hr@example.com", "staff@example.com"):
            continue
        locales = [
            locale for locale in NAMES.values() if given in locale["f"] + locale["m"]
        ]
        assert locales, employee.full_name
        families = [
            (f[1] if given in locale["f"] else f[0]) if isinstance(f, tuple) else f
            for locale in locales
            for f in locale["family"]
        ]
        assert family in families, employee.full_name
    assert Thanks.objects.values("from_employee").distinct().count() > 5
