from typing import ClassVar

from django.db import models


class ReceivedEvent(models.Model):
    """One application of an event by the audit subscriber. Deliberately not
    unique: a second application would show as a second row."""

    source = models.CharField(max_length=200)
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    # Said for the type checker, whose settings leave this test app out.
    objects: ClassVar[models.Manager["ReceivedEvent"]]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
