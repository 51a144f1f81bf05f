"""Garbage collection tuned for the processes that move events in batches.

CPython runs its cyclic garbage collector on the youngest generation every
700 net container allocations, and on the whole heap once enough objects
have survived into the oldest generation. A task message of a thousand
events decodes into tens of thousands of dicts, lists and strings that live
until the batch is applied: with the default thresholds a worker ran dozens
of young collections per message, promoted the batch through them, and
then walked the whole heap (Django, Celery and every module they loaded) in
full collections. None of it is garbage: events are not cyclic.

``gc_tune()``, called by a worker in its main process (which decodes every
message and runs the ingest consumer) before it starts consuming and again
once it is ready, and in each pool process as it starts:

* ``gc.freeze()``: what the process holds by then (modules, settings,
  models, registries) goes to the permanent generation, which no
  collection walks again;
* the youngest generation is collected every ``GC_GEN0_THRESHOLD`` (10,000)
  allocations instead of 700, the older ones as Python's defaults say.

Cycles are still collected, just less often; ``GC_GEN0_THRESHOLD=0`` leaves
Python's defaults. ``make bench``'s observability section measures the feed
consumer with both (``GC_GEN0_THRESHOLD`` 10,000 and 0, alternating).
"""

import gc

from django.conf import settings


def gc_tune() -> None:
    threshold = settings.GC_GEN0_THRESHOLD
    if not threshold:
        return
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
