"""The messaging tests' fixtures: private workers on queues of a test's own."""

from tests.messaging.conftest import private_worker  # noqa: F401 - a fixture
