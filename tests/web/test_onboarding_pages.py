"""HR sees each new employee's onboarding on the employee list (with a
filter) and page, and retries a failed one there or in the admin; the API
shows it too."""

import pytest
from django.urls import reverse

from portal.messaging.models import LoggedEvent
from registrar.models import Onboarding
from registrar.services import employee_register
from tests.factories import DepartmentFactory
from tests.onboarding.conftest import onboarding_enabled  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(onboarding_enabled):  # noqa: F811 - the fixture imported above
    department = DepartmentFactory(name="Platform")

    def register(name, status, **fields):
        employee = employee_register(
            full_name=name,
            email=f"{name.split()[0].lower()}@example.com",
            position="Engineer",
            department=department,
        )
        Onboarding.objects.filter(employee=employee).update(status=status, **fields)
        return employee

    return {
        "anna": register("Anna Petrova", "ready", account_id="acct-000007"),
        "bo": register("Bo Li", "failed", account_error="the directory refused it"),
        "cy": register("Cy Young", "pending"),
    }


def test_the_list_shows_each_status_and_filters_by_it(as_role, people):
    client = as_role("hr")
    page = client.get(reverse("registrar:employee_list")).content.decode()
    for label in ("Ready", "Failed", "Pending"):
        assert f'onboarding-{label.lower()}"' in page
    failed = client.get(reverse("registrar:employee_list"), {"onboarding": "failed"})
    names = [e.full_name for e in failed.context["page"]]
    assert names == ["Bo Li"]


def test_the_page_shows_why_and_hr_retries_the_failed_step(as_role, people):
    client = as_role("hr")
    bo = people["bo"]
    page = client.get(bo.get_absolute_url()).content.decode()
    assert "failed: the directory refused it" in page
    assert "Retry the failed steps" in page
    assert "Retry the failed steps" not in (
        client.get(people["anna"].get_absolute_url()).content.decode()
    )
    url = reverse("registrar:employee_onboarding_retry", args=[bo.pk])
    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    assert "Retrying Bo Li" in response.content.decode()
    onboarding = Onboarding.objects.get(employee=bo)
    assert (onboarding.status, onboarding.retries) == ("pending", 1)
    retry = LoggedEvent.objects.latest("id")
    assert retry.type == "employee.onboarding_retry_requested"
    assert retry.envelope["data"]["steps"] == ["account"]


def test_staff_may_not_retry(as_role, people):
    url = reverse("registrar:employee_onboarding_retry", args=[people["bo"].pk])
    assert as_role("staff").post(url).status_code == 403
    assert Onboarding.objects.get(employee=people["bo"]).retries == 0


def test_the_admin_retries_the_selected_failed_ones(as_role, people):
    client = as_role("admin")
    response = client.post(
        reverse("admin:registrar_employee_changelist"),
        {
            "action": "retry_onboarding",
            "_selected_action": [people["bo"].pk, people["anna"].pk],
        },
        follow=True,
    )
    text = response.content.decode()
    assert "Retrying the onboarding of 1 employee(s)." in text
    assert "nothing to retry" in text
    assert Onboarding.objects.get(employee=people["bo"]).status == "pending"
    listing = client.get(reverse("admin:registrar_onboarding_changelist"))
    assert listing.status_code == 200


def test_the_api_shows_the_onboarding_and_filters_by_it(as_role, people):
    client = as_role("staff")
    anna = client.get(f"/api/employees/{people['anna'].pk}/").json()
    assert anna["onboarding"]["status"] == "ready"
    assert anna["onboarding"]["account_id"] == "acct-000007"
    failed = client.get("/api/employees/", {"onboarding": "failed"}).json()
    assert [e["full_name"] for e in failed["results"]] == ["Bo Li"]
    assert failed["results"][0]["onboarding"]["failures"] == {
        "account": "the directory refused it"
    }
    assert client.get("/api/employees/", {"onboarding": "lost"}).status_code == 400
    untracked = [
        e
        for e in client.get("/api/employees/").json()["results"]
        if e["full_name"] == "Sam Staff"
    ]
    assert untracked[0]["onboarding"] is None


def test_admins_follow_the_registration_to_its_journey_hr_sees_no_link(as_role, people):
    anna = people["anna"]
    registration = Onboarding.objects.get(employee=anna).registration_event_id
    link = f"{reverse('journey')}?event_id={registration}"
    page = as_role("admin").get(anna.get_absolute_url()).content.decode()
    assert f'href="{link}"' in page.replace("&amp;", "&")
    journey = as_role("admin").get(link).content.decode()
    assert registration in journey
    assert "journey-link" not in (
        as_role("hr").get(anna.get_absolute_url()).content.decode()
    )
    admin_list = as_role("admin").get(reverse("admin:registrar_onboarding_changelist"))
    assert link in admin_list.content.decode().replace("&amp;", "&")
