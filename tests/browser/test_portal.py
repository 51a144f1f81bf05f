"""The portal in headless Chromium on the real stack: a real worker on
RabbitMQ and PostgreSQL fills the feed the pages show."""

from datetime import timedelta

import pytest
from django.utils import timezone

from feed.models import FeedEvent
from portal.roles import HR_GROUP, STAFF_GROUP
from registrar.services import (
    department_create,
    department_rename,
    employee_change_position,
    employee_link_user,
    employee_register,
    team_create,
)
from tests.browser.conftest import SCREENSHOTS, login
from tests.helpers import wait_for
from tests.web.factories import PASSWORD, FeedEventFactory, UserFactory

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def company():
    platform = department_create(name="Platform")
    core = team_create(name="Core", department=platform)
    team_create(name="Infrastructure", department=platform)
    finance = department_create(name="Finance")
    team_create(name="Payroll", department=finance)
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
    return {"platform": platform, "finance": finance, "sam": sam, "olga": olga}


@pytest.fixture
def staff(company):
    user = UserFactory(username="staff", groups=[STAFF_GROUP])
    employee_link_user(employee=company["sam"], user=user)
    return user


@pytest.fixture
def hr(company):
    return UserFactory(username="hr", groups=[HR_GROUP])


def _feed_has(text: str):
    def check():
        return FeedEvent.objects.filter(text__contains=text).exists()

    check.__doc__ = f"the feed has an event containing {text!r}"
    return check


def test_hr_registers_an_employee_and_the_feed_shows_it_live(
    live_stack, browser_context, hr
):
    base = live_stack.url
    feed = login(browser_context, base, "hr", PASSWORD)
    form = browser_context.new_page()
    form.goto(f"{base}/registrar/employees/new/")
    form.fill("input[name=full_name]", "Anna Petrova")
    form.fill("input[name=email]", "anna.petrova@example.com")
    form.fill("input[name=position]", "Backend Engineer")
    form.select_option("select[name=department]", label="Platform")
    form.select_option("select[name=team]", label="Core (Platform)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    form.screenshot(path=str(SCREENSHOTS / "register.png"), full_page=True)
    form.click("main button[type=submit]")
    form.wait_for_selector(".flash-success")
    assert "will appear in the feed shortly" in form.inner_text(".flash-success")
    assert form.inner_text("h1") == "Anna Petrova"

    # The feed page opened before the registration shows it without a reload.
    sentence = "Anna Petrova joined the company as Backend Engineer in Core, Platform"
    feed.wait_for_selector(f".event:has-text('{sentence}')", timeout=30_000)
    assert feed.is_visible("#new-events")


def test_staff_reacts_and_sees_the_count_change(live_stack, browser_context, staff):
    wait_for(_feed_has("Olga Smirnova joined"))
    page = login(browser_context, live_stack.url, "staff", PASSWORD)
    card = page.locator(".event", has_text="Olga Smirnova joined")
    like = card.locator("button[data-kind=like]")
    assert like.locator(".count").inner_text() == "0"
    like.click()
    page.wait_for_function(
        "b => b.classList.contains('active')", arg=like.element_handle()
    )
    assert like.locator(".count").inner_text() == "1"
    # Kept on the server: a reload shows the same count, and it toggles back.
    page.reload()
    like = page.locator(".event", has_text="Olga Smirnova joined").locator(
        "button[data-kind=like]"
    )
    assert like.locator(".count").inner_text() == "1"
    like.click()
    page.wait_for_function(
        "b => !b.classList.contains('active')", arg=like.element_handle()
    )
    assert like.locator(".count").inner_text() == "0"


def test_staff_sends_thanks_and_sees_it_in_the_feed(
    live_stack, browser_context, staff, company
):
    employee_change_position(employee=company["olga"], position="Lead Designer")
    department_rename(department=company["finance"], name="Finance & Accounting")
    wait_for(_feed_has("Finance was renamed"))
    page = login(browser_context, live_stack.url, "staff", PASSWORD)
    page.select_option("select[name=to_employee]", label="Olga Smirnova — Platform")
    page.fill("textarea[name=message]", "for the lovely onboarding deck")
    page.click(".thanks-form button[type=submit]")
    page.wait_for_selector(".flash-success")
    sentence = "Sam Okafor thanked Olga Smirnova: for the lovely onboarding deck"
    wait_for(_feed_has(sentence), timeout=30)
    page.wait_for_selector(f".event:has-text('{sentence}')", timeout=30_000)
    page.locator(".event", has_text=sentence).locator("button[data-kind=fire]").click()
    page.wait_for_selector(".event.event-thanks-sent button.reaction.active")
    # Not in the README (feed.png there is the demo company's feed).
    working = SCREENSHOTS.parents[1] / "var" / "screenshots"
    working.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(working / "feed-thanks.png"), full_page=True)


def test_staff_cannot_open_registrar_pages(live_stack, browser_context, staff):
    page = login(browser_context, live_stack.url, "staff", PASSWORD)
    assert page.locator("nav >> text=Register").count() == 0
    for path in ("/registrar/", "/registrar/employees/new/", "/registrar/departments/"):
        response = page.goto(f"{live_stack.url}{path}")
        assert response.status == 403, path


def test_older_events_load_below_without_leaving_the_page(
    live_stack, browser_context, staff
):
    wait_for(_feed_has("Olga Smirnova joined"))
    FeedEventFactory.create_batch(
        25, time=timezone.now() - timedelta(days=1), department="Finance"
    )
    page = login(browser_context, live_stack.url, "staff", PASSWORD)
    assert page.locator("#feed > li").count() == 20
    page.click("a.older")
    # A function, not an expression: Playwright would eval() an expression in
    # the page, which its Content-Security-Policy refuses.
    page.wait_for_function(
        "() => document.querySelectorAll('#feed > li').length === 27"
    )
    # The address follows, so a reload comes back to the same place.
    assert page.url.startswith(f"{live_stack.url}/?before=")
    assert page.locator("a.older").count() == 0
    assert page.is_visible("#end-of-feed")
    ids = page.eval_on_selector_all("#feed > li", "items => items.map(i => i.id)")
    assert len(set(ids)) == 27
