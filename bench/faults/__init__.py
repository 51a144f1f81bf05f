"""The fault-injection scenarios: one implementation, run at scale 1 by the
tests (``tests/faults/test_scenarios.py``, in ``make test``) and at a larger
scale by ``bench/chaos.py`` (``make chaos``).

- ``scenarios``: the seven scenarios (broker unreachable, workers killed,
  database unreachable, broker restarted, malformed messages, events
  published twice, a poison message) and the ``Lab`` they run in.
- ``counting``: every event counted by id, per subscriber (the feed and the
  harness's ``audit`` subscriber): applied, dead-lettered, lost, duplicated.
- ``poison``: the portal's Celery app plus a task that kills its process.

Built on the portal's harness (``portal.testing``); imports nothing from
``tests/``. Django must be set up before importing ``counting`` or
``scenarios``.
"""
