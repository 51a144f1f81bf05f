from django.conf import settings
from django.core.management.base import BaseCommand

from portal.messaging.relay import Relay
from portal.observability.exposition import metrics_server_start
from portal.observability.process import process_kind_set


class Command(BaseCommand):
    help = (
        "Route logged events to every subscriber that wants them and to "
        "portal.broadcast, until each destination is confirmed by RabbitMQ. "
        "Runs until stopped; several relays may run at once (rows are taken "
        "with SKIP LOCKED)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--once",
            action="store_true",
            help="Route what is overdue now, then exit.",
        )
        parser.add_argument(
            "--grace", type=float, help="Seconds a row may wait for the fast path."
        )
        parser.add_argument("--interval", type=float, help="Seconds between polls.")
        parser.add_argument("--batch-size", type=int, help="Rows taken per pass.")

    def handle(
        self, *args, once=False, grace=None, interval=None, batch_size=None, **options
    ):
        process_kind_set("relay")
        relay = Relay(grace=grace, interval=interval, batch_size=batch_size)
        if once:
            sent = relay.drain()
            self.stdout.write(f"Relayed {sent} event(s).")
            return
        relay.install_signal_handlers()
        metrics_server_start(
            port=settings.RELAY_METRICS_PORT,
            address=settings.METRICS_ADDRESS,
            token=settings.METRICS_TOKEN,
        )
        relay.run_forever()
