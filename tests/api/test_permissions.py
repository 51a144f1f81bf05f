"""Who may do what, for every API endpoint: anonymous callers are told to
authenticate (401), logged-in users without a role and roles without the right
are refused (403) without any effect, the others succeed."""

from dataclasses import dataclass
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from feed.models import Reaction, Thanks
from portal.messaging.models import LoggedEvent
from registrar.models import Employee
from tests.factories import EmployeeFactory, TeamFactory
from tests.web.factories import FeedEventFactory

from .conftest import ROLES

pytestmark = pytest.mark.django_db

MEMBERS = {"staff", "hr", "admin", "superuser"}
HR = {"hr", "superuser"}
EVERYONE = set(ROLES)
LOGGED_IN = EVERYONE - {"anonymous"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # formatted with the arranged objects
    allowed: set[str]
    ok: int = 200
    body: dict[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = [
    Endpoint("get", "/api/employees/", MEMBERS),
    Endpoint("get", "/api/employees/{employee}/", MEMBERS),
    Endpoint(
        "post",
        "/api/employees/",
        HR,
        201,
        {
            "full_name": "Anna Petrova",
            "email": "anna@example.com",
            "position": "Analyst",
            "department": "{department}",
        },
    ),
    Endpoint("patch", "/api/employees/{employee}/", HR, body={"position": "Lead"}),
    Endpoint("get", "/api/departments/", MEMBERS),
    Endpoint("get", "/api/departments/{department}/", MEMBERS),
    Endpoint("patch", "/api/departments/{department}/", HR, body={"name": "Renamed"}),
    Endpoint("get", "/api/teams/", MEMBERS),
    Endpoint("get", "/api/teams/{team}/", MEMBERS),
    Endpoint("get", "/api/feed/", MEMBERS),
    Endpoint("post", "/api/feed/{event}/reactions/like/", MEMBERS),
    Endpoint("delete", "/api/feed/{event}/reactions/like/", MEMBERS),
    Endpoint(
        "post",
        "/api/thanks/",
        MEMBERS,
        201,
        {"to_employee": "{employee}", "message": "for the help"},
    ),
    # Anyone logged in manages their own API token.
    Endpoint("post", "/api/auth/token/rotate/", LOGGED_IN),
    Endpoint("delete", "/api/auth/token/", LOGGED_IN, 204),
    Endpoint("get", "/api/schema/", EVERYONE),
    Endpoint("get", "/api/docs/", EVERYONE),
]


def _fill(value, ids: dict[str, Any]):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    return value


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_permission_matrix(client_as, endpoint: Endpoint, role: str):
    team = TeamFactory(name="Core", department__name="Platform")
    employee = EmployeeFactory(department=team.department, team=team, position="Dev")
    event = FeedEventFactory()
    ids = {
        "employee": employee.pk,
        "department": team.department.pk,
        "team": team.pk,
        "event": event.event_id,
    }
    client = client_as(role)
    if role != "anonymous":
        # Thanks are sent as the user's employee.
        EmployeeFactory(full_name="Sender", user=client.user)
    body = {k: _fill(v, ids) for k, v in (endpoint.body or {}).items()}
    response = getattr(client, endpoint.method)(
        endpoint.path.format(**ids), body or None, format="json"
    )

    if role in endpoint.allowed:
        assert response.status_code == endpoint.ok, response.content[:300]
        return
    expected = 401 if role == "anonymous" else 403
    assert response.status_code == expected
    assert "detail" in response.json()
    if role == "anonymous":
        assert response["WWW-Authenticate"] == "Token"
    # A refused request changed nothing.
    assert not LoggedEvent.objects.exists()
    assert not Reaction.objects.exists()
    assert not Thanks.objects.exists()
    assert Employee.objects.filter(position="Lead").count() == 0
    team.department.refresh_from_db()
    assert team.department.name == "Platform"


def test_every_user_api_operation_is_in_the_matrix():
    """A new operation of the user-facing API must be added to the matrix."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    # The operations for people: those that take the portal's login session.
    operations = {
        (method, path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if {"cookieAuth": []} in operation.get("security", [])
    }
    covered = {
        (
            endpoint.method,
            endpoint.path.format(
                employee="{id}", department="{id}", team="{id}", event="{event_id}"
            ).replace("/like/", "/{kind}/"),
        )
        for endpoint in ENDPOINTS
    }
    assert len(operations) == 15
    assert operations - covered == set()
