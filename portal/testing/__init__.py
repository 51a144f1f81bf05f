"""The portal's own harness for its tests and benchmarks: worker and relay
subprocesses, database and broker URLs, event factories.

``tests/`` (its fixtures are thin wrappers around it) and ``bench/`` (the
benchmark and the fault scenarios of ``bench/chaos.py``) both import it;
``bench/`` imports nothing from ``tests/``. Like the rest of ``portal/`` it
imports no app. Nothing here is used by the running portal.

- ``urls``: ``database_url()`` from Django's connection settings (user,
  password, host, port each optional), ``host_port``, ``via_port`` (the same
  URL through a proxy).
- ``environment``: ``process_env()``, the environment of a subprocess on
  this process's database, broker and queue names.
- ``processes``: ``Supervised`` (own process group, optional restart,
  ``kill``/``kill_child``), ``Worker`` (``celery worker``, every subscriber's
  queue or those chosen), ``RelayProcess`` (``manage.py relay_outbox``).
- ``events``: ``cloud_event(type, n=...)``, a valid CloudEvent of each
  type, and ``event_data``.
- ``broker``: connections, queue depth/purge/delete, ``Publisher`` (task
  messages and raw bytes straight to a queue, confirmed).
- ``proxy``: ``FaultProxy``, a TCP proxy that cuts or pauses a link.
- ``rabbit_node``: ``PrivateRabbitNode``, a RabbitMQ node of its own on
  loopback, for what must stop a broker (never the machine's node).
- ``subscriber_app``: a second subscriber (``audit``: every ``employee.*``
  event, recorded once through the inbox; ``AUDIT_FAIL=1`` makes it fail),
  installed by the test settings and through ``PORTAL_EXTRA_APPS``.
"""
