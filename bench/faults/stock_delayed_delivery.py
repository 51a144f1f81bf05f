"""The portal's Celery app with Celery's own native-delayed-delivery step
(every URL of the list in turn, each retried) instead of the portal's
``ClusterDelayedDelivery`` (the first node that answers).

Only ``bench/faults/cluster.py`` starts a worker with ``-A
bench.faults.stock_delayed_delivery``, to measure what the portal's step
saves after a node dies; production code knows nothing of it.
"""

from celery import Celery
from celery.worker.consumer import Consumer

from portal.celery import app
from portal.messaging.task_consumer import TaskConsumer

__all__ = ["app"]


class StockDelayedDeliveryConsumer(TaskConsumer):
    class Blueprint(TaskConsumer.Blueprint):
        default_steps = list(Consumer.Blueprint.default_steps)


@app.on_after_configure.connect
def _stock_consumer(sender: Celery, **kwargs: object) -> None:
    # After the portal's own handler, which names its TaskConsumer.
    sender.conf.worker_consumer = f"{__name__}:StockDelayedDeliveryConsumer"


# (And now, in case the configuration was read already.)
app.conf.worker_consumer = f"{__name__}:StockDelayedDeliveryConsumer"
