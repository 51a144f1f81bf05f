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

    FeedEventFactory.create_batch(5)
    output = _seed(employees=8, events=12)
    assert "Demo company exists" in output
    assert Employee.objects.count() == 10
    assert LoggedEvent.objects.count() == rows
    assert users.count() == 3
    assert Reaction.objects.exists()
    reactions = Reaction.objects.count()
    _seed()
    assert Reaction.objects.count() == reactions
