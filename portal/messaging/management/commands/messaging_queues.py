from django.core.management.base import BaseCommand, CommandError

from portal.messaging import delayed_delivery
from portal.messaging.queue_migration import (
    QueueBusy,
    broker_connection,
    expected_queues,
    holding_messages,
    queue_migrate,
    queue_state,
)
from portal.messaging.subscriptions import subscriptions
from portal.messaging.topology import subscription_queue


class Command(BaseCommand):
    help = (
        "Check the portal's queues, and the exchange that brings retries back "
        "from their delay, on the configured broker against what it declares "
        "now (declaring any that is missing), and with --migrate replace those "
        "declared earlier with other arguments, keeping the queues' messages. "
        "Stop the workers consuming a queue before migrating it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--migrate",
            action="store_true",
            help="Replace the queues whose arguments differ (their messages kept).",
        )

    def handle(self, *args, migrate=False, **options):
        connection = broker_connection()
        try:
            outdated = []
            for queue in expected_queues():
                state = queue_state(connection, queue)
                held = holding_messages(connection, queue)
                if not state.problem and not held:
                    self.stdout.write(f"ok        {queue.name}")
                    continue
                outdated.append(queue)
                if state.problem:
                    self.stdout.write(
                        f"outdated  {queue.name} ({state.messages} message(s), "
                        f"{state.consumers} consumer(s)): {state.problem}"
                    )
                if held:
                    self.stdout.write(
                        f"unfinished {queue.name}: {held} message(s) still in "
                        "its holding queue from an earlier migration"
                    )
                if migrate:
                    try:
                        moved = queue_migrate(connection, queue)
                    except QueueBusy as exc:
                        raise CommandError(str(exc)) from None
                    self.stdout.write(
                        f"migrated  {queue.name}: {moved} message(s) kept"
                    )
            exchange_outdated = self._delivery_exchange(connection, migrate)
            if (outdated or exchange_outdated) and not migrate:
                raise CommandError(
                    f"{len(outdated) + exchange_outdated} queue(s) or exchange(s) "
                    "to migrate "
                    "(declared earlier with other arguments, or a migration left "
                    "unfinished); stop their workers and run with --migrate"
                )
        finally:
            connection.release()

    def _delivery_exchange(self, connection, migrate: bool) -> bool:
        """Check (and with ``migrate`` replace) the exchange that brings
        retries back from their delay; True if it was outdated."""
        name = delayed_delivery.DELIVERY_EXCHANGE
        problem = delayed_delivery.delivery_exchange_problem(connection)
        if not problem:
            self.stdout.write(f"ok        {name} (exchange)")
            return False
        self.stdout.write(
            f"outdated  {name} (exchange): no alternate exchange "
            f"{delayed_delivery.UNROUTABLE}: {problem}"
        )
        if migrate:
            queues = [subscription_queue(s) for s in subscriptions()]
            delayed_delivery.delivery_exchange_migrate(connection, queues)
            self.stdout.write(
                f"migrated  {name} (exchange): {len(queues)} queue(s) bound again"
            )
        return True
