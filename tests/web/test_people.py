"""People pages, names linking to profiles, aggregated cards."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from feed.rendering import CardGroup, cards_grouped, names_sentence
from feed.selectors import feed_page
from registrar.services import (
    department_create,
    employee_register,
    team_create,
)
from tests.factories import DepartmentFactory, EmployeeFactory, TeamFactory
from tests.web.factories import FeedEventFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_every_logged_in_user_finds_people_by_name_department_and_team(client):
    client.force_login(UserFactory())  # no role at all
    team = TeamFactory(name="Core")
    anna = EmployeeFactory(
        full_name="Anna Petrova", department=team.department, team=team
    )
    ben = EmployeeFactory(full_name="Ben Okafor")
    people = reverse("feed:people")

    def names(**query):
        response = client.get(people, query)
        assert response.status_code == 200
        return {e.full_name for e in response.context["page"]}

    assert names() == {"Anna Petrova", "Ben Okafor"}
    assert names(q="petro") == {"Anna Petrova"}
    assert names(department=ben.department_id) == {"Ben Okafor"}
    assert names(team=team.pk) == {"Anna Petrova"}
    assert names(department="x", team="") == {"Anna Petrova", "Ben Okafor"}
    assert f'href="/people/{anna.pk}/"' in client.get(people).content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client):
    assert client.get(reverse("feed:people")).status_code == 302
    assert client.get(reverse("feed:person", args=[1])).status_code == 302


def test_a_profile_shows_the_person_and_their_own_timeline(as_role, staff_user):
    platform = department_create(name="Platform")
    core = team_create(name="Core", department=platform)
    anna = employee_register(
        full_name="Anna",
        email="anna@x.com",
        position="Dev",
        department=platform,
        team=core,
        hired_on=timezone.localdate() - timedelta(days=400),
    )
    FeedEventFactory(
        data={"employee_id": anna.pk, "full_name": "Anna", "position": "Dev",
              "department": "Platform", "team": None},
        employee_id=anna.pk, text="Anna joined", source="/portal/registrar",
    )  # fmt: skip
    FeedEventFactory(
        type="thanks.sent",
        data={"from_employee_id": anna.pk, "from_name": "Anna",
              "to_employee_id": 999, "to_name": "Olga", "message": "hi"},
        employee_id=999, from_employee_id=anna.pk, text="Anna thanked Olga: hi",
        source="/portal/feed",
    )  # fmt: skip
    FeedEventFactory(employee_id=12345, text="Someone else joined")
    staff = as_role("staff")
    response = staff.get(reverse("feed:person", args=[anna.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert {e.text for e in response.context["events"]} == {
        "Anna thanked Olga: hi",
        "Anna joined",
    }
    for fact in ("Platform", "Core", "Dev"):
        assert fact in html
    assert str(anna.hired_on.year) in html
    assert "Change position" not in html
    # HR sees the registrar's actions on the same page.
    hr_html = as_role("hr").get(reverse("feed:person", args=[anna.pk])).content
    assert b"Change position" in hr_html
    assert b"Move to team" in hr_html
    assert staff.get(reverse("feed:person", args=[10**9])).status_code == 404


def test_names_on_the_portals_cards_link_to_profiles(as_role):
    olga, ivan = EmployeeFactory(full_name="Olga"), EmployeeFactory(full_name="Ivan")
    FeedEventFactory(
        type="thanks.sent",
        source="/portal/feed",
        data={"from_employee_id": ivan.pk, "from_name": "Ivan",
              "to_employee_id": olga.pk, "to_name": "Olga", "message": "<b>x</b>"},
        text="Ivan thanked Olga: <b>x</b>",
    )  # fmt: skip
    FeedEventFactory(source="/hr-import", text="Anna Petrova joined the company")
    html = as_role("staff").get(reverse("feed:home")).content.decode()
    assert f'<a class="person-link" href="/people/{ivan.pk}/">Ivan</a>' in html
    assert f'<a class="person-link" href="/people/{olga.pk}/">Olga</a>' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # the message stays text
    # Another service's ids are not the registrar's: no link.
    assert 'person-link" href="/people/1/"' not in html


def test_the_timeline_selector_finds_both_sides_of_thanks():
    anna, ivan = EmployeeFactory(), EmployeeFactory()
    FeedEventFactory(employee_id=anna.pk)
    thanks = {
        "from_employee_id": anna.pk,
        "from_name": "A",
        "to_employee_id": ivan.pk,
        "to_name": "I",
        "message": "m",
    }
    FeedEventFactory(
        employee_id=ivan.pk, from_employee_id=anna.pk, type="thanks.sent", data=thanks
    )
    FeedEventFactory(employee_id=ivan.pk)
    mine, _ = feed_page(person_id=anna.pk)
    assert len(mine) == 2
    theirs, _ = feed_page(person_id=ivan.pk)
    assert len(theirs) == 2


def test_names_sentence():
    assert names_sentence(["A"]) == "A"
    assert names_sentence(["A", "B"]) == "A and B"
    assert names_sentence(["A", "B", "C"]) == "A, B and C"
    assert names_sentence(["A", "B", "C", "D", "E"]) == "A, B and 3 others"


def joined(name: str, department_id: int, days_ago: float):
    return FeedEventFactory(
        department_id=department_id,
        time=timezone.now() - timedelta(days=days_ago),
        data={"employee_id": 1, "full_name": name, "position": "Dev",
              "department": "Engineering", "team": None},
    )  # fmt: skip


def test_registrations_close_together_in_one_department_make_one_card():
    engineering = DepartmentFactory(name="Engineering")
    for n, name in enumerate(["Anna", "Ben", "Cy", "Di", "Ed"]):
        joined(name, engineering.pk, days_ago=n * 0.5)
    joined("Far", engineering.pk, days_ago=30)
    FeedEventFactory(
        type="department.renamed", time=timezone.now() - timedelta(days=10)
    )
    events, _ = feed_page()
    cards = cards_grouped(events)
    [group] = [c for c in cards if isinstance(c, CardGroup)]
    assert group.summary == "Anna, Ben and 3 others joined Engineering this week"
    assert len(group.events) == 5
    assert len(cards) == 3  # the group, the rename between, the one far away


def test_two_alike_events_stay_two_cards():
    d = DepartmentFactory()
    joined("Anna", d.pk, 0)
    joined("Ben", d.pk, 0.1)
    events, _ = feed_page()
    assert not any(isinstance(c, CardGroup) for c in cards_grouped(events))


def test_the_feed_page_shows_an_aggregated_card_that_expands(as_role):
    d = DepartmentFactory(name="Engineering")
    for n, name in enumerate(["Anna", "Ben", "Cy", "Di"]):
        joined(name, d.pk, days_ago=n * 0.1)
    html = as_role("staff").get(reverse("feed:home")).content.decode()
    assert "Anna, Ben and 2 others joined Engineering this week" in html
    assert '<details class="group-body">' in html
    assert html.count('class="member event') == 4


def test_namesakes_are_told_apart_in_the_thanks_picker(as_role):
    EmployeeFactory(full_name="Anna Petrova", email="anna.p@x.com",
                    department=DepartmentFactory(name="Finance"))  # fmt: skip
    EmployeeFactory(full_name="Anna Petrova", email="anna.petrova@x.com",
                    department=DepartmentFactory(name="Platform"))  # fmt: skip
    EmployeeFactory(full_name="Ben", department=DepartmentFactory(name="Sales"))
    html = as_role("staff").get(reverse("feed:home")).content.decode()
    assert "Anna Petrova — Finance, anna.p@x.com" in html
    assert "Anna Petrova — Platform, anna.petrova@x.com" in html
    assert "Ben — Sales<" in html
