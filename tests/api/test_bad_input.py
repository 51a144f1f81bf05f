"""No endpoint answers 500 to bad input: every write gets malformed and
ill-typed bodies and answers a 4xx with a JSON body, changing nothing."""

import json

import pytest

from feed.models import Reaction, Thanks
from portal.messaging.models import LoggedEvent
from portal.roles import HR_GROUP
from registrar.models import Employee
from tests.factories import EmployeeFactory, TeamFactory
from tests.web.factories import FeedEventFactory, UserFactory

pytestmark = pytest.mark.django_db

RAW_BODIES = [
    b"",
    b"{",
    b'{"a": }',
    b"[]",
    b'"text"',
    b"42",
    b"null",
    b"\xff\xfe\x00",
    b'{"full_name": "\\ud800"}',
    b'{"name": "\\u0000"}',
    json.dumps({"x": "y" * 100_000}).encode(),
    json.dumps([{"nested": [[[[[]]]]]}]).encode(),
]
VALUES = [
    None,
    True,
    -1,
    0,
    10**40,
    1.5,
    "",
    "x" * 5000,
    "a\x00b",
    ["list"],
    {"an": "object"},
]
# (method, path, a valid body, values each field may legitimately take)
WRITES = [
    (
        "post",
        "/api/employees/",
        {
            "full_name": "Anna Petrova",
            "email": "anna@example.com",
            "position": "Analyst",
            "department": "{department}",
        },
        {},
    ),
    (
        "patch",
        "/api/employees/{employee}/",
        {"position": "Lead", "team": None},
        {"team": [None]},
    ),
    ("patch", "/api/departments/{department}/", {"name": "Renamed"}, {}),
    (
        "post",
        "/api/thanks/",
        {"to_employee": "{employee}", "message": "for the help"},
        {},
    ),
    ("post", "/api/auth/token/", {"username": "u", "password": "p"}, {}),
]


def _fill(body: dict, ids: dict) -> dict:
    return {
        key: ids[value[1:-1]] if isinstance(value, str) and value[:1] == "{" else value
        for key, value in body.items()
    }


@pytest.fixture
def arranged(client_as):
    client = client_as("superuser")  # may call every endpoint
    team = TeamFactory(name="Core", department__name="Platform")
    employee = EmployeeFactory(department=team.department, team=team, position="Dev")
    EmployeeFactory(user=client.user)
    return client, {"employee": employee.pk, "department": team.department.pk}


def assert_refused(response):
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert response.json()


def assert_nothing_changed():
    assert not LoggedEvent.objects.exists()
    assert not Thanks.objects.exists()
    assert Employee.objects.filter(position="Dev").count() == 1


@pytest.mark.parametrize(("method", "path", "valid", "allowed"), WRITES)
def test_malformed_bodies_are_refused(arranged, method, path, valid, allowed):
    client, ids = arranged
    for raw in RAW_BODIES:
        response = client.generic(
            method.upper(),
            path.format(**ids),
            raw,
            content_type="application/json",
        )
        assert_refused(response)
    assert_nothing_changed()


@pytest.mark.parametrize(("method", "path", "valid", "allowed"), WRITES)
def test_ill_typed_values_are_refused(arranged, method, path, valid, allowed):
    client, ids = arranged
    valid = _fill(valid, ids)
    for field in valid:
        for value in VALUES:
            if value in allowed.get(field, []):
                continue
            response = getattr(client, method)(
                path.format(**ids), {**valid, field: value}, format="json"
            )
            assert_refused(response)
            if response.status_code == 400 and "detail" not in response.json():
                assert field in response.json() or "non_field_errors" in (
                    response.json()
                ), (field, value, response.json())
    assert_nothing_changed()


def test_unsupported_content_types_are_415(arranged):
    client, ids = arranged
    for content_type in ("text/plain", "application/xml", "multipart/form-data"):
        response = client.generic(
            "POST", "/api/employees/", b"full_name=x", content_type=content_type
        )
        assert response.status_code == 415
        assert "detail" in response.json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/employees/0/",
        "/api/employees/-5/",
        "/api/employees/1e9/",
        "/api/employees/99999999999999999999999999/",
        "/api/departments/abc/",
        "/api/teams/%00/",
    ],
)
def test_unknown_ids_are_json_404(client_as, path):
    user_client = client_as("hr")
    for method in ("get", "patch"):
        response = getattr(user_client, method)(path, {"name": "x"}, format="json")
        if path.startswith("/api/teams/") and method == "patch":
            assert response.status_code == 405
            continue
        assert response.status_code == 404, (method, path)
        assert response.json() == {
            "detail": "No Employee matches the given query."
        } or ("detail" in response.json())


@pytest.mark.parametrize(
    "path",
    [
        "/api/employees/0.5/",
        "/api/departments/1.json.x/",
        "/api/teams/a/b/",
        "/api/no-such-endpoint/",
        "/api/feed/x/reactions/",
    ],
)
def test_paths_no_endpoint_matches_are_json_404_under_api(client_as, path):
    """Ids the router's pattern does not take, and paths of no endpoint: an API
    client gets JSON like any other 404 of the API, not the site's HTML page."""
    user_client = client_as("hr")
    for method in ("get", "patch"):
        response = getattr(user_client, method)(path, {"name": "x"}, format="json")
        assert response.status_code == 404, (method, path)
        assert response["Content-Type"] == "application/json", (method, path)
        assert response.json() == {"detail": "Not found."}


def test_pages_outside_the_api_keep_the_html_404(client_as):
    response = client_as("staff").get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_reactions_to_unknown_events_change_nothing(client_as):
    client = client_as("staff")
    FeedEventFactory(event_id="known")
    for event_id in ("unknown", "%00", "known%2F..", "x" * 1000, "..%2F..%2Fadmin"):
        response = client.post(f"/api/feed/{event_id}/reactions/like/")
        assert response.status_code == 404, event_id
        assert response.json()
    assert not Reaction.objects.exists()


def test_hr_writes_through_a_token_with_an_hr_user(client_as):
    """Bad input through token authentication behaves the same."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = UserFactory(groups=[HR_GROUP])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user)}")
    response = client.post("/api/employees/", b"{", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
