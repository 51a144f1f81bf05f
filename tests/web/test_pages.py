"""The feed and registrar pages: content, forms, errors and query counts."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from feed.models import FeedEvent, Reaction, Thanks
from portal.messaging.models import LoggedEvent
from registrar.models import Department, Employee
from tests.factories import DepartmentFactory, EmployeeFactory, TeamFactory
from tests.web.factories import FeedEventFactory

pytestmark = pytest.mark.django_db

HOME = reverse("feed:home")


def _events(n: int, **kwargs):
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        FeedEventFactory(time=start + timedelta(minutes=i), **kwargs) for i in range(n)
    ]


def test_feed_shows_cards_newest_first_with_older_link(as_role):
    events = _events(25)
    client = as_role("staff")
    response = client.get(HOME)
    shown = [e.pk for e in response.context["events"]]
    assert shown == [e.pk for e in reversed(events)][:20]
    html = response.content.decode()
    assert "Anna Petrova joined the company as Backend Engineer in Platform" in html
    assert '<span class="avatar hue-' in html
    older = response.context["older_url"]
    assert older
    response = client.get(older)
    assert [e.pk for e in response.context["events"]] == [
        e.pk for e in reversed(events[:5])
    ]
    assert response.context["older_url"] is None


def test_feed_filters_by_type_and_department(as_role):
    FeedEventFactory(department="Platform", department_id=1)
    finance = DepartmentFactory(name="Finance")
    renamed = FeedEventFactory(
        type="department.renamed", department="Finance", department_id=finance.pk
    )
    client = as_role("staff")
    by_type = client.get(HOME, {"type": "department.renamed"}).context["events"]
    by_department = client.get(HOME, {"department": finance.pk}).context["events"]
    # A link from before ids, naming the department, finds the same.
    by_name = client.get(HOME, {"department": "Finance"}).context["events"]
    assert [e.pk for e in by_type] == [renamed.pk]
    assert [e.pk for e in by_department] == [renamed.pk]
    assert [e.pk for e in by_name] == [renamed.pk]


def test_a_bad_cursor_goes_back_to_the_first_page(as_role):
    response = as_role("staff").get(HOME, {"before": "garbage"})
    assert response.status_code == 302
    assert response["Location"] == HOME


@pytest.mark.parametrize("n", [3, 30])
def test_feed_page_costs_a_fixed_number_of_queries(
    as_role, staff_user, hr_user, django_assert_max_num_queries, n
):
    """Session, user, groups, feed page, newest id, departments, sender,
    colleagues: the same with 3 events or 30, with reactions on them."""
    client = as_role("staff")
    for event in _events(n):
        Reaction.objects.create(feed_event=event, user=hr_user, kind="like")
        Reaction.objects.create(feed_event=event, user=staff_user, kind="fire")
    with django_assert_max_num_queries(10):
        response = client.get(HOME)
    assert response.status_code == 200
    assert len(response.context["events"]) == min(n, 20)


def test_arrived_returns_newer_and_just_arrived_events_as_html(as_role):
    """Newer by id, plus any that arrived in the last half minute: a lower id
    may commit after a higher one."""
    old = FeedEventFactory()
    FeedEvent.objects.filter(pk=old.pk).update(
        received_at=old.received_at - timedelta(minutes=5)
    )
    just_before = FeedEventFactory()
    new = FeedEventFactory(
        type="department.renamed",
        department="Finance & Accounting",
        time=old.time - timedelta(days=1),
    )
    response = as_role("staff").get(reverse("feed:arrived"), {"since": just_before.pk})
    body = response.json()
    assert body["count"] == 2
    assert body["since"] == new.pk
    assert "Money was renamed to Finance &amp; Accounting" in body["html"]
    assert f'id="event-{just_before.pk}"' in body["html"]
    assert f'id="event-{old.pk}"' not in body["html"]
    # The answer never moves ``since`` backwards.
    again = as_role("staff").get(reverse("feed:arrived"), {"since": new.pk + 5})
    assert again.json()["since"] == new.pk + 5


def test_reaction_toggle_returns_counts(as_role):
    event = FeedEventFactory()
    client = as_role("staff")
    url = reverse("feed:react", args=[event.pk])
    assert client.post(url, {"kind": "fire"}).json() == {
        "active": True,
        "counts": {"like": 0, "fire": 1},
    }
    assert client.post(url, {"kind": "fire"}).json() == {
        "active": False,
        "counts": {"like": 0, "fire": 0},
    }
    response = client.post(url, {"kind": "meh"})
    assert response.status_code == 400
    assert response.json()["field"] == "kind"


def test_thanks_form_stores_one_thanks_and_one_outbox_row(as_role, staff_user):
    olga = EmployeeFactory(full_name="Olga Smirnova")
    response = as_role("staff").post(
        reverse("feed:thank"),
        {"to_employee": olga.pk, "message": "for the demo"},
        follow=True,
    )
    assert "will appear in the feed shortly" in response.content.decode()
    [thanks] = Thanks.objects.all()
    assert (thanks.from_employee.user, thanks.to_employee) == (staff_user, olga)
    [row] = LoggedEvent.objects.all()
    assert row.type == "thanks.sent"
    assert row.envelope["data"]["to_name"] == "Olga Smirnova"


@pytest.mark.parametrize(
    ("message", "to_self"), [("", False), ("x" * 501, False), ("hi", True)]
)
def test_thanks_form_errors(as_role, staff_user, message, to_self):
    to = staff_user.employee if to_self else EmployeeFactory()
    response = as_role("staff").post(
        reverse("feed:thank"), {"to_employee": to.pk, "message": message}
    )
    assert response.status_code == 400
    assert response.context["thanks_form"].errors
    assert not Thanks.objects.exists()
    assert not LoggedEvent.objects.exists()


def test_a_user_without_employee_sees_a_message_instead_of_the_form(as_role):
    html = as_role("hr").get(HOME).content.decode()
    assert "not linked to an employee" in html
    assert 'action="/feed/thanks/"' not in html


def _register(client, **overrides):
    team = overrides.pop("team_obj", None) or TeamFactory()
    data = {
        "full_name": "Anna Petrova",
        "email": "anna@example.com",
        "position": "Engineer",
        "department": team.department.pk,
        "team": team.pk,
    }
    data.update(overrides)
    return client.post(reverse("registrar:employee_register"), data, follow=True)


def test_register_saves_and_says_the_feed_follows(as_role):
    response = _register(as_role("hr"))
    anna = Employee.objects.get(email="anna@example.com")
    assert response.redirect_chain[-1][0] == anna.get_absolute_url()
    assert "will appear in the feed shortly" in response.content.decode()
    assert list(LoggedEvent.objects.values_list("type", flat=True)) == [
        "employee.registered"
    ]


def test_register_shows_field_errors(as_role):
    client = as_role("hr")
    EmployeeFactory(email="anna@example.com")
    errors = _register(client, email="ANNA@example.com").context["form"].errors
    assert "already registered" in errors["email"][0]
    errors = (
        _register(client, email="new@example.com", full_name="  ")
        .context["form"]
        .errors
    )
    assert "full_name" in errors
    errors = (
        _register(client, email="new@example.com", team=999999).context["form"].errors
    )
    assert "team" in errors
    errors = (
        _register(
            client,
            email="new@example.com",
            department=DepartmentFactory().pk,
        )
        .context["form"]
        .errors
    )
    assert "is not in department" in errors["team"][0]
    # Only the existing Anna and the staff user's employee.
    assert Employee.objects.count() == 2
    assert not LoggedEvent.objects.exists()


def test_change_position_move_and_rename(as_role):
    client = as_role("hr")
    old, new = TeamFactory(), TeamFactory()
    anna = EmployeeFactory(team=old, department=old.department)
    response = client.post(
        reverse("registrar:employee_change_position", args=[anna.pk]),
        {"position": "Team Lead"},
        follow=True,
    )
    assert "Saved" in response.content.decode()
    client.post(reverse("registrar:employee_move", args=[anna.pk]), {"team": new.pk})
    department = Department.objects.get(pk=new.department_id)
    client.post(
        reverse("registrar:department_rename", args=[department.pk]),
        {"name": "Finance & Accounting"},
    )
    anna.refresh_from_db()
    department.refresh_from_db()
    assert (anna.position, anna.team) == ("Team Lead", new)
    assert department.name == "Finance & Accounting"
    assert list(LoggedEvent.objects.order_by("id").values_list("type", flat=True)) == [
        "employee.position_changed",
        "team.member_left",
        "team.member_joined",
        "department.renamed",
    ]


def test_change_forms_show_errors(as_role):
    client = as_role("hr")
    anna = EmployeeFactory()
    taken = DepartmentFactory(name="Sales")
    response = client.post(
        reverse("registrar:employee_change_position", args=[anna.pk]),
        {"position": ""},
    )
    assert "position" in response.context["form"].errors
    response = client.post(
        reverse("registrar:department_rename", args=[anna.department_id]),
        {"name": "sales"},
    )
    assert "exists" in response.context["form"].errors["name"][0]
    assert taken.name == "Sales"
    assert not LoggedEvent.objects.exists()


def test_employee_list_searches_and_paginates(as_role, django_assert_max_num_queries):
    for i in range(30):
        EmployeeFactory(full_name=f"Person {i:02}", email=f"p{i}@example.com")
    EmployeeFactory(full_name="Olga Smirnova", email="olga@corp.example")
    client = as_role("hr")
    with django_assert_max_num_queries(8):
        page = client.get(reverse("registrar:employee_list")).context["page"]
    assert page.paginator.count == 32  # + the staff user's employee
    assert len(page.object_list) == 25
    found = client.get(reverse("registrar:employee_list"), {"q": "corp.exam"})
    assert [e.full_name for e in found.context["page"]] == ["Olga Smirnova"]
    second = client.get(reverse("registrar:employee_list"), {"page": 2})
    assert len(second.context["page"].object_list) == 7


def test_employee_list_search_finds_positions_like_the_api(as_role):
    """The page and ``GET /api/employees/?search=`` share one search."""
    EmployeeFactory(full_name="Anna Petrova", position="Payroll Accountant")
    EmployeeFactory(full_name="Olga Smirnova", position="Designer")
    client = as_role("hr")
    found = client.get(reverse("registrar:employee_list"), {"q": "payroll"})
    assert [e.full_name for e in found.context["page"]] == ["Anna Petrova"]
    api = client.get("/api/employees/", {"search": "payroll"}).json()
    assert [e["full_name"] for e in api["results"]] == ["Anna Petrova"]


def test_older_as_a_fragment_returns_cards_and_the_next_link(as_role):
    _events(25)
    client = as_role("staff")
    older_url = client.get(HOME).context["older_url"]
    body = client.get(older_url + "&fragment=1").json()
    assert body["html"].count('class="card event') == 5
    assert body["older_url"] is None


def test_refusals_render_the_portal_403_page(as_role):
    response = as_role("staff").get(reverse("registrar:employee_list"))
    assert response.status_code == 403
    assert "The registrar pages are for HR" in response.content.decode()


def test_a_card_says_which_service_sent_an_outside_event(as_role):
    outside = FeedEventFactory(source="/hr-import/eu")
    own = FeedEventFactory(source="/portal/registrar")
    html = as_role("staff").get(HOME).content.decode()
    card = html.split(f'id="event-{outside.pk}"')[1].split("</li>")[0]
    assert 'class="source"' in card
    assert "via /hr-import/eu" in card
    own_card = html.split(f'id="event-{own.pk}"')[1].split("</li>")[0]
    assert 'class="source"' not in own_card


def test_admins_see_each_cards_journey_link_colleagues_do_not(as_role):
    (event,) = _events(1)
    link = f"{reverse('journey')}?event_id={event.event_id}"
    page = as_role("admin").get(HOME).content.decode().replace("&amp;", "&")
    assert f'class="journey-link" href="{link}"' in page
    assert "journey-link" not in as_role("staff").get(HOME).content.decode()
