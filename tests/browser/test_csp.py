"""The pages the other browser tests do not open, in headless Chromium under
the portal's Content-Security-Policy: the registrar, the admin, Swagger UI
and DRF's browsable API work, and none breaks the policy (the
``browser_context`` fixture fails the test on any violation).

No worker is needed: the feed is arranged in the database directly.
"""

import pytest
from django.urls import reverse

from feed.services import thanks_send
from portal.messaging.models import DeadLetter
from portal.roles import HR_GROUP
from registrar.services import (
    department_create,
    employee_link_user,
    employee_register,
    team_create,
)
from tests.browser.conftest import login
from tests.web.factories import PASSWORD, FeedEventFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def company():
    platform = department_create(name="Platform")
    core = team_create(name="Core", department=platform)
    sam = employee_register(
        full_name="Sam Okafor",
        email="sam@example.com",
        position="Backend Engineer",
        department=platform,
        team=core,
    )
    olga = employee_register(
        full_name="Olga Smirnova",
        email="olga@example.com",
        position="Designer",
        department=platform,
        team=core,
    )
    root = UserFactory(
        username="root", is_staff=True, is_superuser=True, groups=[HR_GROUP]
    )
    employee_link_user(employee=sam, user=root)
    thanks_send(from_employee=sam, to_employee=olga, message="for the deck")
    FeedEventFactory.create_batch(3, department="Platform")
    DeadLetter.objects.create(reason="not JSON", body="{broken", queue="feed.ingest")
    return {"platform": platform, "sam": sam}


def test_feed_and_registrar_pages_keep_to_the_policy(
    live_server, browser_context, company
):
    base = live_server.url
    page = login(browser_context, base, "root", PASSWORD)
    assert page.locator(".event .avatar").count() == 3
    like = page.locator(".event button[data-kind=like]").first
    like.click()
    page.wait_for_function(
        "b => b.classList.contains('active')", arg=like.element_handle()
    )
    sam, platform = company["sam"], company["platform"]
    for url in (
        reverse("registrar:employee_list") + "?q=Sam",
        reverse("registrar:employee_register"),
        reverse("registrar:employee_detail", args=[sam.pk]),
        reverse("registrar:employee_change_position", args=[sam.pk]),
        reverse("registrar:employee_move", args=[sam.pk]),
        reverse("registrar:department_list"),
        reverse("registrar:department_rename", args=[platform.pk]),
    ):
        response = page.goto(base + url)
        assert response.status == 200, url
    page.goto(base + reverse("registrar:department_rename", args=[platform.pk]))
    page.fill("input[name=name]", "Platform Engineering")
    page.click("main button[type=submit]")
    page.wait_for_selector(".flash-success")


def test_admin_pages_keep_to_the_policy(live_server, browser_context, company):
    base = live_server.url
    page = login(browser_context, base, "root", PASSWORD)
    dead_letter = DeadLetter.objects.get()
    for url in (
        reverse("admin:index"),
        reverse("admin:registrar_employee_changelist") + "?q=Sam",
        reverse("admin:registrar_employee_add"),
        reverse("admin:registrar_employee_change", args=[company["sam"].pk]),
        reverse("admin:messaging_loggedevent_changelist"),
        reverse("admin:messaging_deadletter_change", args=[dead_letter.pk]),
        reverse("admin:feed_feedevent_changelist"),
    ):
        response = page.goto(base + url)
        assert response.status == 200, url
        page.wait_for_load_state("load")
    # The payload's styles come from the admin's own stylesheet.
    page.goto(
        base + reverse("admin:messaging_deadletter_change", args=[dead_letter.pk])
    )
    payload = page.locator("pre.deadletter-payload")
    assert payload.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
    # Actions run their scripts: select all, and the counter follows.
    page.goto(base + reverse("admin:messaging_loggedevent_changelist"))
    page.check("#action-toggle")
    page.wait_for_selector(".action-counter:has-text('3 of 3 selected')")


def test_swagger_ui_renders_and_calls_the_api_within_the_policy(
    live_server, browser_context, company
):
    base = live_server.url
    page = login(browser_context, base, "root", PASSWORD)
    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert page.locator(".opblock").count() > 10
    operation = page.locator("#operations-departments-departments_list")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    answer = operation.locator(".live-responses-table .response").first
    answer.locator(".response-col_status", has_text="200").wait_for()
    assert '"name": "Platform"' in answer.locator(".microlight").first.inner_text()
    # The page's own stylesheet replaced drf-spectacular's inline one.
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"


def test_browsable_api_works_within_its_policy(live_server, browser_context, company):
    base = live_server.url
    page = login(browser_context, base, "root", PASSWORD)
    response = page.goto(f"{base}/api/departments/")
    assert response.status == 200
    assert (
        "'unsafe-inline'"
        not in response.headers["content-security-policy"]
        .split("script-src")[1]
        .split(";")[0]
    )
    page.wait_for_selector("text=Platform")
