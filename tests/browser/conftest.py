"""Headless Chromium (Debian's package) driven by Playwright, against
pytest-django's live server."""

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The README's screenshots are refreshed on request (PORTAL_SCREENSHOTS=docs),
# so an ordinary test run leaves the working tree clean.
_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = (
    _ROOT / "docs" / "screenshots"
    if os.environ.get("PORTAL_SCREENSHOTS") == "docs"
    else _ROOT / "var" / "screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def chromium():
    """Chromium for one module's tests. Playwright's sync API keeps an event
    loop in this thread meanwhile; the tests still call the ORM synchronously,
    which is safe here, so Django's async guard is lifted until it ends."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_context(chromium):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def live_stack(settings, feed_worker, clean_queues, live_server):
    """The live server publishing after commit in a background thread, as in
    production, to the real RabbitMQ, with a real worker filling the feed."""
    settings.OUTBOX_PUBLISH_MODE = "thread"
    return live_server


def login(context, base_url: str, username: str, password: str):
    page = context.new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
    return page
