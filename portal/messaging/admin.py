from django.contrib import admin, messages
from django.utils.text import Truncator
from django.utils.timesince import timesince

from .models import DeadLetter, OutboxMessage


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
    list_display = ["created_at", "reason", "event_type", "source", "event_id"]
    list_filter = ["reason", "event_type"]
    search_fields = ["event_id", "source", "error"]
