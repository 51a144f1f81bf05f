from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from feed.services import feed_events_apply
from feed.subscriptions import FEED
from portal.messaging.management.timeparse import moment
from portal.messaging.replay import logged_envelopes, replay_selection


class Command(BaseCommand):
    help = (
        "Render the feed's cards again from the logged events (their text, "
        "data and department), e.g. after fixing a rendering bug; cards "
        "missing from the feed are added. Runs here, not through the workers "
        "(`events_replay --subscriber feed --repair` does the same through them)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", required=True, help="ISO date-time, or an age (7d, 2h)."
        )
        parser.add_argument("--until", help="Same forms.")
        parser.add_argument("--type", action="append", dest="types")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, since, until=None, types=None, **options):
        filters = {"since": moment(since), "until": moment(until), "types": types}
        total = replay_selection(FEED, **filters).count()
        changed = dead = 0
        with tqdm(
            total=total, unit="event", desc="feed_rebuild",
            disable=options["no_progress"], file=self.stderr,
        ) as bar:  # fmt: skip
            for envelopes in logged_envelopes(FEED, **filters):
                with transaction.atomic():
                    result = feed_events_apply(envelopes=envelopes, repair=True)
                changed += result.created
                dead += result.dead_lettered
                bar.update(len(envelopes))
        self.stdout.write(
            f"Rebuilt the feed from {total} logged event(s): {changed} card(s) "
            f"added or changed, {total - changed - dead} already right"
            + (f", {dead} dead-lettered" if dead else "")
            + "."
        )
