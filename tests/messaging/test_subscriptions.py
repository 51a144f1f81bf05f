"""The subscription registry: who receives what, and each one's knobs."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from feed.subscriptions import FEED
from portal.messaging.subscriptions import (
    BROADCAST,
    Subscription,
    destinations_for,
    subscription_for_queue,
    subscription_for_task,
    subscription_register,
    subscription_unregister,
)
from portal.testing.subscriber_app.subscriptions import AUDIT


def test_destinations_follow_each_subscriptions_patterns(settings):
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    assert destinations_for("employee.registered") == ["feed", "audit", BROADCAST]
    assert destinations_for("thanks.sent") == ["feed", BROADCAST]
    assert destinations_for("employee.welcome_sent") == ["audit", BROADCAST]
    assert destinations_for("billing.paid") == [BROADCAST]


def test_there_is_no_broadcast_off_rabbitmq_or_when_switched_off(settings):
    settings.CELERY_BROKER_URL = "filesystem:///tmp/broker"
    assert destinations_for("thanks.sent") == ["feed"]
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    settings.EVENTS_BROADCAST = False
    assert destinations_for("thanks.sent") == ["feed"]


def test_knobs_come_from_settings_then_the_environment(settings, monkeypatch):
    assert (AUDIT.queue, AUDIT.delays, AUDIT.max_deliveries) == ("audit", (1, 1), 10)
    monkeypatch.setenv("AUDIT_QUEUE", "audit.elsewhere")
    monkeypatch.setenv("AUDIT_RETRY_DELAYS", "2, 4")
    monkeypatch.setenv("AUDIT_DELIVERY_LIMIT", "3")
    assert (AUDIT.queue, AUDIT.delays, AUDIT.max_deliveries) == (
        "audit.elsewhere",
        (2, 4),
        3,
    )
    assert AUDIT.dead_letter_queue == "audit.elsewhere.dead"
    settings.AUDIT_QUEUE = "audit.from-settings"
    assert AUDIT.queue == "audit.from-settings"
    assert subscription_for_queue("audit.from-settings.dead") is AUDIT
    assert subscription_for_task("subscriber_app.record") is AUDIT


@pytest.mark.parametrize("delays", ["0,5", "1.5", "x"])
def test_retry_delays_are_whole_seconds_of_at_least_one(monkeypatch, delays):
    monkeypatch.setenv("AUDIT_RETRY_DELAYS", delays)
    with pytest.raises(ImproperlyConfigured, match="RETRY_DELAYS|whole seconds"):
        AUDIT.delays  # noqa: B018


def test_a_name_is_declared_once():
    assert subscription_register(FEED) is FEED  # the same declaration again
    other = Subscription(
        name="feed", patterns=("#",), task="other.task", settings_prefix="OTHER"
    )
    with pytest.raises(ValueError, match="another subscription"):
        subscription_register(other)


@pytest.mark.parametrize(
    ("name", "patterns"),
    [("broadcast", ("#",)), ("a.b", ("#",)), ("x", ()), ("y", ("a..b",))],
)
def test_a_subscription_must_make_sense(name, patterns):
    with pytest.raises(ValueError, match=r"subscription|pattern"):
        Subscription(name=name, patterns=patterns, task="t", settings_prefix="T")


def test_a_subscriber_that_is_gone_is_owed_nothing(settings):
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    subscription_unregister(AUDIT.name)
    try:
        assert destinations_for("employee.registered") == ["feed", BROADCAST]
    finally:
        subscription_register(AUDIT)


def test_a_queue_name_that_shadows_another_fails_the_system_check(settings):
    from portal.messaging.checks import check_subscriptions

    assert check_subscriptions() == []
    settings.AUDIT_QUEUE = "mail.feed"
    [error] = check_subscriptions()
    assert error.id == "messaging.E001"
    assert "'mail.feed'" in error.msg
