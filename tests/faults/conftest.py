"""Fixtures of the fault-injection scenarios (see ``scenarios.py``)."""

from collections.abc import Iterator

import pytest

from tests.conftest import real_stack_available

from .scenarios import INGEST_QUEUE, QUEUE, Lab
from .stack import prepare_broker, remove_queues


@pytest.fixture
def lab(tmp_path, settings) -> Iterator[Lab]:
    """Queues of their own (no other test's worker may take the scenario's
    messages), empty at the start and deleted after, and a directory for
    process logs."""
    if not real_stack_available():
        pytest.skip("needs the real stack")
    settings.FEED_QUEUE = QUEUE
    settings.INGEST_QUEUE = INGEST_QUEUE
    prepare_broker()
    yield Lab(log_dir=tmp_path)
    remove_queues()
