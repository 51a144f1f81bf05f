"""The fault-injection scenarios: one implementation, run at scale 1 by the
tests (``tests/faults/test_scenarios.py``, in ``make test``) and at a larger
scale by ``bench/chaos.py`` (``make chaos``).

- ``scenarios``: the seven scenarios (broker unreachable, workers killed,
  database unreachable, broker restarted, malformed messages, events
  published twice, a poison message) and the ``Lab`` they run in.
- ``counting``: every event counted by id, per subscriber (the feed and the
  harness's ``audit`` subscriber): applied, dead-lettered, lost, duplicated.
- ``poison``: the portal's Celery app plus a task that kills its process.
- ``cluster``: five scenarios on a three-node RabbitMQ cluster (a leader
  killed, a rolling restart, a frozen node, a node with a relay and a worker,
  a database outage) with two relays and two workers, the failover pause,
  and the delayed-delivery pause after a node dies; tests in
  ``tests/faults/test_cluster.py``, at scale in ``bench/chaos_cluster.py``.
- ``cluster_nodes``: ``Cluster``, the private cluster of
  ``scripts/rabbitmq-cluster`` (no Django needed).
- ``stock_delayed_delivery``: the portal's Celery app with Celery's own
  delayed-delivery step, to compare.

Built on the portal's harness (``portal.testing``); imports nothing from
``tests/``. Django must be set up before importing ``counting``,
``scenarios`` or ``cluster``.
"""
