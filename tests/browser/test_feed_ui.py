"""The feed people want to open, in headless Chromium on the real stack:
live push to open pages (gunicorn + uvicorn, a real worker, RabbitMQ),
departments across renames and event versions, profiles, aggregated cards,
and phones."""

import json
import random
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from bench.live import _free_port, wait_listening, web_server
from feed.models import FeedEvent, Reaction
from portal.messaging.models import LoggedEvent
from portal.roles import HR_GROUP, STAFF_GROUP
from registrar.services import (
    department_create,
    department_rename,
    employee_change_position,
    employee_link_user,
    employee_move_to_team,
    employee_register,
    team_create,
)
from tests.browser.conftest import SCREENSHOTS, login
from tests.conftest import worker_env
from tests.helpers import send_task, wait_for
from tests.web.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
# Screenshots the README does not show stay out of docs/ whatever the run.
WORKING = Path(__file__).resolve().parents[2] / "var" / "screenshots"
WORKING.mkdir(parents=True, exist_ok=True)


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
    return {"platform": platform, "core": core, "finance": finance, "sam": sam}


@pytest.fixture
def staff(company):
    user = UserFactory(username="staff", groups=[STAFF_GROUP])
    employee_link_user(employee=company["sam"], user=user)
    return user


@pytest.fixture
def hr(company):
    return UserFactory(username="hr", groups=[HR_GROUP])


@pytest.fixture
def asgi_server(tmp_path, settings, feed_worker, clean_queues):
    """The portal served as in production (gunicorn, a uvicorn worker, so
    the feed's live stream is pushed), on the test database, publishing
    after commit from a background thread; the session's worker fills the
    feed and announces what it applied."""
    settings.OUTBOX_PUBLISH_MODE = "thread"
    port = _free_port()
    log = tmp_path / "web.log"
    env = worker_env(
        # The test settings (the tests' password hasher) install the tests'
        # subscriber app themselves.
        BENCH_LIVE_SETTINGS="portal.settings.test",
        PORTAL_EXTRA_APPS="",
        OUTBOX_PUBLISH_MODE="thread",
    )
    process = web_server(port, log, env)
    try:
        wait_listening(process, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def _feed_has(text: str):
    def check():
        return FeedEvent.objects.filter(text__contains=text).exists()

    check.__doc__ = f"the feed has an event containing {text!r}"
    return check


def _top_level_times(page) -> list[str]:
    return page.eval_on_selector_all(
        "#feed > li", "items => items.map(i => i.dataset.time)"
    )


def _position_event(n: int, when: datetime) -> dict:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/burst",
        "type": "employee.position_changed",
        "time": when.isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "employee_id": 5000 + n,
            "full_name": f"Burst Person {n:02d}",
            "old_position": "Engineer",
            "new_position": "Senior Engineer",
        },
    }


def test_live_push_reaches_two_open_pages_in_order_after_a_burst(
    asgi_server, browser_context, chromium, staff, hr, company
):
    wait_for(_feed_has("Sam Okafor joined"))
    staff_page = login(browser_context, asgi_server, "staff", PASSWORD)
    other = chromium.new_context(viewport={"width": 1200, "height": 900})
    try:
        hr_page = login(other, asgi_server, "hr", PASSWORD)
        for page in (staff_page, hr_page):
            # Pushed, not polled: the page's stream is open.
            page.wait_for_function(
                "() => document.getElementById('feed').dataset.stream === 'open'"
            )
        # 50 events in a burst, in five task messages, their times shuffled:
        # 30 newer than anything on the page, 20 from the last days.
        [newest_shown] = _top_level_times(staff_page)[:1]
        since = datetime.fromisoformat(newest_shown)
        now = datetime.now(UTC)
        step = (now - since) / 31
        times = [since + step * (n + 1) for n in range(30)]
        times += [since - timedelta(days=1, minutes=n) for n in range(20)]
        events = [_position_event(n, when) for n, when in enumerate(times)]
        random.Random(13).shuffle(events)
        for start in range(0, 50, 10):
            send_task(events[start : start + 10])
        for page in (staff_page, hr_page):
            page.wait_for_function(
                "() => document.querySelectorAll('#feed > li').length >= 51",
                timeout=30_000,
            )
            times_shown = _top_level_times(page)
            parsed = [datetime.fromisoformat(t) for t in times_shown]
            assert parsed == sorted(parsed, reverse=True), "not newest first"
            # Only the 30 newer than the page were news; the rest took their
            # places below without being announced as new.
            assert page.inner_text("#new-events") == "30 new events"
        # A reaction on one page shows on the other without a reload.
        card = staff_page.locator(".event", has_text="Burst Person 00")
        card.locator("button[data-kind=like]").click()
        hr_page.wait_for_function(
            "() => [...document.querySelectorAll('#feed .event')].some(e =>"
            " e.textContent.includes('Burst Person 00') &&"
            " e.querySelector('[data-kind=like] .count').textContent === '1')"
        )
        staff_page.screenshot(path=str(WORKING / "feed-live.png"))
    finally:
        other.close()


def _service_token() -> str:
    out, err = StringIO(), StringIO()
    call_command(
        "create_service_token",
        "hr-import",
        "--source-prefix",
        "/hr-import",
        stdout=out,
        stderr=err,
    )
    return out.getvalue().strip()


def _post_event(base: str, key: str, envelope: dict) -> int:
    request = urllib.request.Request(
        f"{base}/api/events/",
        data=json.dumps(envelope).encode(),
        headers={
            "Authorization": f"Token {key}",
            "Content-Type": "application/cloudevents+json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_the_department_filter_holds_across_a_rename_and_event_versions(
    asgi_server, browser_context, staff, company
):
    platform = company["platform"]
    # v2 from the portal itself: a registration, a promotion, a team move.
    anna = employee_register(
        full_name="Anna Petrova",
        email="anna@example.com",
        position="Engineer",
        department=platform,
    )
    employee_change_position(employee=anna, position="Senior Engineer")
    employee_move_to_team(employee=anna, team=company["core"])
    # v1 from another service, naming the department by name.
    key = _service_token()
    v1 = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/hr-import",
        "type": "employee.registered",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "employee_id": 777,
            "full_name": "Vera Imported",
            "position": "Analyst",
            "department": "Platform",
            "team": None,
        },
    }
    assert _post_event(asgi_server, key, v1) == 202
    elsewhere = employee_register(
        full_name="Fin Elsewhere",
        email="fin@example.com",
        position="Accountant",
        department=company["finance"],
    )
    assert elsewhere
    wait_for(_feed_has("Vera Imported joined"), timeout=30)
    department_rename(department=platform, name="Platform Engineering")
    wait_for(_feed_has("Platform was renamed to Platform Engineering"), timeout=30)

    page = login(browser_context, asgi_server, "staff", PASSWORD)
    page.select_option("select[name=department]", label="Platform Engineering")
    page.click(".filters button[type=submit]")
    page.wait_for_url(f"**department={platform.pk}*")
    texts = page.eval_on_selector_all(
        "#feed .event .text", "items => items.map(i => i.textContent)"
    )
    joined = " ".join(texts)
    for expected in (
        "Sam Okafor joined the company",
        "Anna Petrova joined the company",  # v2
        "Vera Imported joined the company",  # v1, upcast to v2
        "Anna Petrova is now Senior Engineer",  # v2 carries the department
        "Anna Petrova joined the Core team",
        "Platform was renamed to Platform Engineering",
    ):
        assert expected in joined, expected
    assert "Fin Elsewhere" not in joined


def test_a_profile_is_reached_from_a_card(live_stack, browser_context, staff, company):
    thanks_from = employee_register(
        full_name="Olga Smirnova",
        email="olga@example.com",
        position="Designer",
        department=company["platform"],
    )
    employee_change_position(employee=company["sam"], position="Staff Engineer")
    from feed.services import thanks_send

    thanks_send(
        from_employee=thanks_from,
        to_employee=company["sam"],
        message="for the calm release",
    )
    wait_for(_feed_has("Olga Smirnova thanked Sam Okafor"), timeout=30)
    page = login(browser_context, live_stack.url, "staff", PASSWORD)
    card = page.locator(".event", has_text="Sam Okafor is now Staff Engineer")
    card.locator("a.person-link", has_text="Sam Okafor").click()
    page.wait_for_url(f"**/people/{company['sam'].pk}/")
    assert page.inner_text("h1") == "Sam Okafor"
    facts = page.inner_text("dl.facts")
    assert "Platform" in facts
    assert "Core" in facts
    timeline = page.inner_text(".timeline")
    assert "Sam Okafor is now Staff Engineer" in timeline
    assert "Olga Smirnova thanked Sam Okafor: for the calm release" in timeline
    assert "Olga Smirnova joined" not in timeline
    page.screenshot(path=str(SCREENSHOTS / "profile.png"), full_page=True)


def test_an_aggregated_card_expands(live_stack, browser_context, staff, company):
    for name in ("Anna Berg", "Ben Rossi", "Cy Tanaka", "Di Mehta"):
        employee_register(
            full_name=name,
            email=f"{name.split()[0].lower()}@example.com",
            position="Engineer",
            department=company["finance"],
        )
    wait_for(
        lambda: (
            FeedEvent.objects.filter(department_id=company["finance"].pk).count() == 4
        ),
        what="four registrations in Finance on the feed",
        timeout=30,
    )
    page = login(browser_context, live_stack.url, "staff", PASSWORD)
    group = page.locator("#feed > li.group")
    assert group.count() == 1
    assert group.locator(".group-summary").inner_text() == (
        "Di Mehta, Cy Tanaka and 2 others joined Finance this week"
    )
    members = group.locator(".group-members > li")
    assert not members.first.is_visible()
    group.locator("summary").click()
    members.first.wait_for(state="visible")
    assert members.count() == 4
    # A reaction in the group counts on that event and in the card's total.
    members.nth(1).locator("button[data-kind=like]").click()
    page.wait_for_function(
        "() => document.querySelector('#feed > li.group .like-total')"
        ".textContent === '1'"
    )
    page.screenshot(path=str(WORKING / "feed-grouped.png"), full_page=False)


def test_the_demo_company_reads_as_a_living_feed(
    live_stack, browser_context, settings, tmp_path
):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", employees=30, events=60, stdout=StringIO())
    logged = LoggedEvent.objects.count()
    wait_for(
        lambda: FeedEvent.objects.count() == logged,
        what="every demo event on the feed",
        timeout=60,
    )
    call_command("seed_demo", stdout=StringIO())  # reactions, now that it has events
    password = (tmp_path / "demo-credentials.txt").read_text().strip()
    page = login(browser_context, live_stack.url, "staff", password)
    first_screen = page.inner_text("#feed")
    # Several kinds of news from several people, spread over time, with
    # reactions from several colleagues.
    kinds = page.eval_on_selector_all(
        "#feed > li .badge", "items => new Set(items.map(i => i.textContent)).size"
    )
    assert kinds >= 3
    assert Reaction.objects.values("user").distinct().count() >= 4
    assert "days ago" in first_screen or "day ago" in first_screen
    page.screenshot(path=str(SCREENSHOTS / "feed.png"), full_page=False)


def _overflow(page) -> int:
    """How many CSS pixels the page is wider than the screen (0: none)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth - window.innerWidth"
    )


def test_no_page_scrolls_sideways_on_a_phone(live_stack, chromium, staff, hr, company):
    from tests.browser.conftest import CspWatch

    platform = company["platform"]
    sam = company["sam"]
    employee_register(
        full_name="Maximiliana Konstantinopolskaya-Vandenberghe",
        email="a-really-long-address-for-a-phone-screen@example-company.com",
        position="Principal Distributed Systems Reliability Engineer",
        department=platform,
    )
    wait_for(_feed_has("Maximiliana"), timeout=30)
    base = live_stack.url
    for username, paths in (
        (
            "staff",
            [
                reverse("feed:home"),
                reverse("feed:people"),
                reverse("feed:person", args=[sam.pk]),
                reverse("password_change"),
                reverse("logout"),
            ],
        ),
        (
            "hr",
            [
                reverse("feed:home"),
                reverse("registrar:employee_list"),
                reverse("registrar:employee_register"),
                reverse("registrar:employee_detail", args=[sam.pk]),
                reverse("registrar:employee_change_position", args=[sam.pk]),
                reverse("registrar:employee_move", args=[sam.pk]),
                reverse("registrar:department_list"),
                reverse("registrar:department_rename", args=[platform.pk]),
            ],
        ),
    ):
        context = chromium.new_context(viewport=PHONE, is_mobile=True)
        context.set_default_timeout(15_000)
        watch = CspWatch(context)
        try:
            page = login(context, base, username, PASSWORD)
            for path in paths:
                page.goto(base + path)
                assert _overflow(page) <= 0, f"{path} scrolls sideways for {username}"
            page.goto(base + reverse("feed:home"))
            # The nav folds behind Menu, and opens.
            assert not page.is_visible("#main-nav")
            page.click(".nav-toggle")
            assert page.is_visible("#main-nav a:has-text('People')")
            assert _overflow(page) <= 0
            if username == "staff":
                page.click(".nav-toggle")
                # The thanks form is reachable from the top of the feed.
                page.click("a.thanks-jump")
                page.wait_for_function(
                    "() => document.querySelector('#thank').getBoundingClientRect()"
                    ".top < window.innerHeight"
                )
                page.goto(base + reverse("feed:home"))
                page.screenshot(path=str(SCREENSHOTS / "phone.png"))
        finally:
            for page in context.pages:
                page.evaluate("1")
            context.close()
        assert watch.problems == [], "\n".join(watch.problems)
    anonymous = chromium.new_context(viewport=PHONE, is_mobile=True)
    try:
        page = anonymous.new_page()
        page.goto(base + reverse("login"))
        assert _overflow(page) <= 0
    finally:
        anonymous.close()
