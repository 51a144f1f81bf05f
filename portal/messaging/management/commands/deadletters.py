from django.core.management.base import BaseCommand, CommandError

from portal.messaging.dead_letter_tools import (
    dead_letter_body_for_people,
    dead_letters_purge,
    dead_letters_requeue,
    dead_letters_select,
    parse_age,
)
from portal.messaging.models import DeadLetter


class Command(BaseCommand):
    help = (
        "Inspect and act on the dead-letter store: list, show ID, requeue "
        "(publish again to where each came from), purge (delete). Filters: "
        "--reason, --type, --subscriber, --older-than (e.g. 90m, 2h, 3d), "
        "--status."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "show", "requeue", "purge"])
        parser.add_argument("ids", nargs="*", type=int, help="Only these records.")
        parser.add_argument("--reason", help='e.g. "delivery limit", "not JSON"')
        parser.add_argument("--type", dest="event_type", help="Event type.")
        parser.add_argument(
            "--subscriber", help="Only what this subscriber gave up on (e.g. feed)."
        )
        parser.add_argument(
            "--older-than", help="Only records stored longer ago (2h, 3d…)."
        )
        parser.add_argument(
            "--status",
            choices=[*DeadLetter.Status.values, "all"],
            default=None,
            help="dead (default for requeue/purge/list) or requeued, or all.",
        )
        parser.add_argument("--limit", type=int, default=50, help="list: rows shown")

    def handle(self, *args, action, ids, reason, event_type, subscriber,
               older_than, status, limit, **options):  # fmt: skip
        try:
            age = parse_age(older_than) if older_than else None
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if status is None:
            status = "" if action == "show" else DeadLetter.Status.DEAD
        records = dead_letters_select(
            reason=reason,
            type=event_type,
            subscriber=subscriber,
            older_than=age,
            status="" if status == "all" else status,
            ids=ids or None,
        )
        getattr(self, f"_{action}")(records, limit=limit)

    def _list(self, records, *, limit):
        total = records.count()
        for record in records[:limit]:
            self.stdout.write(
                f"{record.pk:>7}  {record.created_at:%Y-%m-%d %H:%M:%S}  "
                f"{record.status:<8}  {record.reason:<20}  "
                f"{record.subscriber or '-':<12}  "
                f"{record.event_type or '-':<26}  {record.event_id or '-'}"
            )
        self.stdout.write(f"{total} dead letter(s)")

    def _show(self, records, *, limit):
        if not records.exists():
            raise CommandError("no such dead letter")
        for record in records[:limit]:
            self.stdout.write(
                f"#{record.pk} {record.kind} · {record.status} · {record.reason}"
                f" · subscriber {record.subscriber or '-'}\n"
                f"type: {record.event_type or '-'}  source: {record.source or '-'}  "
                f"id: {record.event_id or '-'}\n"
                f"from: exchange {record.exchange or '-'!r} routing key "
                f"{record.routing_key or '-'!r} (queue {record.queue or '-'})\n"
                f"attempts: {record.attempts}  first failed: {record.first_failed_at}"
                f"  last failed: {record.last_failed_at}  requeued: "
                f"{record.requeue_count}× {record.requeued_at or ''}\n"
                f"content type: {record.content_type or '-'}  size: {record.size}\n"
                f"headers: {record.headers}\n"
                f"error:\n{record.error}\n"
                f"body:\n{dead_letter_body_for_people(record)}\n"
            )

    def _requeue(self, records, *, limit):
        done, errors = dead_letters_requeue(records.order_by("id"))
        for error in errors:
            self.stderr.write(error)
        self.stdout.write(f"Requeued {done} dead letter(s).")
        if errors:
            raise CommandError(f"{len(errors)} could not be requeued")

    def _purge(self, records, *, limit):
        self.stdout.write(f"Purged {dead_letters_purge(records)} dead letter(s).")
