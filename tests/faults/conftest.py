"""Fixtures of the fault-injection scenarios (see ``scenarios.py``)."""

import pytest

from tests.conftest import real_stack_available

from .scenarios import Lab
from .stack import prepare_broker


@pytest.fixture
def lab(tmp_path, django_db_blocker) -> Lab:
    """Empty feed queues in the configured vhost and a directory for logs."""
    if not real_stack_available():
        pytest.skip("needs the real stack")
    prepare_broker()
    yield Lab(log_dir=tmp_path)
    prepare_broker()
