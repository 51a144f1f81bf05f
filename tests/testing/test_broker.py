"""The harness's broker helpers: which vhost a URL names, and whether the
broker says it is missing (the only case in which tools create it)."""

import socket
import uuid
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from portal.testing.broker import vhost_missing, vhost_name


def test_vhost_name():
    assert vhost_name("amqp://g:g@127.0.0.1:5672/h5") == "h5"
    assert vhost_name("amqp://g:g@127.0.0.1:5672//") == "/"
    assert vhost_name("amqp://g:g@127.0.0.1:5672/") == "/"
    assert vhost_name("amqp://g:g@127.0.0.1:5672/%2Fteam") == "/team"


def test_a_broker_that_does_not_answer_is_not_a_missing_vhost():
    """A port that accepts and never speaks AMQP (a hung broker)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        assert not vhost_missing(f"amqp://guest:guest@127.0.0.1:{port}/x", timeout=1)
    finally:
        listener.close()


@pytest.mark.real_stack
def test_the_broker_says_which_vhost_is_missing():
    url = settings.CELERY_BROKER_URL
    assert not vhost_missing(url)
    other = urlsplit(url)._replace(path=f"/no-such-vhost-{uuid.uuid4().hex}")
    assert vhost_missing(other.geturl())
