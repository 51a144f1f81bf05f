import pytest

from portal.roles import HR_GROUP, STAFF_GROUP
from registrar.services import employee_link_user
from tests.factories import EmployeeFactory
from tests.web.factories import UserFactory


@pytest.fixture
def staff_user(db):
    user = UserFactory(username="sam", groups=[STAFF_GROUP])
    employee_link_user(employee=EmployeeFactory(full_name="Sam Staff"), user=user)
    return user


@pytest.fixture
def hr_user(db):
    return UserFactory(username="helen", groups=[HR_GROUP])


@pytest.fixture
def admin_user_(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def as_role(client, staff_user, hr_user, admin_user_):
    """Log the test client in as a role: "anonymous", "staff", "hr" or "admin"."""
    users = {"staff": staff_user, "hr": hr_user, "admin": admin_user_}

    def login(role: str):
        client.logout()
        if role != "anonymous":
            client.force_login(users[role])
        return client

    return login
