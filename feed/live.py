"""The feed pushed to open pages as it changes (Server-Sent Events).

After its commit, the feed's subscriber task announces the ids of the events
it applied on the fanout exchange ``portal.feed.live``; a reaction announces
the event's new counts after its own commit. These announcements are outside
the event log (``portal.messaging.live``): transient, and harmless to lose,
because a page that reconnects asks ``/feed/arrived/`` for what it missed.

Each web process (ASGI) holds one exclusive, auto-delete queue bound to the
exchange (``feed_live_hub``). It reads each announced batch from the
database and renders its cards **once**, then hands them to every open
stream, which keeps the cards its page's filters want and writes them out.
So 200 open pages cost one query per batch per process, not 200.
"""

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from django.template.loader import render_to_string

from portal.messaging.live import (
    LIVE_RESYNC,
    LiveHub,
    live_announce_after_commit,
    live_announce_unsafe,
)

from .models import FeedEvent
from .selectors import with_reactions

FEED_LIVE_EXCHANGE = "portal.feed.live"
# Ids per announcement: a batch of a thousand events makes a few messages.
IDS_PER_ANNOUNCEMENT = 200
# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15.0


def feed_live_announce_applied_unsafe(ids: list[int]) -> None:
    """Tell the web processes which feed events were just applied (call after
    the commit). Direct publish, outside the log; losing it is harmless."""
    for start in range(0, len(ids), IDS_PER_ANNOUNCEMENT):
        live_announce_unsafe(
            FEED_LIVE_EXCHANGE,
            {
                "kind": "events",
                "ids": ids[start : start + IDS_PER_ANNOUNCEMENT],
                "applied_at": time.time(),
            },
        )


def feed_live_announce_reactions(*, feed_event: FeedEvent, counts: dict) -> None:
    """After the current transaction commits, tell open pages the event's
    reaction counts (from a background thread; the request does not wait)."""
    live_announce_after_commit(
        FEED_LIVE_EXCHANGE,
        {"kind": "reactions", "id": feed_event.pk, "counts": counts},
    )


def _cards(ids: list[int]) -> dict[str, Any]:
    """The announced events as cards, rendered once for every listener.

    The reaction counts are read too (an event re-announced after a while
    may have some); whether *you* reacted is not known here and shows as
    not yet, which is true of every event just applied.
    """
    events = with_reactions(FeedEvent.objects.filter(pk__in=ids)).order_by(
        "-time", "-id"
    )
    cards = []
    for event in events:
        cards.append(
            {
                "id": event.pk,
                "type": event.type,
                "department_id": event.department_id,
                "html": render_to_string("feed/_cards.html", {"events": [event]}),
            }
        )
    return {"kind": "cards", "cards": cards}


async def _prepare(payload: dict[str, Any]) -> dict[str, Any] | None:
    kind = payload.get("kind")
    if kind == "events":
        ids = [i for i in payload.get("ids", []) if isinstance(i, int)]
        if not ids:
            return None
        prepared = await sync_to_async(_cards, thread_sensitive=False)(ids)
        prepared["applied_at"] = payload.get("applied_at")
        return prepared
    if kind == "reactions" and isinstance(payload.get("id"), int):
        return {"kind": "reactions", "id": payload["id"], "counts": payload["counts"]}
    return None


_hub: LiveHub | None = None


def feed_live_hub() -> LiveHub:
    """This process's hub for the feed's live exchange."""
    global _hub
    if _hub is None:
        _hub = LiveHub(FEED_LIVE_EXCHANGE, _prepare)
    return _hub


def _sse(event: str, data: Any) -> bytes:
    import orjson

    return f"event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


def _wanted(card: dict[str, Any], filters: dict[str, Any]) -> bool:
    if filters["event_type"] and card["type"] != filters["event_type"]:
        return False
    department_id = filters["department_id"]
    return department_id is None or card["department_id"] == department_id


def _cards_message(item: dict[str, Any], filters: dict[str, Any]) -> bytes:
    """The ``cards`` message for streams with these filters, encoded once
    per batch and filter (every stream shares the batch's ``item``)."""
    key = (filters["event_type"], filters["department_id"])
    encoded = item.setdefault("encoded", {})
    if key not in encoded:
        cards = [c for c in item["cards"] if _wanted(c, filters)]
        encoded[key] = (
            _sse(
                "cards",
                {
                    "html": "".join(c["html"] for c in cards),
                    "ids": [c["id"] for c in cards],
                    "applied_at": item.get("applied_at"),
                },
            )
            if cards
            else b""
        )
    return encoded[key]


async def feed_live_stream(
    request: HttpRequest, filters: dict[str, Any]
) -> StreamingHttpResponse:
    """The stream of one open page: ``cards`` (HTML of the new cards its
    filters want), ``reactions`` (an event's counts) and ``resync`` (catch up
    from ``/feed/arrived/``: announcements may have been lost)."""
    hub = feed_live_hub()
    listener = hub.listen()

    async def events():
        try:
            # Reconnect after 2 s if the connection drops (the page catches
            # up first).
            yield b"retry: 2000\n\n"
            try:
                await asyncio.wait_for(hub.connected.wait(), timeout=5)
            except TimeoutError:
                yield _sse("resync", {})
            else:
                # Subscribed: whatever applied from now on comes through here;
                # the page asks for what arrived before.
                yield _sse("ready", {})
            while True:
                try:
                    # asyncio.timeout, not wait_for: no task per wait, which
                    # counts when hundreds of streams wake for each batch.
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        item = await listener.get()
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is LIVE_RESYNC:
                    yield _sse("resync", {})
                elif item["kind"] == "cards":
                    message = _cards_message(item, filters)
                    if message:
                        yield message
                elif item["kind"] == "reactions":
                    yield _sse(
                        "reactions", {"id": item["id"], "counts": item["counts"]}
                    )
        finally:
            hub.unlisten(listener)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
