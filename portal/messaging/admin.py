from django.contrib import admin

from .models import DeadLetter, OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "type",
        "event_id",
        "status",
        "attempts",
        "created_at",
        "published_at",
        "last_error",
    ]
    list_filter = ["status", "type"]
    search_fields = ["event_id", "type"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["created_at", "reason", "event_type", "source", "event_id"]
    list_filter = ["reason", "event_type"]
    search_fields = ["event_id", "source", "error"]
