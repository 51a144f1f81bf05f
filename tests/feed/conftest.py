"""Fixtures for the feed tests."""

from tests.messaging.conftest import private_worker  # noqa: F401
