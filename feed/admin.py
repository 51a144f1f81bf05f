from django.contrib import admin

from .models import FeedEvent


@admin.register(FeedEvent)
class FeedEventAdmin(admin.ModelAdmin):
    list_display = ["time", "type", "text", "source", "event_id", "received_at"]
    list_filter = ["type"]
    search_fields = ["event_id", "source", "type", "text"]
    date_hierarchy = "time"
