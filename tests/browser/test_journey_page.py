"""An admin follows a feed card to its event's journey (real workers)."""

import pytest

from portal.messaging.models import DeadLetter, LoggedEvent
from registrar.services import department_create, employee_register
from tests.browser.conftest import SCREENSHOTS, login
from tests.helpers import wait_for
from tests.messaging.conftest import private_worker  # noqa: F401 - a fixture
from tests.web.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

PREFIX = "feed.journey-page"


def test_an_admin_follows_a_card_to_its_journey(
    live_server,
    browser_context,
    private_worker,  # noqa: F811 - the fixture imported above
    settings,
):
    settings.OUTBOX_PUBLISH_MODE = "thread"
    private_worker(PREFIX, queues=[PREFIX])
    private_worker(
        PREFIX, queues=[f"{PREFIX}-audit"], AUDIT_FAIL="1", AUDIT_RETRY_DELAYS="1,1"
    )
    UserFactory(username="admin", is_staff=True, is_superuser=True)
    employee_register(
        full_name="Anna Petrova",
        email="anna@example.com",
        position="Backend Engineer",
        department=department_create(name="Platform"),
    )
    event = LoggedEvent.objects.get()
    wait_for(
        lambda: DeadLetter.objects.filter(event_id=event.event_id).exists(),
        timeout=60,
        what="the audit subscriber gave up on it",
    )

    page = login(browser_context, live_server.url, "admin", PASSWORD)
    card = page.locator(".card.event", has_text="Anna Petrova")
    card.wait_for()
    card.locator("a.journey-link").click()
    page.wait_for_selector(".lane")
    assert page.locator("h1").inner_text() == "Event journey"
    lanes = page.locator(".lane h2")
    assert [" ".join(t.split()) for t in lanes.all_inner_texts()] == [
        "feed applied",
        "audit dead-lettered",
        "broadcast published",
    ]
    feed = page.locator(".lane").nth(0).locator(".hop-what").all_inner_texts()
    assert feed == [
        "committed to the log",
        "routed: published, confirmed by RabbitMQ",
        "delivered (attempt 1)",
        "applied",
    ]
    audit = page.locator(".lane").nth(1).locator(".hop-what").all_inner_texts()
    assert audit[-1] == "dead letter stored: retries exhausted"
    assert audit.count("retried") == 2
    took = page.locator(".lane").nth(0).locator(".hop-took").all_inner_texts()
    assert all(t.startswith("+") and t.endswith(" ms") for t in took if t)
    page.screenshot(path=str(SCREENSHOTS / "journey.png"), full_page=True)
