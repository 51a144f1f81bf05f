"""Who may open which page: anonymous, Staff, HR and admin × every page."""

import pytest
from django.urls import reverse

from feed.models import Reaction
from registrar.models import Department, Employee
from tests.factories import DepartmentFactory, EmployeeFactory
from tests.web.factories import FeedEventFactory

pytestmark = pytest.mark.django_db

ALLOWED, DENIED, LOGIN = 200, 403, "login"

# page -> expected answer for (staff, hr, admin)
PAGES = {
    "feed:home": (ALLOWED, ALLOWED, ALLOWED),
    "feed:arrived": (ALLOWED, ALLOWED, ALLOWED),
    "registrar:employee_list": (DENIED, ALLOWED, ALLOWED),
    "registrar:employee_register": (DENIED, ALLOWED, ALLOWED),
    "registrar:employee_detail": (DENIED, ALLOWED, ALLOWED),
    "registrar:employee_change_position": (DENIED, ALLOWED, ALLOWED),
    "registrar:employee_move": (DENIED, ALLOWED, ALLOWED),
    "registrar:department_list": (DENIED, ALLOWED, ALLOWED),
    "registrar:department_rename": (DENIED, ALLOWED, ALLOWED),
    "admin:index": (LOGIN, LOGIN, ALLOWED),
    "admin:registrar_employee_changelist": (LOGIN, LOGIN, ALLOWED),
    "admin:feed_feedevent_changelist": (LOGIN, LOGIN, ALLOWED),
    "admin:messaging_loggedevent_changelist": (LOGIN, LOGIN, ALLOWED),
}


def _url(name: str) -> str:
    if name.startswith("registrar:employee_") and name not in (
        "registrar:employee_register",
        "registrar:employee_list",
    ):
        return reverse(name, args=[Employee.objects.first().pk])
    if name == "registrar:department_rename":
        return reverse(name, args=[Department.objects.first().pk])
    return reverse(name)


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("role", ["anonymous", "staff", "hr", "admin"])
def test_page_access(as_role, page, role):
    EmployeeFactory()
    client = as_role(role)
    url = _url(page)
    response = client.get(url)
    if role == "anonymous":
        assert response.status_code == 302
        assert "/login/" in response["Location"]
        return
    expected = PAGES[page][["staff", "hr", "admin"].index(role)]
    if expected == LOGIN:
        # The admin sends non-admins to its own login page.
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]
    else:
        assert response.status_code == expected


def test_login_page_is_open_to_anonymous(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


def test_a_user_without_a_role_is_refused_the_feed(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("norole", password="x"))
    assert client.get(reverse("feed:home")).status_code == 403


@pytest.mark.parametrize(
    ("role", "status"),
    [("anonymous", 302), ("staff", 403), ("hr", 302), ("admin", 302)],
)
def test_registrar_posts_are_refused_to_non_hr(as_role, role, status):
    department = DepartmentFactory(name="Money")
    response = as_role(role).post(
        reverse("registrar:department_rename", args=[department.pk]),
        {"name": "Finance"},
    )
    assert response.status_code == status
    department.refresh_from_db()
    assert department.name == (
        "Finance" if status == 302 and role != "anonymous" else "Money"
    )


@pytest.mark.parametrize(
    ("role", "status"), [("anonymous", 302), ("staff", 200), ("hr", 200)]
)
def test_reacting_needs_a_role(as_role, role, status):
    event = FeedEventFactory()
    response = as_role(role).post(
        reverse("feed:react", args=[event.pk]), {"kind": "like"}
    )
    assert response.status_code == status
    assert Reaction.objects.count() == (1 if status == 200 else 0)


def test_logout_is_a_post_and_says_so(as_role):
    client = as_role("staff")
    # A GET only offers the button: still logged in afterwards.
    page = client.get(reverse("logout"))
    assert page.status_code == 200
    assert "Log out?" in page.content.decode()
    assert client.get(reverse("feed:home")).status_code == 200
    response = client.post(reverse("logout"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("login")
    assert "You have been logged out." in response.content.decode()
    assert client.get(reverse("feed:home")).status_code == 302
    assert "You are logged out" in client.get(reverse("logout")).content.decode()


def test_csrf_is_enforced(staff_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    event = FeedEventFactory()
    response = client.post(reverse("feed:react", args=[event.pk]), {"kind": "like"})
    assert response.status_code == 403
    assert not Reaction.objects.exists()


@pytest.mark.parametrize(
    ("role", "links"),
    [
        ("staff", set()),
        ("hr", {"Employees", "Register"}),
        ("admin", {"Employees", "Register", "Admin", "Flower"}),
    ],
)
def test_top_bar_links_follow_the_role(as_role, settings, role, links):
    settings.FLOWER_URL = "http://flower.example/"
    html = as_role(role).get(reverse("feed:home")).content.decode()
    nav = html.split('<nav id="main-nav"')[1].split("</nav>")[0]
    for link in ("Employees", "Register", "Admin", "Flower"):
        assert (f">{link}</a>" in nav) == (link in links), link
    assert ">People</a>" in nav


def test_the_flower_link_shows_only_when_flower_is_configured(as_role, settings):
    settings.FLOWER_URL = ""
    html = as_role("admin").get(reverse("feed:home")).content.decode()
    assert ">Flower</a>" not in html
