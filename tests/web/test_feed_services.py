"""Reactions, thanks and the feed page selector."""

import base64
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction

from feed.models import FeedEvent, Reaction, Thanks
from feed.selectors import InvalidCursor, decode_cursor, encode_cursor, feed_page
from feed.services import FeedError, reaction_set, reaction_toggle, thanks_send
from portal.messaging.models import LoggedEvent
from portal.roles import HR_GROUP, STAFF_GROUP, is_hr, is_staff_member
from tests.factories import EmployeeFactory
from tests.web.factories import FeedEventFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_roles_exist_with_their_permissions():
    hr = Group.objects.get(name=HR_GROUP)
    staff = Group.objects.get(name=STAFF_GROUP)
    hr_perms = set(hr.permissions.values_list("codename", flat=True))
    staff_perms = set(staff.permissions.values_list("codename", flat=True))
    assert {"add_employee", "change_employee", "change_department"} <= hr_perms
    assert "add_employee" not in staff_perms
    assert {"view_feedevent", "add_reaction", "delete_reaction", "add_thanks"} <= (
        staff_perms
    )


def test_role_helpers():
    staff = UserFactory(groups=[STAFF_GROUP])
    hr = UserFactory(groups=[HR_GROUP])
    admin = UserFactory(is_staff=True, is_superuser=True)
    nobody = UserFactory()
    assert (is_hr(staff), is_hr(hr), is_hr(admin), is_hr(nobody)) == (
        False,
        True,
        True,
        False,
    )
    assert [is_staff_member(u) for u in (staff, hr, admin, nobody)] == [
        True,
        True,
        True,
        False,
    ]


def test_reaction_toggles_on_and_off_per_person():
    event = FeedEventFactory()
    anna, ivan = UserFactory(), UserFactory()
    assert reaction_toggle(feed_event=event, user=anna, kind="like") == (
        True,
        {"like": 1, "fire": 0},
    )
    assert reaction_toggle(feed_event=event, user=ivan, kind="like") == (
        True,
        {"like": 2, "fire": 0},
    )
    assert reaction_toggle(feed_event=event, user=anna, kind="fire") == (
        True,
        {"like": 2, "fire": 1},
    )
    assert reaction_toggle(feed_event=event, user=anna, kind="like") == (
        False,
        {"like": 1, "fire": 1},
    )
    assert Reaction.objects.count() == 2


def test_unknown_reaction_is_refused():
    with pytest.raises(FeedError) as error:
        reaction_toggle(feed_event=FeedEventFactory(), user=UserFactory(), kind="meh")
    assert error.value.field == "kind"


def test_thanks_stores_and_emits_one_event():
    olga, ivan = EmployeeFactory(full_name="Olga"), EmployeeFactory(full_name="Ivan")
    thanks = thanks_send(from_employee=ivan, to_employee=olga, message=" for the demo ")
    assert thanks.message == "for the demo"
    [row] = LoggedEvent.objects.all()
    assert row.type == "thanks.sent"
    assert row.envelope["data"] == {
        "from_employee_id": ivan.pk,
        "from_name": "Ivan",
        "from_department_id": ivan.department_id,
        "to_employee_id": olga.pk,
        "to_name": "Olga",
        "to_department_id": olga.department_id,
        "message": "for the demo",
    }
    assert row.envelope["dataschemaversion"] == 2


@pytest.mark.parametrize(
    ("message", "same", "field"),
    [
        ("", False, "message"),
        ("x" * 501, False, "message"),
        ("hi", True, "to_employee"),
    ],
)
def test_invalid_thanks_store_nothing(message, same, field):
    ivan = EmployeeFactory()
    other = ivan if same else EmployeeFactory()
    with pytest.raises(FeedError) as error:
        thanks_send(from_employee=ivan, to_employee=other, message=message)
    assert error.value.field == field
    assert not Thanks.objects.exists()
    assert not LoggedEvent.objects.exists()


def test_feed_pages_by_time_then_id_without_gaps_or_repeats():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # Several events share a time: the id breaks the tie.
    for i in range(25):
        FeedEventFactory(time=start + timedelta(minutes=i // 3))
    expected = list(
        FeedEvent.objects.order_by("-time", "-id").values_list("pk", flat=True)
    )
    seen, cursor = [], None
    while True:
        items, cursor = feed_page(before=cursor, limit=4)
        seen += [e.pk for e in items]
        if cursor is None:
            break
    assert seen == expected


def test_feed_page_filters_and_annotates():
    user = UserFactory()
    joined = FeedEventFactory(department="Platform", department_id=1)
    FeedEventFactory(type="department.renamed", department="Finance", department_id=2)
    reaction_toggle(feed_event=joined, user=user, kind="fire")
    items, cursor = feed_page(user=user, department_id=1)
    assert [e.pk for e in items] == [joined.pk]
    assert cursor is None
    assert (items[0].like_count, items[0].fire_count) == (0, 1)
    assert (items[0].liked, items[0].fired) == (False, True)
    items, _ = feed_page(user=user, event_type="department.renamed")
    assert [e.type for e in items] == ["department.renamed"]


def test_cursor_round_trips_and_rejects_garbage():
    event = FeedEventFactory()
    assert decode_cursor(encode_cursor(event)) == (event.time, event.pk)
    # Cut inside the time: what is left names no place in the feed. (Cutting
    # the end could leave a shorter id, which is a valid cursor.)
    cut = encode_cursor(event)[:12]
    naive = base64.urlsafe_b64encode(b"2026-01-01T09:00:00|5").decode()
    for bad in ("nope", "", "!!!!", cut, naive):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)


def test_reaction_set_adds_and_removes_idempotently():
    event = FeedEventFactory()
    anna, ivan = UserFactory(), UserFactory()
    reaction_set(feed_event=event, user=ivan, kind="like", active=True)
    for _ in range(2):
        counts = reaction_set(feed_event=event, user=anna, kind="like", active=True)
        assert counts == {"like": 2, "fire": 0}
    assert Reaction.objects.filter(user=anna).count() == 1
    for _ in range(2):
        counts = reaction_set(feed_event=event, user=anna, kind="like", active=False)
        assert counts == {"like": 1, "fire": 0}
    assert list(Reaction.objects.values_list("user", flat=True)) == [ivan.pk]


def test_reaction_set_changes_only_that_kind_of_that_person_on_that_event():
    event, other_event = FeedEventFactory(), FeedEventFactory()
    anna, ivan = UserFactory(), UserFactory()
    for user, feed_event in ((anna, other_event), (ivan, event)):
        reaction_set(feed_event=feed_event, user=user, kind="like", active=True)
    reaction_set(feed_event=event, user=anna, kind="fire", active=True)
    reaction_set(feed_event=event, user=anna, kind="like", active=False)
    assert sorted(Reaction.objects.values_list("feed_event", "user", "kind")) == sorted(
        [
            (other_event.pk, anna.pk, "like"),
            (event.pk, ivan.pk, "like"),
            (event.pk, anna.pk, "fire"),
        ]
    )


def test_reaction_set_agrees_with_reaction_toggle():
    """The web page toggles, the API sets: both see one reaction."""
    event, user = FeedEventFactory(), UserFactory()
    reaction_toggle(feed_event=event, user=user, kind="fire")
    assert reaction_set(feed_event=event, user=user, kind="fire", active=True) == {
        "like": 0,
        "fire": 1,
    }
    reaction_set(feed_event=event, user=user, kind="fire", active=False)
    assert reaction_toggle(feed_event=event, user=user, kind="fire")[0] is True


@pytest.mark.parametrize("active", [True, False])
def test_reaction_set_refuses_an_unknown_kind(active):
    event, user = FeedEventFactory(), UserFactory()
    with pytest.raises(FeedError) as error:
        reaction_set(feed_event=event, user=user, kind="heart", active=active)
    assert error.value.field == "kind"
    assert "like" in error.value.message
    assert not Reaction.objects.exists()


def _wait_for_a_blocked_backend(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                "'Lock' AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    pytest.fail("the second request never waited for the first one")


@pytest.mark.real_stack
@pytest.mark.django_db(transaction=True)
def test_two_requests_adding_one_reaction_at_once_store_it_once():
    """The second add waits for the first to commit, then finds the reaction
    there: no IntegrityError, one row, the counts after both."""
    event, user = FeedEventFactory(), UserFactory()
    outcome: dict = {}

    def second_request():
        try:
            outcome["counts"] = reaction_set(
                feed_event=event, user=user, kind="like", active=True
            )
        except Exception as error:
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=second_request)
    with transaction.atomic():
        reaction_set(feed_event=event, user=user, kind="like", active=True)
        thread.start()
        # The second insert now waits on the unique index for this commit.
        _wait_for_a_blocked_backend()
    thread.join(timeout=10)
    assert "error" not in outcome, outcome
    assert outcome["counts"] == {"like": 1, "fire": 0}
    assert Reaction.objects.count() == 1
