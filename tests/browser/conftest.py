"""Headless Chromium (Debian's package) driven by Playwright, against
pytest-django's live server."""

import os
from pathlib import Path

import pytest

from tests.conftest import skip_unless_local

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
    try:
        from playwright import sync_api as playwright_api
    except ImportError:
        skip_unless_local("playwright is not installed (make install)")
    if not Path(CHROMIUM).exists():
        skip_unless_local(f"{CHROMIUM} is missing (apt-get install chromium)")
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


# Runs in every page and frame before its own scripts: each violation of the
# Content-Security-Policy is reported to the test.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportCspViolation({
    directive: e.effectiveDirective,
    blocked: e.blockedURI,
    source: `${e.sourceFile}:${e.lineNumber}`,
    sample: e.sample,
  });
});
"""


class CspWatch:
    """What a browser context saw that breaks the Content-Security-Policy:
    violations reported by the pages, Chromium's console messages about the
    policy, and pages of the portal served without the header."""

    def __init__(self, context) -> None:
        self.problems: list[str] = []
        context.expose_binding("reportCspViolation", self._violation)
        context.add_init_script(_REPORT_CSP_VIOLATIONS)
        context.on("console", self._console)
        context.on("response", self._response)

    def _violation(self, source, violation) -> None:
        self.problems.append(f"violation on {source['frame'].url}: {violation}")

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.problems.append(f"console: {message.text}")

    def _response(self, response) -> None:
        if response.request.resource_type != "document":
            return
        if "content-security-policy" not in response.headers:
            self.problems.append(f"no Content-Security-Policy header: {response.url}")


@pytest.fixture
def browser_context(chromium):
    """A browser context whose test fails if any page it opened broke the
    Content-Security-Policy, or came without one."""
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    watch = CspWatch(context)
    yield context
    # A round trip to each page delivers the reports still on their way.
    for page in context.pages:
        if not page.is_closed():
            page.evaluate("1")
    context.close()
    assert watch.problems == [], "\n".join(watch.problems)


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
