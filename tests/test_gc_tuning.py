"""The workers' garbage collector settings (portal/gc_tuning.py)."""

import gc

import pytest

from portal.gc_tuning import gc_tune


@pytest.fixture
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuning_freezes_what_the_process_holds_and_raises_the_young_threshold(
    settings, restore_gc
):
    settings.GC_GEN0_THRESHOLD = 12_345
    _, older, oldest = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    gc_tune()
    assert gc.get_threshold() == (12_345, older, oldest)
    assert gc.get_freeze_count() > 1000  # modules, settings, models...
    # Cycles are still collected.
    cycle: list = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_zero_leaves_pythons_own_settings(settings, restore_gc):
    settings.GC_GEN0_THRESHOLD = 0
    before = gc.get_threshold()
    gc_tune()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_workers_main_process_is_tuned_before_it_consumes(settings, restore_gc):
    """The main process's own consumers (the ingest one among them) take
    messages while the worker is still starting: a full queue is drained
    from its first second, before ``worker_ready``. The tuning comes with
    ``worker_init``, before any consumer starts."""
    from celery import signals

    from portal.celery import _tune_main_process

    # Only this receiver: Celery's Django fixup listens to the signal too.
    receivers = signals.worker_init._live_receivers(None)
    tuning = [r for r in receivers if r is _tune_main_process]
    assert tuning
    settings.GC_GEN0_THRESHOLD = 23_456
    tuning[0](signal=signals.worker_init, sender=None)
    assert gc.get_threshold()[0] == 23_456
    assert gc.get_freeze_count() > 1000
