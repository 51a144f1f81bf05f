from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timesince import timesince

from .dead_letter_tools import (
    dead_letter_body_for_people,
    dead_letters_purge,
    dead_letters_requeue,
)
from .models import DeadLetter, LoggedEvent, ServiceToken
from .views import journey_url


class DeliveryFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [("failing", "Pending with errors"), ("waiting", "Pending, no error")]

    def queryset(self, request, queryset):
        pending = queryset.filter(status=LoggedEvent.Status.PENDING)
        if self.value() == "failing":
            return pending.exclude(last_error="")
        if self.value() == "waiting":
            return pending.filter(last_error="")
        return queryset


@admin.register(LoggedEvent)
class LoggedEventAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "type",
        "event_id",
        "origin",
        "status",
        "owed_to",
        "attempts",
        "age",
        "created_at",
        "published_at",
        "short_error",
        "journey",
    ]
    list_filter = ["status", DeliveryFilter, "origin", "type"]
    # Newest first: what an operator looks for is what just happened.
    ordering = ["-id"]
    search_fields = ["event_id", "type", "source"]
    readonly_fields = [f.name for f in LoggedEvent._meta.fields]
    date_hierarchy = "created_at"
    actions = ["republish"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="age", ordering="created_at")
    def age(self, obj):
        return timesince(obj.created_at)

    @admin.display(description="owed to")
    def owed_to(self, obj):
        return ", ".join(obj.undelivered or []) or "—"

    @admin.display(description="last error")
    def short_error(self, obj):
        return Truncator(obj.last_error).chars(80)

    @admin.display(description="journey")
    def journey(self, obj):
        return format_html('<a href="{}">journey</a>', journey_url(log_id=obj.pk))

    @admin.action(
        description="Republish selected events to every subscriber",
        permissions=["change"],
    )
    def republish(self, request, queryset):
        """Route the events again, sent ones too, to every destination that
        wants them now: subscribers apply each event at most once, so a
        second delivery is harmless."""
        from .router import route_pending
        from .subscriptions import destinations_for

        ids = list(queryset.values_list("pk", flat=True))
        for event_type in set(queryset.values_list("type", flat=True)):
            queryset.filter(type=event_type).update(
                status=LoggedEvent.Status.PENDING,
                published_at=None,
                undelivered=destinations_for(event_type),
            )
        result = route_pending(ids=ids)
        text = f"{result.sent} of {len(ids)} event(s) republished."
        if result.failed:
            text += f" {result.failed} still pending: {result.error}"
        level = messages.WARNING if result.failed else messages.SUCCESS
        self.message_user(request, text, level=level)


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    """The dead-letter store: see why, see the payload, requeue or purge."""

    list_display = [
        "id",
        "created_at",
        "status",
        "reason",
        "event_type",
        "source",
        "event_id",
        "attempts",
        "subscriber",
        "queue",
        "journey",
    ]
    list_filter = ["status", "reason", "subscriber", "event_type", "kind", "queue"]
    search_fields = ["event_id", "source", "event_type", "error", "body"]
    date_hierarchy = "created_at"
    actions = ["requeue", "purge"]
    readonly_fields = [
        "payload",
        "journey",
        *[f.name for f in DeadLetter._meta.fields if f.name != "body"],
    ]
    exclude = ["body"]

    class Media:
        # Styles live in a file: the Content-Security-Policy blocks inline ones.
        css = {"all": ["portal/admin.css"]}

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="journey")
    def journey(self, obj: DeadLetter):
        if not obj.event_id:
            return "—"
        return format_html(
            '<a href="{}">journey</a>', journey_url(event_id=obj.event_id)
        )

    @admin.display(description="payload")
    def payload(self, obj: DeadLetter):
        return format_html(
            '<pre class="deadletter-payload">{}</pre>', dead_letter_body_for_people(obj)
        )

    @admin.action(
        description="Requeue: back to the subscriber (or queue) that failed",
        permissions=["requeue"],
    )
    def requeue(self, request, queryset):
        selected = list(queryset.order_by("id"))
        done, errors = dead_letters_requeue(selected)
        if done:
            self.message_user(request, f"Requeued {done} dead letter(s).")
        if errors:
            self.message_user(
                request,
                f"{len(selected) - done} could not be requeued and stay dead: "
                + "; ".join(errors),
                level=messages.ERROR,
            )

    @admin.action(description="Purge: delete for good", permissions=["delete"])
    def purge(self, request, queryset):
        self.message_user(request, f"Purged {dead_letters_purge(queryset)} record(s).")

    def has_requeue_permission(self, request) -> bool:
        return request.user.has_perm("messaging.view_deadletter") and (
            request.user.has_perm("messaging.delete_deadletter")
        )


@admin.register(ServiceToken)
class ServiceTokenAdmin(admin.ModelAdmin):
    """Tokens of services that POST events; created with create_service_token."""

    list_display = [
        "name",
        "source_prefix",
        "event_types",
        "active",
        "created_at",
        "last_used_at",
    ]
    list_filter = ["active"]
    search_fields = ["name", "source_prefix"]
    fields = [
        "name",
        "source_prefix",
        "event_types",
        "active",
        "created_at",
        "last_used_at",
    ]
    readonly_fields = ["name", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        # The key is shown once, by `manage.py create_service_token NAME`.
        return False
