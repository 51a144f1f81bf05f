from django.contrib import admin

from .models import FeedEvent, Reaction, Thanks


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the feed's services and worker: look, do not touch."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(FeedEvent)
class FeedEventAdmin(ReadOnlyAdmin):
    list_display = ["time", "type", "text", "department", "source", "event_id"]
    list_filter = ["type", "source", "department"]
    search_fields = ["event_id", "source", "type", "text"]
    date_hierarchy = "time"

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Reaction)
class ReactionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "user", "feed_event"]
    list_filter = ["kind"]
    search_fields = ["user__username", "feed_event__text", "feed_event__event_id"]
    list_select_related = ["user", "feed_event"]
    date_hierarchy = "created_at"


@admin.register(Thanks)
class ThanksAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "from_employee", "to_employee", "message"]
    search_fields = [
        "from_employee__full_name",
        "to_employee__full_name",
        "message",
    ]
    list_select_related = ["from_employee", "to_employee"]
    date_hierarchy = "created_at"
