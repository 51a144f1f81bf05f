from django.contrib import admin

from .models import DeadLetter, FeedEvent


@admin.register(FeedEvent)
class FeedEventAdmin(admin.ModelAdmin):
    list_display = ["time", "type", "text", "source", "event_id", "received_at"]
    list_filter = ["type"]
    search_fields = ["event_id", "source", "type", "text"]
    date_hierarchy = "time"


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["created_at", "reason", "event_type", "source", "event_id"]
    list_filter = ["reason", "event_type"]
    search_fields = ["event_id", "source", "error"]
