from django.core.management.base import BaseCommand, CommandError

from portal.messaging.queue_migration import (
    QueueBusy,
    broker_connection,
    expected_queues,
    holding_messages,
    queue_migrate,
    queue_state,
)


class Command(BaseCommand):
    help = (
        "Check the portal's queues on the configured broker against what it "
        "declares now (declaring any that is missing), and with --migrate "
        "replace those declared earlier with other arguments, keeping their "
        "messages. Stop the workers consuming a queue before migrating it."
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
            if outdated and not migrate:
                raise CommandError(
                    f"{len(outdated)} queue(s) to migrate (declared earlier with "
                    "other arguments, or a migration left unfinished); stop "
                    "their workers and run with --migrate"
                )
        finally:
            connection.release()
