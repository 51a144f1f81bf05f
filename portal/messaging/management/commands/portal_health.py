import sys

from django.core.management.base import BaseCommand

from portal.observability.heartbeat import heartbeat_age


class Command(BaseCommand):
    help = (
        "Health probe of a relay or worker on this host: exits 0 if its "
        "heartbeat file is fresh (the relay beats after each pass, a worker "
        "while its consumer is connected), 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("process", choices=["relay", "worker"])
        parser.add_argument("--max-age", type=float, default=60.0, help="Seconds.")

    def handle(self, *args, process, max_age, **options):
        beat = heartbeat_age(process)
        if beat is None:
            self.stderr.write(f"{process}: no heartbeat yet")
            sys.exit(1)
        if beat > max_age:
            self.stderr.write(
                f"{process}: last heartbeat {beat:.0f}s ago (> {max_age:g}s)"
            )
            sys.exit(1)
        self.stdout.write(f"{process}: alive, heartbeat {beat:.1f}s ago")
