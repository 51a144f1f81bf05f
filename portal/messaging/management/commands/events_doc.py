from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.messaging.asyncapi import events_markdown

DEFAULT_PATH = Path(settings.BASE_DIR) / "docs" / "events.md"


class Command(BaseCommand):
    help = "Write docs/events.md from the event registry (contracts.py)."

    def add_arguments(self, parser):
        parser.add_argument("--output", default=str(DEFAULT_PATH))
        parser.add_argument(
            "--check",
            action="store_true",
            help="Fail if the file is not up to date instead of writing it.",
        )

    def handle(self, *args, output, check, **options):
        path = Path(output)
        text = events_markdown()
        if check:
            if not path.exists() or path.read_text() != text:
                raise CommandError(f"{path} is out of date: run manage.py events_doc")
            self.stdout.write(f"{path} is up to date.")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.stdout.write(f"Wrote {path}.")
