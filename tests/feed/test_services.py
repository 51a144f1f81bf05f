"""Applying events to the feed: idempotent, validating, ordered by time."""

import pytest

from feed.models import FeedEvent
from feed.selectors import feed_events_list
from feed.services import feed_events_apply
from portal.messaging.models import DeadLetter
from tests.helpers import make_envelope

pytestmark = pytest.mark.django_db


def test_the_same_envelope_three_times_makes_one_feed_event():
    envelope = make_envelope()
    results = [feed_events_apply(envelopes=[envelope]) for _ in range(3)]
    assert FeedEvent.objects.count() == 1
    assert [r.created for r in results] == [1, 0, 0]
    assert [r.duplicates for r in results] == [0, 1, 1]


def test_duplicates_inside_one_batch_are_applied_once():
    envelope = make_envelope()
    result = feed_events_apply(envelopes=[envelope, envelope, make_envelope()])
    assert (result.created, result.duplicates) == (2, 1)
    assert FeedEvent.objects.count() == 2


def test_same_id_from_another_source_is_another_event():
    first = make_envelope()
    second = make_envelope(id=first["id"], source="/hr-import")
    feed_events_apply(envelopes=[first, second])
    assert FeedEvent.objects.count() == 2


def test_feed_event_keeps_the_envelope_and_a_sentence():
    envelope = make_envelope()
    feed_events_apply(envelopes=[envelope])
    event = FeedEvent.objects.get()
    assert (event.source, event.event_id, event.type) == (
        "/tests",
        envelope["id"],
        "employee.registered",
    )
    assert (
        event.text == "Anna Petrova joined the company as Backend Engineer in Platform"
    )
    assert event.department == "Platform"
    assert event.data == envelope["data"]


def test_a_bad_event_is_dead_lettered_without_failing_its_batch():
    good = make_envelope()
    bad = make_envelope(type="employee.fired")
    missing_id = make_envelope()
    del missing_id["id"]
    result = feed_events_apply(envelopes=[bad, good, missing_id, "garbage"])
    assert (result.created, result.dead_lettered) == (1, 3)
    assert list(FeedEvent.objects.values_list("event_id", flat=True)) == [good["id"]]
    reasons = sorted(DeadLetter.objects.values_list("reason", flat=True))
    assert reasons == ["invalid envelope", "invalid envelope", "unknown type/version"]
    unknown = DeadLetter.objects.get(reason="unknown type/version")
    assert unknown.event_id == bad["id"]
    assert "employee.fired" in unknown.body


def test_feed_is_ordered_by_when_events_happened_not_arrival():
    late = make_envelope(time="2026-03-01T09:00:00+00:00")
    early = make_envelope(time="2026-01-01T09:00:00+00:00")
    middle = make_envelope(time="2026-02-01T09:00:00+01:00")
    feed_events_apply(envelopes=[early])
    feed_events_apply(envelopes=[late])
    feed_events_apply(envelopes=[middle])
    ids = [e.event_id for e in feed_events_list()]
    assert ids == [late["id"], middle["id"], early["id"]]


def test_a_batch_spanning_several_insert_chunks(settings):
    """Chunks are validated and inserted one after the other in one transaction:
    a bad event, a repeat across chunks and a NUL in one chunk fail none of the
    others."""
    settings.FEED_INSERT_CHUNK = 3
    good = [make_envelope() for _ in range(7)]
    nul = make_envelope()
    nul["data"] = {**nul["data"], "full_name": "Anna\x00Petrova"}
    batch = [*good[:4], make_envelope(type="employee.fired"), nul, good[1], *good[4:]]
    result = feed_events_apply(envelopes=batch)
    assert (result.created, result.duplicates, result.dead_lettered) == (7, 1, 2)
    stored = set(FeedEvent.objects.values_list("event_id", flat=True))
    assert stored == {e["id"] for e in good}
    refused = DeadLetter.objects.get(event_id=nul["id"])
    assert refused.reason == "invalid data"
    assert "data.full_name" in refused.error
    assert "U+0000" in refused.error


def test_an_id_beyond_64_bits_is_dead_lettered_and_the_rest_applied():
    envelope = make_envelope()
    envelope["data"] = {**envelope["data"], "employee_id": 2**70}
    result = feed_events_apply(envelopes=[envelope, make_envelope()])
    assert (result.created, result.dead_lettered) == (1, 1)
    refused = DeadLetter.objects.get()
    assert (refused.event_id, refused.reason) == (envelope["id"], "invalid data")
    assert "employee_id" in refused.error


def test_a_backslash_u0000_written_out_is_text_not_a_nul():
    envelope = make_envelope()
    envelope["data"] = {**envelope["data"], "position": "C \\u0000 programmer"}
    result = feed_events_apply(envelopes=[envelope])
    assert (result.created, result.dead_lettered) == (1, 0)
    assert FeedEvent.objects.get().data["position"] == "C \\u0000 programmer"


def test_a_nul_the_feed_does_not_store_is_no_reason_to_refuse():
    """Unknown data keys are ignored by the contract, so a NUL in one is never
    stored and does not stop the event."""
    envelope = make_envelope()
    envelope["data"] = {**envelope["data"], "nickname": "A\x00"}
    result = feed_events_apply(envelopes=[envelope])
    assert (result.created, result.dead_lettered) == (1, 0)
    assert "nickname" not in FeedEvent.objects.get().data


@pytest.mark.real_stack
@pytest.mark.django_db(transaction=True)
def test_a_database_error_inside_the_pipeline_is_djangos_and_stores_nothing(
    settings,
):
    """The task retries on Django's OperationalError: an error raised while the
    chunk inserts are pipelined must arrive as one, with the whole batch (and
    its dead letters) rolled back."""
    from django.db import OperationalError, connection, connections

    settings.FEED_INSERT_CHUNK = 2
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("LOCK TABLE feed_feedevent IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 300")
        batch = [make_envelope() for _ in range(5)] + [make_envelope(type="x.y")]
        with pytest.raises(OperationalError):
            feed_events_apply(envelopes=batch)
    finally:
        other.rollback()
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    assert FeedEvent.objects.count() == 0
    assert DeadLetter.objects.count() == 0
    result = feed_events_apply(envelopes=batch)
    assert (result.created, result.dead_lettered) == (5, 1)


def test_the_first_insert_chunk_is_a_quarter_of_the_others(settings):
    """The database starts on the first chunk while the rest are validated."""
    from feed.services import _chunks

    settings.FEED_INSERT_CHUNK = 8
    assert [len(chunk) for chunk in _chunks(iter(range(21)))] == [2, 8, 8, 3]
    settings.FEED_INSERT_CHUNK = 1
    assert [len(chunk) for chunk in _chunks(iter(range(3)))] == [1, 1, 1]
    assert list(_chunks(iter([]))) == []


@pytest.mark.real_stack
def test_a_redelivered_batch_with_new_events_in_later_chunks(settings, monkeypatch):
    """Copied in as new first; the event already on the feed (after new ones
    were sent) rolls that back, and the batch is applied again skipping it,
    in chunks: the new events land once, the invalid one is dead-lettered
    once."""
    from feed import services
    from portal.messaging.journey import (
        BatchJourney,
        batch_journey_begin,
        batch_journey_end,
    )

    statements = []

    def copy(*args, **kwargs):
        statements.append("new")
        return _copy(*args, **kwargs)

    def insert_sql(repair=False):
        statements.append("skip")
        return _insert_sql(repair)

    _copy, _insert_sql = services._feed_events_copy, services._insert_sql
    monkeypatch.setattr(services, "_feed_events_copy", copy)
    monkeypatch.setattr(services, "_insert_sql", insert_sql)
    settings.FEED_INSERT_CHUNK = 4  # chunks of 1, 4, 4
    seen = make_envelope()
    feed_events_apply(envelopes=[seen])
    assert statements == ["new"]
    statements.clear()
    new = [make_envelope() for _ in range(6)]
    bad = make_envelope(type="employee.fired")
    batch = [new[0], bad, new[1], seen, *new[2:]]
    journey = BatchJourney("feed")
    token = batch_journey_begin(journey)
    try:
        result = feed_events_apply(envelopes=batch)
    finally:
        batch_journey_end(token)
    assert (result.created, result.duplicates, result.dead_lettered) == (6, 1, 1)
    assert len(result.created_ids) == 6
    stored = set(FeedEvent.objects.values_list("event_id", flat=True))
    assert stored == {e["id"] for e in [seen, *new]}
    assert list(DeadLetter.objects.values_list("event_id", flat=True)) == [bad["id"]]
    assert journey.duplicates == {(seen["source"], seen["id"])}
    assert statements == ["new", "skip"]


@pytest.mark.real_stack
@pytest.mark.django_db(transaction=True)
def test_an_event_another_worker_committed_meanwhile_is_skipped():
    """Two workers given the same events (a redelivery while the first was
    still inserting): the second waits on the first's rows, finds them
    committed and skips them instead of failing."""
    import threading

    from django.db import connection, transaction

    events = [make_envelope() for _ in range(3)]
    inserted = threading.Event()

    def first_worker():
        try:
            with transaction.atomic():
                feed_events_apply(envelopes=events[:2])
                inserted.set()
                # Holds its uncommitted rows while the second one inserts.
                threading.Event().wait(0.5)
        finally:
            connection.close()  # this thread's own

    thread = threading.Thread(target=first_worker)
    try:
        thread.start()
        assert inserted.wait(10)
        result = feed_events_apply(envelopes=events)
    finally:
        thread.join()
    assert (result.created, result.duplicates) == (1, 2)
    assert FeedEvent.objects.count() == 3


@pytest.mark.real_stack
def test_an_integrity_error_of_another_kind_is_not_taken_for_a_duplicate(settings):
    """Only the feed's own unique (source, id) means "there already": any
    other refusal is isolated and dead-lettered as before."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE feed_feedevent ADD CONSTRAINT no_plain_bob "
            "CHECK (text NOT LIKE 'Bob Refused%%')"
        )
    refused = make_envelope()
    refused["data"] = {**refused["data"], "full_name": "Bob Refused"}
    result = feed_events_apply(envelopes=[make_envelope(), refused, make_envelope()])
    assert (result.created, result.dead_lettered) == (2, 1)
    letter = DeadLetter.objects.get()
    assert (letter.event_id, letter.reason) == (refused["id"], "refused by database")


def test_text_that_copy_escapes_is_stored_as_it_came():
    """A batch of new events is one COPY in text format: tabs, line breaks,
    backslashes and letters beyond ASCII arrive unchanged, in the card's
    data and text alike."""
    envelope = make_envelope()
    name = "Ann\tO'Neil\\n\nБорис 😀 \\N"
    envelope["data"] = {**envelope["data"], "full_name": name}
    result = feed_events_apply(envelopes=[envelope, make_envelope()])
    assert (result.created, result.dead_lettered) == (2, 0)
    card = FeedEvent.objects.get(event_id=envelope["id"])
    assert card.data["full_name"] == name
    assert name in card.text


def test_a_lone_surrogate_is_dead_lettered_and_the_rest_applied():
    envelope = make_envelope()
    envelope["data"] = {**envelope["data"], "full_name": "Anna \ud800"}
    good = make_envelope()
    result = feed_events_apply(envelopes=[good, envelope, make_envelope()])
    assert (result.created, result.dead_lettered) == (2, 1)
    refused = DeadLetter.objects.get()
    assert (refused.event_id, refused.reason) == (envelope["id"], "invalid data")
    assert FeedEvent.objects.filter(event_id=good["id"]).exists()


@pytest.mark.real_stack
def test_the_ids_announced_are_the_new_cards_ids():
    """COPY returns no ids: the ones the batch took from the table's
    sequence are the cards' own, in the batch's order, and a later
    insert of another kind takes the next one."""
    batch = [make_envelope() for _ in range(4)]
    bad = make_envelope(type="employee.fired")
    result = feed_events_apply(envelopes=[batch[0], bad, *batch[1:]])
    cards = dict(FeedEvent.objects.values_list("event_id", "pk"))
    assert list(result.created_ids) == [cards[e["id"]] for e in batch]
    assert list(result.created_ids) == sorted(result.created_ids)
    again = feed_events_apply(envelopes=[batch[0], make_envelope()], repair=True)
    assert again.created_ids
    assert min(again.created_ids) > max(result.created_ids)
