"""Factories for users and feed events (registrar factories: tests/factories.py)."""

import uuid

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from feed.models import FeedEvent
from feed.rendering import render_text

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    """A user; ``groups=["HR"]`` puts it in roles by name."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def groups(self, create, names, **kwargs):
        self.save()
        for name in names or ():
            self.groups.add(Group.objects.get(name=name))


def _data(event):
    return {
        "employee_id": 1,
        "full_name": "Anna Petrova",
        "position": "Backend Engineer",
        "department": event.department or "Platform",
        "team": None,
    }


class FeedEventFactory(factory.django.DjangoModelFactory):
    """A feed event stored directly (as the worker would), for arranging tests."""

    class Meta:
        model = FeedEvent

    source = "/tests"
    event_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    type = "employee.registered"
    time = factory.LazyFunction(timezone.now)
    department = "Platform"
    department_id = None
    data = factory.LazyAttribute(
        lambda e: (
            _data(e)
            if e.type == "employee.registered"
            else {"department_id": 1, "old_name": "Money", "new_name": e.department}
        )
    )
    text = factory.LazyAttribute(lambda e: render_text(e.type, e.data))
