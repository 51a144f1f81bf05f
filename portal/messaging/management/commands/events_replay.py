from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from portal.messaging.management.timeparse import moment
from portal.messaging.replay import ReplayError, events_replay, replay_selection
from portal.messaging.subscriptions import subscription_named, subscriptions


class Command(BaseCommand):
    help = (
        "Deliver logged events again to one subscriber (its task only; nothing "
        "in the log changes). Subscribers apply each event at most once, so "
        "replaying what one has changes nothing; --repair asks it to re-apply "
        "over its earlier effect where it can (the feed re-renders its cards)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--subscriber", required=True, help="Subscription name.")
        parser.add_argument(
            "--since", help="Logged at or after: ISO date-time, or an age (2h, 7d)."
        )
        parser.add_argument("--until", help="Logged at or before (same forms).")
        parser.add_argument(
            "--type", action="append", dest="types", help="Event type (repeatable)."
        )
        parser.add_argument(
            "--source", default="", help="Source, or a prefix of sources."
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count.")
        parser.add_argument("--repair", action="store_true")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        subscription = subscription_named(options["subscriber"])
        if subscription is None:
            names = ", ".join(s.name for s in subscriptions())
            raise CommandError(
                f"No subscriber {options['subscriber']!r} (known: {names})."
            )
        filters = {
            "since": moment(options["since"]),
            "until": moment(options["until"]),
            "types": options["types"],
            "source": options["source"],
        }
        if options["dry_run"]:
            result = events_replay(subscription, dry_run=True, **filters)
            self.stdout.write(
                f"Would replay {result.matched} event(s) to {subscription.name}."
            )
            return
        total = replay_selection(subscription, **filters).count()
        bar = tqdm(
            total=total,
            unit="event",
            desc=f"replay to {subscription.name}",
            disable=options["no_progress"],
            file=self.stderr,
        )
        try:
            with bar:
                result = events_replay(
                    subscription, repair=options["repair"], progress=bar.update,
                    **filters,
                )  # fmt: skip
        except ReplayError as exc:
            raise CommandError(f"Replay stopped: {exc}") from exc
        rate = (
            result.sent / bar.format_dict["elapsed"]
            if bar.format_dict["elapsed"]
            else 0
        )
        self.stdout.write(
            f"Replayed {result.sent} of {result.matched} event(s) to "
            f"{subscription.name} in {result.messages} message(s), "
            f"{rate:,.0f} events/s"
            + (" (repair)" if options["repair"] else "")
            + ". The subscriber applies what it does not have yet."
        )
