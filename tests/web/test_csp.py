"""Every page is sent with a Content-Security-Policy that allows no inline
script or style, and no page needs one: no ``<script>`` without ``src``, no
``<style>``, no ``style=`` or ``on…=`` attributes, no ``javascript:`` URLs.

The browser tests (tests/browser) check the same from the other side: on
the pages they visit, Chromium reports no violation of the policy.
"""

from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.urls import reverse

from feed.services import reaction_toggle, thanks_send
from portal.messaging.apis import service_token_create
from portal.messaging.models import DeadLetter
from registrar.models import Department, Employee
from tests.factories import EmployeeFactory, TeamFactory
from tests.web.factories import FeedEventFactory

pytestmark = pytest.mark.django_db

SCRIPT_TYPES = {"", "text/javascript", "application/javascript", "module"}


class InlineCode(HTMLParser):
    """Collects what a policy without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name == "style":
                self.found.append(f"<{tag} style={value!r}>")
            elif name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            elif name in {"href", "src", "action"} and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "style":
            self.found.append("<style> element")
        if tag == "script" and not attrs.get("src"):
            self._in_script = (attrs.get("type") or "").lower() in SCRIPT_TYPES

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append(f"inline <script>: {data.strip()[:60]!r}")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


def policy(response) -> dict[str, set[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.wsgi_request.path}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = set(values)
    return directives


def assert_strict(response) -> None:
    directives = policy(response)
    assert directives["default-src"] == {"'self'"}
    for name in ("script-src", "style-src"):
        assert directives.get(name, directives["default-src"]) == {"'self'"}, name
    assert directives["object-src"] == {"'none'"}
    assert directives["base-uri"] == {"'none'"}
    assert directives["frame-ancestors"] == {"'none'"}
    assert directives["form-action"] == {"'self'"}


def assert_page_passes(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, url
    assert_strict(response)
    html = response.content.decode()
    if response["Content-Type"].startswith("application/json"):
        html = response.json()["html"]
    assert inline_code(html) == [], url
    return html


@pytest.fixture
def company(staff_user, hr_user):
    team = TeamFactory(name="Core", department__name="Platform")
    anna = EmployeeFactory(full_name="Anna Petrova", department=team.department)
    event = FeedEventFactory(department="Platform")
    reaction_toggle(feed_event=event, user=staff_user, kind="like")
    thanks_send(
        from_employee=staff_user.employee, to_employee=anna, message="for the deck"
    )
    service_token_create(name="hr-import", source_prefix="/hr-import")
    DeadLetter.objects.create(
        reason="not JSON", body="{broken", queue="feed.ingest", kind="message"
    )
    return {"team": team, "anna": anna, "department": team.department}


def test_anonymous_pages_pass_the_policy(as_role):
    client = as_role("anonymous")
    assert_page_passes(client, "/accounts/login/")
    assert_page_passes(client, "/no-such-page/", status=404)


def test_feed_pages_and_fragments_pass_the_policy(as_role, company):
    client = as_role("staff")
    html = assert_page_passes(client, "/")
    assert "avatar" in html  # the cards are on the page
    assert_page_passes(client, "/?type=employee.registered&department=Platform")
    assert_page_passes(client, f"{reverse('feed:arrived')}?since=0")
    assert_page_passes(client, "/registrar/", status=403)


def test_registrar_pages_pass_the_policy(as_role, company):
    client = as_role("hr")
    anna, department = company["anna"], company["department"]
    for url in (
        reverse("registrar:employee_list"),
        reverse("registrar:employee_register"),
        reverse("registrar:employee_detail", args=[anna.pk]),
        reverse("registrar:employee_change_position", args=[anna.pk]),
        reverse("registrar:employee_move", args=[anna.pk]),
        reverse("registrar:department_list"),
        reverse("registrar:department_rename", args=[department.pk]),
    ):
        assert_page_passes(client, url)


def test_admin_pages_pass_the_policy(as_role, company):
    client = as_role("admin")
    assert_page_passes(client, reverse("admin:index"))
    for model in admin.site._registry:
        meta = model._meta
        prefix = f"admin:{meta.app_label}_{meta.model_name}"
        assert_page_passes(client, reverse(f"{prefix}_changelist"))
        obj = model._default_manager.first()
        if obj is not None:
            assert_page_passes(client, reverse(f"{prefix}_change", args=[obj.pk]))
    assert Department.objects.exists()
    assert Employee.objects.exists()
    assert_page_passes(client, reverse("admin:registrar_employee_add"))


def test_api_docs_pass_the_policy(client):
    html = assert_page_passes(client, "/api/docs/")
    assert "swagger-ui-bundle.js" in html
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


def test_browsable_api_may_style_inline_but_never_script(as_role):
    """DRF's HTML pages position a few elements with ``style=`` attributes;
    only there does the policy allow inline styles. Scripts stay 'self'."""
    client = as_role("staff")
    response = client.get("/api/departments/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    directives = policy(response)
    assert directives["script-src"] == {"'self'"}
    assert directives["style-src"] == {"'self'", "'unsafe-inline'"}
    json_response = client.get("/api/departments/")
    assert_strict(json_response)
