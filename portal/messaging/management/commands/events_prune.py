from django.conf import settings
from django.core.management.base import BaseCommand
from tqdm import tqdm

from portal.messaging.management.timeparse import age
from portal.messaging.retention import events_prune


class Command(BaseCommand):
    help = (
        "Remove log rows older than the window that every subscriber has "
        "applied (never one still owed), and inbox keys older than it; journey "
        "hops and dead letters past their own retention."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            help=f"e.g. 30d (default: EVENT_LOG_RETENTION_DAYS, now "
            f"{settings.EVENT_LOG_RETENTION_DAYS:g}d).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, older_than=None, dry_run=False, **options):
        window = age(older_than) if older_than else None
        with tqdm(
            unit="row", desc="log rows", disable=options["no_progress"],
            file=self.stderr,
        ) as bar:  # fmt: skip
            result = events_prune(
                older_than=window, dry_run=dry_run, progress=bar.update
            )
        self.stdout.write(("Would remove: " if dry_run else "Removed: ") + str(result))
