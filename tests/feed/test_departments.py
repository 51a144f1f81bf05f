"""The feed files events under department ids: v1 and v2 alike, across
renames, and rows from before ids backfilled."""

import importlib

import pytest
from django.apps import apps

from feed.models import FeedEvent
from feed.selectors import feed_page
from feed.services import feed_events_apply, thanks_send
from portal.messaging.contracts import events_upcast, upcast_batch
from portal.messaging.models import LoggedEvent
from registrar.services import (
    department_create,
    department_rename,
    employee_change_position,
    employee_move_to_team,
    employee_register,
    team_create,
)
from tests.helpers import make_envelope
from tests.web.factories import FeedEventFactory

pytestmark = pytest.mark.django_db


def apply_events(events: list) -> None:
    """What the feed's task does with a batch (``subscriber_task``), without
    the worker's connection housekeeping, which would end the test's
    transaction; the real worker runs it in tests/browser."""
    with upcast_batch():
        feed_events_apply(envelopes=events_upcast(events))


def deliver_log() -> None:
    """Hand every logged event to the feed's task, as the relay would."""
    apply_events([row.envelope for row in LoggedEvent.objects.order_by("pk")])


def texts(department_id: int) -> set[str]:
    items, _ = feed_page(department_id=department_id, limit=100)
    return {e.text for e in items}


def test_v1_and_v2_events_of_one_department_are_filtered_alike():
    platform = department_create(name="Platform")
    finance = department_create(name="Finance")
    employee_register(
        full_name="Ann V2", email="ann@x.com", position="Dev", department=platform
    )
    deliver_log()
    v1 = make_envelope(
        source="/hr-import",
        data={
            "employee_id": 901,
            "full_name": "Ben V1",
            "position": "Dev",
            "department": "Platform",
            "team": None,
        },
    )
    other = make_envelope(
        source="/hr-import",
        data={
            "employee_id": 902,
            "full_name": "Cy V1",
            "position": "Dev",
            "department": "Finance",
            "team": None,
        },
    )
    apply_events([v1, other])
    assert {t.split(" joined")[0] for t in texts(platform.pk)} == {"Ann V2", "Ben V1"}
    assert {t.split(" joined")[0] for t in texts(finance.pk)} == {"Cy V1"}


def test_a_renamed_department_keeps_all_its_events():
    platform = department_create(name="Platform")
    core = team_create(name="Core", department=platform)
    other = department_create(name="Finance")
    anna = employee_register(
        full_name="Anna", email="anna@x.com", position="Dev", department=platform
    )
    ivan = employee_register(
        full_name="Ivan", email="ivan@x.com", position="Ops", department=other
    )
    employee_change_position(employee=anna, position="Lead Dev")
    employee_move_to_team(employee=anna, team=core)
    thanks_send(from_employee=ivan, to_employee=anna, message="for the help")
    department_rename(department=platform, name="Platform Engineering")
    deliver_log()
    assert texts(platform.pk) == {
        "Anna joined the company as Dev in Platform",
        "Anna is now Lead Dev (was Dev)",
        "Anna joined the Core team",
        "Ivan thanked Anna: for the help",
        "Platform was renamed to Platform Engineering",
    }
    assert texts(other.pk) == {"Ivan joined the company as Ops in Finance"}


def test_the_migration_backfills_department_ids_where_it_can():
    platform = department_create(name="Platform Engineering")
    finance = department_create(name="Finance")
    team = team_create(name="Core", department=finance)
    # Rows from before ids: names only, one under a name since renamed.
    old_name = FeedEventFactory(department="Platform")
    renamed = FeedEventFactory(
        type="department.renamed",
        data={
            "department_id": platform.pk,
            "old_name": "Platform",
            "new_name": "Platform Engineering",
        },
    )
    joined = FeedEventFactory(
        type="team.member_joined",
        data={"team_id": team.pk, "team": "Core", "employee_id": 1, "full_name": "A"},
        text="A joined the Core team",
    )
    lost = FeedEventFactory(department="Gone")
    FeedEvent.objects.update(department_id=None)
    migration = importlib.import_module("feed.migrations.0004_feed_department_ids")
    migration.backfill_department_ids(apps, None)
    ids = dict(FeedEvent.objects.values_list("pk", "department_id"))
    assert ids[old_name.pk] == platform.pk
    assert ids[renamed.pk] == platform.pk
    assert ids[joined.pk] == finance.pk
    assert ids[lost.pk] is None
