"""The worker's consumer of subscriber task queues: Celery's own, with three
changes.

* An oversized, non-JSON or malformed task message is rejected (to its
  queue's dead-letter queue) before Celery parses it, instead of being
  handed to a pool process to fail there, or acked and lost.
* The topology is declared as soon as the worker connects
  (``topology.declare_worker_topology``), before any step consumes; the task
  consumer only consumes (``no_declare``), so a queue declared earlier with
  other arguments is used as it is and reported (``manage.py
  messaging_queues``), instead of crashing the worker.
* Native delayed delivery is set up on the first broker of the URL list that
  answers, starting with the one the worker just connected to, with an
  alternate exchange for retries whose queue is gone
  (``ClusterDelayedDelivery``, ``delayed_delivery``).
"""

import logging
import time
from urllib.parse import urlsplit

from celery.worker.consumer import Consumer
from celery.worker.consumer.delayed_delivery import DelayedDelivery
from kombu.utils.url import maybe_sanitize_url

from .amqp_messages import content_type_of
from .delayed_delivery import declare_delayed_delivery, declare_unroutable
from .subscriptions import subscription_for_task
from .topology import declare_worker_topology

logger = logging.getLogger(__name__)


class ClusterDelayedDelivery(DelayedDelivery):
    """Celery's native delayed delivery set-up, done on one node.

    Its exchanges, queues and bindings belong to the cluster, so one node
    that answers is enough. Celery's own step sets up every URL of the list
    in turn, retrying a dead one several times, while the worker does not
    consume yet (a worker whose node died consumed again after 18 s,
    ``bench/results/chaos-cluster.md``). This one starts with the node the
    worker's consumer is connected to (it has just answered; trying the
    dead first node of the list still cost 2 s) and stops at the first that
    succeeds.
    """

    rounds = 3

    def start(self, c) -> None:
        app = c.app
        self._validate_configuration(app)
        urls = connected_first(
            self._validate_broker_urls(app.conf.broker_url),
            getattr(c, "connection", None),
        )
        for attempt in range(self.rounds):
            if attempt:
                time.sleep(attempt)
            for url in urls:
                try:
                    self._setup_delayed_delivery(c, url)
                except Exception as exc:  # noqa: BLE001 - the next node may answer
                    logger.warning(
                        "Delayed delivery set-up failed on %s (%s); trying the next",
                        maybe_sanitize_url(url),
                        exc,
                    )
                else:
                    return
        logger.critical(
            "Delayed delivery could not be set up on any broker: retries will "
            "not be held by RabbitMQ until a worker restarts with one reachable"
        )

    def _setup_delayed_delivery(self, c, broker_url: str) -> None:
        """Celery's set-up, with the portal's declaration of the levels and
        the delivery exchange (``delayed_delivery``)."""
        with c.app.connection_for_write(url=broker_url) as connection:
            declare_delayed_delivery(
                connection, c.app.conf.broker_native_delayed_delivery_queue_type
            )
            self._bind_queues(c.app, connection)


def connected_first(urls: list[str], connection) -> list[str]:
    """``urls`` with those naming the host and port ``connection`` is
    connected to first, the others in their order."""
    if connection is None or not getattr(connection, "hostname", None):
        return list(urls)
    where = (connection.hostname, connection.port or 5672)

    def elsewhere(url: str) -> bool:
        parts = urlsplit(url)
        return (parts.hostname, parts.port or 5672) != where

    return sorted(urls, key=elsewhere)


def _step(name: str) -> str:
    replacements = {
        "celery.worker.consumer.delayed_delivery:DelayedDelivery": (
            f"{__name__}:ClusterDelayedDelivery"
        ),
    }
    return replacements.get(name, name)


class TaskConsumer(Consumer):
    class Blueprint(Consumer.Blueprint):
        default_steps = [_step(name) for name in Consumer.Blueprint.default_steps]

    def connect(self):
        """Connect, and declare the topology before any step consumes: every
        step that uses the connection starts after this."""
        connection = super().connect()
        declare_worker_topology(connection)
        declare_unroutable(connection)  # consumed by the dead-letter intake
        return connection

    def create_task_handler(self, *args, **kwargs):
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message):
            # Refuse before Celery parses anything: a huge or non-JSON body
            # would otherwise be handed to a pool process to fail there.
            size = len(message.body or b"")
            content_type = content_type_of(message)
            if (
                size > _max_bytes(message)
                or content_type != "application/json"
                or not _task_body_well_formed(message)
            ):
                logger.error(
                    "Refusing task message (%s bytes, content type %r); "
                    "dead-lettering it",
                    size,
                    content_type,
                )
                message.reject(requeue=False)
                return None
            return handle(message)

        return on_task_received

    def on_decode_error(self, message, exc):
        """Reject an undecodable message so the queue dead-letters it.

        Celery's default acks (drops) it; rejecting without requeue sends it
        to the dead-letter exchange with its body intact, so nothing is lost
        and nothing loops.
        """
        logger.error(
            "Undecodable message (content type %r): %s; dead-lettering it",
            message.content_type,
            exc,
        )
        message.reject(requeue=False)


def _max_bytes(message) -> int:
    from django.conf import settings

    headers = message.headers if isinstance(message.headers, dict) else {}
    subscription = subscription_for_task(str(headers.get("task") or ""))
    if subscription is not None:
        return subscription.max_message_bytes
    return settings.MESSAGE_MAX_BYTES


def _task_body_well_formed(message) -> bool:
    """Is the body Celery's ``[args, kwargs, embed]``?

    Celery unpacks it in the worker's main process, where a ValueError is an
    "unrecoverable error" that stops the whole worker: check first.
    """
    headers = message.headers if isinstance(message.headers, dict) else {}
    if "task" not in headers or headers.get("compression"):
        return True  # not protocol 2 JSON: Celery's own checks apply
    try:
        # kombu keeps the decoded body: Celery's own unpacking reuses it.
        body = message.decode()
    except Exception:  # noqa: BLE001 - any failure to decode is a bad body
        return False
    return (
        isinstance(body, list)
        and len(body) == 3
        and isinstance(body[0], list)
        and isinstance(body[1], dict)
        and isinstance(body[2], dict | None)
    )
