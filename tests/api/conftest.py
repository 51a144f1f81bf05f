"""Users of every role and API clients logged in as them."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from portal.roles import HR_GROUP, STAFF_GROUP
from tests.factories import EmployeeFactory
from tests.web.factories import UserFactory

ROLES = ["anonymous", "nobody", "staff", "hr", "admin", "superuser"]


def make_user(role: str):
    """A user of ``role``: ``nobody`` is logged in without any role; ``admin``
    has ``is_staff`` (the Django admin) but no group."""
    if role == "anonymous":
        return None
    return {
        "nobody": lambda: UserFactory(),
        "staff": lambda: UserFactory(groups=[STAFF_GROUP]),
        "hr": lambda: UserFactory(groups=[HR_GROUP]),
        "admin": lambda: UserFactory(is_staff=True),
        "superuser": lambda: UserFactory(is_staff=True, is_superuser=True),
    }[role]()


@pytest.fixture
def client_as() -> Callable[[str], APIClient]:
    """``client_as(role)``: an API client logged in as a new user of ``role``."""

    def make(role: str) -> APIClient:
        client = APIClient()
        user = make_user(role)
        if user is not None:
            client.force_login(user)
            client.user = user
        return client

    return make


@pytest.fixture
def staff_client(client_as) -> APIClient:
    return client_as("staff")


@pytest.fixture
def hr_client(client_as) -> APIClient:
    return client_as("hr")


@pytest.fixture
def staff_employee(staff_client):
    """The employee linked to ``staff_client``'s user."""
    return EmployeeFactory(full_name="Ivan Ivanov", user=staff_client.user)
