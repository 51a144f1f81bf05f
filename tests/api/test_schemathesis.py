"""The API keeps to its own OpenAPI schema under generated requests.

Schemathesis reads ``/api/schema/`` from the portal's WSGI application and,
in-process, sends every operation requests built from the schema (its
examples, boundary and invalid values, then random ones), each once with a
Staff token and once with an HR token, on PostgreSQL; ``POST /api/events/``
also with a service token that may send any outside source. A test fails on any
5xx, any status code the schema does not document for the operation, and
any response whose content type or body does not match what it documents.

Runs are deterministic (the same requests every run), so a failure here is
reproducible and never a fluke of one run.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.messaging.apis import service_token_create
from portal.roles import HR_GROUP, STAFF_GROUP
from portal.wsgi import application
from registrar.services import employee_link_user
from tests.factories import EmployeeFactory, TeamFactory
from tests.web.factories import FeedEventFactory, UserFactory

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
schema.config.generation.update(
    modes=["positive", "negative"],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
    database="none",
)


@pytest.fixture
def tokens() -> dict[str, str]:
    """A Staff and an HR user, with a company around them to find and change:
    ids 1, 2, 3… exist, so generated ids sometimes name something."""
    teams = TeamFactory.create_batch(3)
    employees = [EmployeeFactory(department=t.department, team=t) for t in teams]
    FeedEventFactory.create_batch(5)
    staff = UserFactory(groups=[STAFF_GROUP])
    hr = UserFactory(groups=[HR_GROUP])
    employee_link_user(employee=employees[0], user=staff)
    employee_link_user(employee=employees[1], user=hr)
    return {
        "staff": Token.objects.create(user=staff).key,
        "hr": Token.objects.create(user=hr).key,
        "service": service_token_create(name="schemathesis", source_prefix="/")[1],
    }


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_keeps_to_its_schema(case, tokens):
    roles = ["staff", "hr"]
    if case.path == "/api/events/":
        roles.append("service")
    for role in roles:
        case.call_and_validate(
            headers={"Authorization": f"Token {tokens[role]}"}, checks=CHECKS
        )
