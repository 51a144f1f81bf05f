"""The feed over the API: keyset pages newest first by event time, filters,
reaction counts by annotation, reactions and thanks."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from feed.models import Reaction, Thanks
from portal.messaging.models import LoggedEvent
from tests.factories import DepartmentFactory, EmployeeFactory
from tests.web.factories import FeedEventFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- Reading --------------------------------------------------------------------


def test_feed_items_carry_the_event_and_its_reactions(staff_client):
    event = FeedEventFactory(source="/tests", event_id="e-1", time=at(0))
    other = UserFactory()
    Reaction.objects.create(feed_event=event, user=other, kind="like")
    Reaction.objects.create(feed_event=event, user=staff_client.user, kind="like")
    Reaction.objects.create(feed_event=event, user=other, kind="fire")
    response = staff_client.get("/api/feed/")
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert body["next_cursor"] is None
    [item] = body["results"]
    assert item == {
        "id": "e-1",
        "source": "/tests",
        "type": "employee.registered",
        "time": "2026-11-01T12:00:00Z",
        "data": event.data,
        "text": "Anna Petrova joined the company as Backend Engineer in Platform",
        "department": "Platform",
        "department_id": None,
        "reactions": {"like": 2, "fire": 1},
        "reacted": {"like": True, "fire": False},
    }


def test_feed_is_newest_first_by_event_time_not_arrival(staff_client):
    # Arrival (id) order differs from event time order.
    FeedEventFactory(event_id="middle", time=at(5))
    FeedEventFactory(event_id="newest", time=at(10))
    FeedEventFactory(event_id="oldest", time=at(0))
    results = staff_client.get("/api/feed/").json()["results"]
    assert [item["id"] for item in results] == ["newest", "middle", "oldest"]


def test_cursor_pages_cover_the_feed_exactly_once(staff_client):
    # Several events share a time: the cursor must not skip or repeat them.
    expected = []
    for minute in range(7):
        for n in range(2):
            FeedEventFactory(event_id=f"{minute}-{n}", time=at(minute))
    for minute in reversed(range(7)):
        expected += [f"{minute}-1", f"{minute}-0"]
    seen, url, pages = [], "/api/feed/?limit=3", 0
    while url:
        response = staff_client.get(url)
        assert response.status_code == 200
        body = response.json()
        seen += [item["id"] for item in body["results"]]
        url, pages = body["next"], pages + 1
        if url:
            assert "cursor=" + body["next_cursor"] in url
            assert "limit=3" in url
    assert seen == expected
    assert pages == 5


def test_new_events_do_not_shift_an_older_page(staff_client):
    for minute in range(4):
        FeedEventFactory(event_id=f"e{minute}", time=at(minute))
    first = staff_client.get("/api/feed/?limit=2").json()
    FeedEventFactory(event_id="late", time=at(30))
    second = staff_client.get(first["next"]).json()
    assert [item["id"] for item in second["results"]] == ["e1", "e0"]


def test_feed_filters_by_type_and_department(staff_client):
    finance, sales = DepartmentFactory(name="Finance"), DepartmentFactory(name="Sales")
    FeedEventFactory(event_id="platform", department="Platform", time=at(0))
    FeedEventFactory(
        event_id="finance", department="Finance", department_id=finance.pk, time=at(1)
    )
    FeedEventFactory(
        event_id="renamed",
        type="department.renamed",
        department="Sales",
        department_id=sales.pk,
        time=at(2),
    )

    def ids(query: str) -> list[str]:
        response = staff_client.get(f"/api/feed/?{query}")
        assert response.status_code == 200
        return [item["id"] for item in response.json()["results"]]

    assert ids("type=employee.registered") == ["finance", "platform"]
    assert ids(f"department={finance.pk}") == ["finance"]
    assert ids("department=Finance") == ["finance"]  # a name: its id now
    assert ids("department=Nowhere") == []
    assert ids("type=department.renamed&department=Sales") == ["renamed"]
    assert ids("type=thanks.sent") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=%00", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("type=%00", "type"),
        ("department=" + "d" * 121, "department"),
    ],
)
def test_feed_refuses_bad_parameters(staff_client, query, field):
    FeedEventFactory()
    response = staff_client.get(f"/api/feed/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_a_feed_page_costs_the_same_queries_whatever_its_size(staff_client):
    def queries_for(count: int) -> int:
        for n in range(count):
            event = FeedEventFactory(time=at(n))
            Reaction.objects.create(
                feed_event=event, user=staff_client.user, kind="fire"
            )
        staff_client.get("/api/feed/")  # the session and user lookups warm up
        with CaptureQueriesContext(connection) as ctx:
            response = staff_client.get("/api/feed/?limit=50")
        assert len(response.json()["results"]) >= count
        return len(ctx.captured_queries)

    assert queries_for(2) == queries_for(20)


# --- Reactions --------------------------------------------------------------------


def reaction_url(event, kind: str) -> str:
    return f"/api/feed/{event.event_id}/reactions/{kind}/"


def test_react_and_take_back_idempotently(staff_client):
    event = FeedEventFactory()
    Reaction.objects.create(feed_event=event, user=UserFactory(), kind="like")
    url = reaction_url(event, "like")

    added = staff_client.post(url)
    assert added.status_code == 200
    assert added.json() == {
        "id": event.event_id,
        "source": event.source,
        "kind": "like",
        "reacted": True,
        "reactions": {"like": 2, "fire": 0},
    }
    again = staff_client.post(url)
    assert again.json()["reacted"] is True
    assert again.json()["reactions"] == {"like": 2, "fire": 0}
    assert Reaction.objects.filter(user=staff_client.user).count() == 1

    removed = staff_client.delete(url)
    assert removed.status_code == 200
    assert removed.json()["reacted"] is False
    assert removed.json()["reactions"] == {"like": 1, "fire": 0}
    assert staff_client.delete(url).json()["reactions"] == {"like": 1, "fire": 0}
    assert not Reaction.objects.filter(user=staff_client.user).exists()


def test_like_and_fire_are_separate(staff_client):
    event = FeedEventFactory()
    staff_client.post(reaction_url(event, "like"))
    fire = staff_client.post(reaction_url(event, "fire")).json()
    assert fire["reactions"] == {"like": 1, "fire": 1}
    feed = staff_client.get("/api/feed/").json()["results"][0]
    assert feed["reacted"] == {"like": True, "fire": True}


def test_reaction_errors(staff_client):
    event = FeedEventFactory()
    unknown_kind = staff_client.post(reaction_url(event, "heart"))
    assert unknown_kind.status_code == 400
    assert "kind" in unknown_kind.json()
    missing = staff_client.post("/api/feed/no-such-event/reactions/like/")
    assert missing.status_code == 404
    assert "detail" in missing.json()
    nul = staff_client.post("/api/feed/a%00b/reactions/like/")
    assert nul.status_code == 404
    too_long = staff_client.post(f"/api/feed/{'x' * 300}/reactions/like/")
    assert too_long.status_code == 404
    assert not Reaction.objects.exists()


def test_an_id_used_by_two_sources_needs_the_source(staff_client):
    first = FeedEventFactory(source="/a", event_id="same")
    second = FeedEventFactory(source="/b", event_id="same")
    ambiguous = staff_client.post("/api/feed/same/reactions/like/")
    assert ambiguous.status_code == 400
    assert "source" in ambiguous.json()
    chosen = staff_client.post("/api/feed/same/reactions/like/?source=/b")
    assert chosen.status_code == 200
    assert chosen.json()["source"] == "/b"
    assert list(Reaction.objects.values_list("feed_event", flat=True)) == [second.pk]
    assert not first.reactions.exists()


def test_event_ids_with_slashes_can_be_reacted_to(staff_client):
    event = FeedEventFactory(event_id="batch/7/item/3")
    response = staff_client.post("/api/feed/batch/7/item/3/reactions/fire/")
    assert response.status_code == 200
    assert response.json()["id"] == "batch/7/item/3"
    assert event.reactions.get().kind == "fire"


# --- Thanks -------------------------------------------------------------------------


def test_thanks_are_sent_as_the_linked_employee(staff_client, staff_employee):
    olga = EmployeeFactory(full_name="Olga Smirnova")
    response = staff_client.post(
        "/api/thanks/",
        {"to_employee": olga.pk, "message": "for the review"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    thanks = Thanks.objects.get()
    assert body["id"] == thanks.pk
    assert body["from_employee"] == {
        "id": staff_employee.pk,
        "full_name": "Ivan Ivanov",
    }
    assert body["to_employee"] == {"id": olga.pk, "full_name": "Olga Smirnova"}
    assert body["message"] == "for the review"
    row = LoggedEvent.objects.get()
    assert row.type == "thanks.sent"
    assert row.envelope["data"]["from_employee_id"] == staff_employee.pk


def test_thanks_need_a_linked_employee(staff_client):
    olga = EmployeeFactory()
    response = staff_client.post(
        "/api/thanks/", {"to_employee": olga.pk, "message": "hi"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["Your login is not linked to an employee."]
    }
    assert not Thanks.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "hi"}, "to_employee"),
        ({"to_employee": 999999, "message": "hi"}, "to_employee"),
        ({"to_employee": "Olga", "message": "hi"}, "to_employee"),
        ({"to_employee": "SELF", "message": "thanks me"}, "to_employee"),
        ({"to_employee": "OLGA"}, "message"),
        ({"to_employee": "OLGA", "message": ""}, "message"),
        ({"to_employee": "OLGA", "message": "   "}, "message"),
        ({"to_employee": "OLGA", "message": "m" * 501}, "message"),
        ({"to_employee": "OLGA", "message": ["hi"]}, "message"),
        ({"to_employee": "OLGA", "message": "a\x00b"}, "message"),
        ({"to_employee": "INACTIVE", "message": "hi"}, "to_employee"),
    ],
)
def test_thanks_validation_errors(staff_client, staff_employee, body, field):
    olga = EmployeeFactory()
    gone = EmployeeFactory(is_active=False)
    ids = {"OLGA": olga.pk, "SELF": staff_employee.pk, "INACTIVE": gone.pk}
    if body.get("to_employee") in ids:
        body = {**body, "to_employee": ids[body["to_employee"]]}
    response = staff_client.post("/api/thanks/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Thanks.objects.exists()
    assert not LoggedEvent.objects.exists()


def test_a_500_character_message_is_accepted(staff_client, staff_employee):
    olga = EmployeeFactory()
    response = staff_client.post(
        "/api/thanks/", {"to_employee": olga.pk, "message": "m" * 500}, format="json"
    )
    assert response.status_code == 201
    assert len(Thanks.objects.get().message) == 500
