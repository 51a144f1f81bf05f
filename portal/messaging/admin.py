from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timesince import timesince

from .deadletters import deadletters_purge, deadletters_requeue, decoded_body
from .models import DeadLetter, OutboxMessage, ServiceToken


class OutboxFailureFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [("failing", "Pending with errors"), ("waiting", "Pending, no error")]

    def queryset(self, request, queryset):
        pending = queryset.filter(status=OutboxMessage.Status.PENDING)
        if self.value() == "failing":
            return pending.exclude(last_error="")
        if self.value() == "waiting":
            return pending.filter(last_error="")
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "type",
        "event_id",
        "status",
        "attempts",
        "age",
        "created_at",
        "published_at",
        "short_error",
    ]
    list_filter = ["status", OutboxFailureFilter, "type"]
    search_fields = ["event_id", "type", "source"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
    date_hierarchy = "created_at"
    actions = ["republish"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="age", ordering="created_at")
    def age(self, obj):
        return timesince(obj.created_at)

    @admin.display(description="last error")
    def short_error(self, obj):
        return Truncator(obj.last_error).chars(80)

    @admin.action(description="Republish selected messages", permissions=["change"])
    def republish(self, request, queryset):
        """Publish the rows again, sent ones too: the feed applies each event
        at most once, so a second delivery is harmless."""
        from .publisher import publish_pending

        ids = list(queryset.values_list("pk", flat=True))
        queryset.update(status=OutboxMessage.Status.PENDING, published_at=None)
        result = publish_pending(ids=ids)
        text = f"{result.sent} of {len(ids)} message(s) published."
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
        "queue",
    ]
    list_filter = ["status", "reason", "event_type", "kind", "queue"]
    search_fields = ["event_id", "source", "event_type", "error", "body"]
    date_hierarchy = "created_at"
    actions = ["requeue", "purge"]
    readonly_fields = [
        "payload",
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

    @admin.display(description="payload")
    def payload(self, obj: DeadLetter):
        return format_html(
            '<pre class="deadletter-payload">{}</pre>', decoded_body(obj)
        )

    @admin.action(
        description="Requeue: publish again to where they came from",
        permissions=["requeue"],
    )
    def requeue(self, request, queryset):
        selected = list(queryset.order_by("id"))
        done, errors = deadletters_requeue(selected)
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
        self.message_user(request, f"Purged {deadletters_purge(queryset)} record(s).")

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
