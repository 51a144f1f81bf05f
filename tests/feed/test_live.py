"""Live push on the real stack: a web server as production runs it
(gunicorn, a uvicorn worker), RabbitMQ carrying the feed's announcements,
streams read by a plain asyncio client."""

import asyncio
import time

import pytest
from django.db import transaction

from bench.live import (
    Stream,
    apply_one,
    measure_live,
    session_cookie,
    wait_listening,
    web_server,
)
from feed.models import FeedEvent
from feed.services import reaction_set
from tests.conftest import worker_env
from tests.web.factories import UserFactory

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


def test_every_open_stream_receives_every_applied_event(tmp_path, broker):
    result = measure_live(
        clients=20, events=5, gap=0.05, log_dir=tmp_path, env=worker_env()
    )
    # Counted, not timed: every stream got every event (bench/live.py times it).
    assert (result["delivered"], result["expected"]) == (100, 100)


@pytest.fixture
def server(tmp_path, broker):
    from bench.live import _free_port

    port = _free_port()
    log = tmp_path / "web.log"
    process = web_server(port, log, worker_env())
    try:
        wait_listening(process, port, log)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_streams_keep_to_their_filters_and_get_reaction_counts(server):
    cookie = session_cookie()
    user = UserFactory()

    async def scenario():
        everything = Stream(server, cookie)
        platform_only = Stream(server, cookie, "/feed/live/?department=7")
        finance_thanks = Stream(server, cookie, "/feed/live/?type=thanks.sent")
        streams = [everything, platform_only, finance_thanks]
        for stream in streams:
            stream.task = asyncio.create_task(stream.run())
        await asyncio.wait_for(
            asyncio.gather(*(s.ready.wait() for s in streams)), timeout=20
        )
        loop = asyncio.get_running_loop()
        in_platform, _ = await loop.run_in_executor(None, apply_one, 1, 7)
        elsewhere, _ = await loop.run_in_executor(None, apply_one, 2, 8)

        def react():
            with transaction.atomic():
                event = FeedEvent.objects.get(pk=in_platform)
                reaction_set(feed_event=event, user=user, kind="like", active=True)

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(everything.arrivals) < 2:
            await asyncio.sleep(0.05)
        await loop.run_in_executor(None, react)
        while time.monotonic() < deadline and not everything.reactions:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # anything a filter should have kept out
        for stream in streams:
            stream.close()
        return in_platform, elsewhere, streams

    in_platform, elsewhere, streams = asyncio.run(scenario())
    everything, platform_only, thanks_only = streams
    assert set(everything.arrivals) == {in_platform, elsewhere}
    assert set(platform_only.arrivals) == {in_platform}
    assert thanks_only.arrivals == {}
    assert everything.reactions == [
        {"id": in_platform, "counts": {"like": 1, "fire": 0}}
    ]
    assert platform_only.reactions == everything.reactions


def test_a_stream_needs_a_staff_login(server, client):
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{server}/feed/live/"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)
    assert refused.value.code == 401
