"""Fixtures of the fault-injection scenarios (``bench/faults/scenarios.py``)."""

from collections.abc import Iterator

import pytest

from bench.faults.scenarios import (
    Lab,
    lab_queue_settings,
    prepare_broker,
    remove_queues,
)
from tests.conftest import real_stack_available


@pytest.fixture
def lab(tmp_path, settings) -> Iterator[Lab]:
    """Queues of their own for every subscriber and for ingestion (no other
    test's worker may take the scenario's messages), empty at the start and
    deleted after, and a directory for process logs."""
    if not real_stack_available():
        pytest.skip("needs the real stack")
    for name, value in lab_queue_settings().items():
        setattr(settings, name, value)
    prepare_broker()
    yield Lab(log_dir=tmp_path)
    remove_queues()
