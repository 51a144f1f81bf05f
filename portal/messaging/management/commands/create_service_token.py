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
            required=True,
            help="Only accept events whose source is this or below it, by path "
            "segment (e.g. /hr-import admits /hr-import/eu). Sources under "
            "the portal's own (/portal) are never accepted.",
        )
        parser.add_argument(
            "--event-type",
            action="append",
            dest="event_types",
            default=[],
            metavar="PATTERN",
            help="Only accept event types matching this pattern (AMQP topic "
            "syntax: employee.*, thanks.sent); repeat for more. Default: any.",
        )

    def handle(self, *args, name, source_prefix, event_types, **options):
        try:
            _, key = service_token_create(
                name=name, source_prefix=source_prefix, event_types=event_types
            )
        except IntegrityError:
            raise CommandError(f"a service token named {name!r} exists") from None
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stderr.write(f"Service token for {name!r} (shown once, store it now):")
        self.stdout.write(key)
