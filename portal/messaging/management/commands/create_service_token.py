from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from portal.messaging.apis import service_token_create


class Command(BaseCommand):
    help = (
        "Create a token with which a service may POST events to /api/events/. "
        "The token is printed once; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The service, e.g. hr-import.")
        parser.add_argument(
            "--source-prefix",
            default="",
            help="Only accept events whose source starts with this (e.g. /hr-import).",
        )

    def handle(self, *args, name, source_prefix, **options):
        try:
            _, key = service_token_create(name=name, source_prefix=source_prefix)
        except IntegrityError:
            raise CommandError(f"a service token named {name!r} exists") from None
        self.stderr.write(f"Service token for {name!r} (shown once, store it now):")
        self.stdout.write(key)
