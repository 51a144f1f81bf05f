"""The event contract: CloudEvents 1.0 envelopes, and a registry of the data
of each event type and version.

The app that owns an event type registers its contract (``contract_register``
in its ``ready()``: the registrar owns ``employee.*``, ``team.*`` and
``department.*``, the feed ``thanks.sent``). One registry serves both ends:
the event log refuses to store an event that does not validate, and every
subscriber validates what it receives again. ``docs/events.md`` and
``/api/asyncapi.json`` are generated from it.

A type may have several versions. The owner may register an **upcaster** per
(type, version) (``contract_upcaster_register``): a function that turns that
version's data into the next version's, or answers ``None`` when it cannot
(say, a department name it does not know). Events are upcast on delivery to
a subscriber (``events_upcast``, called by every subscriber task on its
batch), as far as the upcasters reach, so every subscriber sees the newest
version it can; the event log and ``portal.broadcast`` keep every event as
its producer sent it.

The contract also refuses what the database could not store (time offsets
beyond any real zone, times outside a window, integers beyond 64 bits, NUL
and unpaired surrogates, deep nesting, unbounded extension attributes), so
such an event is refused at the door with a precise reason instead of failing
a consumer's whole batch later.
"""

import builtins
import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, cast
from urllib.parse import unquote

import orjson
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import timezone
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
    model_validator,
)

logger = logging.getLogger(__name__)

SPECVERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE: Final = "application/json"

REASON_INVALID_ENVELOPE = "invalid envelope"
REASON_UNKNOWN_TYPE = "unknown type/version"
REASON_INVALID_DATA = "invalid data"

Name = StrictStr
NonEmpty = Field(min_length=1, max_length=300)

# Ids fit a signed 64-bit column (bigint).
MAX_ID = 2**63 - 1
Id = Annotated[StrictInt, Field(ge=-MAX_ID - 1, le=MAX_ID)]


class EventData(BaseModel):
    """Base of every event type's ``data`` model.

    Strict: "42" is not an employee id. Unknown extra keys are tolerated so a
    producer may add fields without breaking older consumers.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


@dataclass(frozen=True)
class Contract:
    """One (type, version) of the registry: its data model, the app that
    owns the type, and what the event means (for the generated docs)."""

    type: str
    version: int
    # builtins.type: ``type`` in this class body is the field above.
    data: builtins.type[EventData]
    owner: str
    description: str = ""


# (type, version) -> data model; filled by contract_register() from the apps.
EVENT_TYPES: dict[tuple[str, int], type[EventData]] = {}
CONTRACTS: dict[tuple[str, int], Contract] = {}
# (type, version) -> function turning that version's data into version + 1's
# (None: it cannot); filled by contract_upcaster_register() from the apps.
Upcaster = Callable[[dict[str, Any]], dict[str, Any] | None]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


# RFC 3339 date-time (section 5.6), with the offset it requires.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.(?P<fraction>\d{1,9}))?"
    r"(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
# Real time zones lie between -12:00 and +14:00; PostgreSQL refuses ±16:00.
MAX_TIME_OFFSET = timedelta(hours=14)
_MIN_TIME_OFFSET = -MAX_TIME_OFFSET


def _event_time(value: Any) -> datetime:
    """An RFC 3339 string with a real zone offset, inside the accepted window
    (``EVENT_TIME_EARLIEST`` … now + ``EVENT_TIME_MAX_FUTURE_SECONDS``).

    Every event of every batch comes through here: each step is the cheap
    form of its check (this was half of an event's validation)."""
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            "must be an RFC 3339 timestamp string with an offset, "
            "e.g. 2024-06-01T12:00:00Z"
        )
    text = value.upper()
    start, end = match.span("fraction")
    if end - start > 6:
        # Python keeps microseconds: cut finer fractions instead of failing.
        text = text[: start + 6] + text[end:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "must be an RFC 3339 timestamp string with an offset, "
            "e.g. 2024-06-01T12:00:00Z (no such date or time)"
        ) from None
    offset = moment.utcoffset()
    if offset is not None and not _MIN_TIME_OFFSET <= offset <= MAX_TIME_OFFSET:
        raise ValueError("time zone offset beyond ±14:00, which no time zone uses")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range of dates") from None
    earliest, earliest_seconds, ahead = _time_window()
    # Instants as floats: the clock read as datetime.now(UTC) is, without
    # building a datetime and a timedelta for every event validated.
    seconds = utc.timestamp()
    if seconds < earliest_seconds:
        raise ValueError(f"is before {earliest.isoformat().replace('+00:00', 'Z')}")
    if seconds > time.time() + ahead:
        raise ValueError(f"is more than {ahead:g} s in the future")
    return moment


@functools.cache
def _time_window() -> tuple[datetime, float, float]:
    """``EVENT_TIME_EARLIEST`` (and as a timestamp) and
    ``EVENT_TIME_MAX_FUTURE_SECONDS``, read once: two settings look-ups were
    a third of an event's time check. Forgotten when a test changes them."""
    earliest = settings.EVENT_TIME_EARLIEST
    return earliest, earliest.timestamp(), settings.EVENT_TIME_MAX_FUTURE_SECONDS


@receiver(setting_changed)
def _time_window_forget(*, setting: str, **kwargs: Any) -> None:
    if setting in {"EVENT_TIME_EARLIEST", "EVENT_TIME_MAX_FUTURE_SECONDS"}:
        _time_window.cache_clear()


# Checked and parsed before pydantic's own datetime validation, which then
# takes the datetime as it is.
EventTime = Annotated[datetime, BeforeValidator(_event_time)]

# CloudEvents extension attributes: lower-case letters and digits, at most 20
# characters; values are strings, 32-bit integers or booleans.
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}", re.ASCII)
MAX_EXTENSION_LENGTH = 2048
_INT32 = range(-(2**31), 2**31)


def _extension_errors(extra: Mapping[str, Any]) -> list[tuple[str, str]]:
    errors = []
    for name, value in extra.items():
        if not _EXTENSION_NAME.fullmatch(name):
            errors.append(
                (
                    name,
                    "extension attribute names are 1-20 lower-case letters or digits",
                )
            )
        elif value is None or isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if value not in _INT32:
                errors.append((name, "integer attributes must fit 32 bits"))
        elif isinstance(value, str):
            if len(value) > MAX_EXTENSION_LENGTH:
                errors.append((name, f"at most {MAX_EXTENSION_LENGTH} characters"))
        else:
            errors.append(
                (name, "extension attributes are strings, integers or booleans")
            )
    return errors


class Envelope(BaseModel):
    """CloudEvents 1.0 attributes, structured mode. Extensions are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: StrictStr = Field(min_length=1, max_length=200)
    source: StrictStr = Field(
        min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f\x7f]+$"
    )
    type: StrictStr = Field(min_length=1, max_length=100)
    time: EventTime
    datacontenttype: Literal["application/json"] = DATA_CONTENT_TYPE
    dataschemaversion: StrictInt | StrictStr | None = None
    dataschema: StrictStr | None = None
    traceparent: StrictStr | None = Field(
        default=None, pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
    )
    data: dict[str, Any]

    @model_validator(mode="after")
    def _extensions_and_source(self) -> "Envelope":
        if _has_dot_segment(self.source):
            raise _AttributeError("source", "must not hold '.' or '..' path segments")
        for name, message in _extension_errors(self.__pydantic_extra__ or {}):
            raise _AttributeError(name, message)
        return self

    @property
    def version(self) -> int | None:
        """The schema version of ``data``: 1 when neither attribute says."""
        return _version_of(self.dataschemaversion, self.dataschema)


class _AttributeError(ValueError):
    """A rule of one attribute broken, found after field validation."""

    def __init__(self, attribute: str, message: str) -> None:
        super().__init__(message)
        self.attribute = attribute
        self.message = message


def _has_dot_segment(source: str) -> bool:
    """Does ``source`` hold a ``.`` or ``..`` path segment (also %-encoded)?

    Such a source names the same service as another spelling of it, so a
    source-prefix check could be walked around with it.
    """
    if "." not in source and "%2" not in source:
        return False  # no dot, plain or %-encoded (%2E)
    for text in {source, unquote(source)}:
        path = text.split("?", 1)[0].split("#", 1)[0]
        if any(part in {".", ".."} for part in re.split(r"[/\\]", path)):
            return True
    return False


_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def _version_of(dataschemaversion: Any, dataschema: Any) -> int | None:
    """The schema version ``dataschemaversion`` or ``dataschema`` names (1 when
    neither is given; None when it is not plain ASCII digits)."""
    if dataschemaversion is not None:
        if type(dataschemaversion) is int:
            return dataschemaversion
        if isinstance(dataschemaversion, str) and _DIGITS.fullmatch(dataschemaversion):
            return int(dataschemaversion)
        return None
    if dataschema is None:
        return 1
    if not isinstance(dataschema, str):
        return None
    match = re.search(r"v?([0-9]+)/?$", dataschema)
    return int(match.group(1)) if match else None


@dataclass(eq=False)
class ContractError(Exception):
    """An event that can never be processed, with why."""

    reason: str
    errors: tuple[dict[str, Any], ...] = ()

    def __str__(self) -> str:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '(event)'}: {e['msg']}"
            for e in self.errors
        )
        return f"{self.reason}: {details}" if details else self.reason


@dataclass(frozen=True)
class Event:
    """A validated event: its envelope and its typed data."""

    envelope: Envelope
    data: EventData

    def as_json(self) -> dict[str, Any]:
        """The envelope as JSON-ready primitives, with the validated data."""
        body = self.envelope.model_dump(mode="json", exclude_none=True)
        body["data"] = self.data.model_dump(mode="json")
        return body


def _errors(exc: ValidationError) -> tuple[dict[str, Any], ...]:
    errors: list[dict[str, Any]] = []
    for e in exc.errors(include_url=False, include_input=False):
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, _AttributeError):
            errors.append(
                {"loc": [cause.attribute], "msg": cause.message, "type": e["type"]}
            )
        else:
            errors.append({"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]})
    return tuple(errors)


# Deeper than this, a document is refused (an event is two or three deep).
MAX_DEPTH = 32
# U+0000 and unpaired surrogates: valid in a JSON string, not in PostgreSQL.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable_text(text: str) -> str | None:
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "the NUL character (U+0000) is not allowed"
    return "unpaired surrogates (U+D800-U+DFFF) are not allowed"


def _find_unstorable(value: Any, path: list[Any]) -> tuple[list[Any], str] | None:
    """The path to, and the reason for, the first part of ``value`` the
    database could not store: a string (or key) holding U+0000 or an unpaired
    surrogate, or nesting deeper than ``MAX_DEPTH``."""
    if isinstance(value, str):
        problem = _unstorable_text(value)
        return (path, problem) if problem else None
    if not isinstance(value, Mapping | list | tuple):
        return None
    if len(path) >= MAX_DEPTH:
        return path, f"nested more than {MAX_DEPTH} levels deep"
    items = value.items() if isinstance(value, Mapping) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and (problem := _unstorable_text(key)):
            return [*path, key], problem
        found = _find_unstorable(item, [*path, key])
        if found is not None:
            return found
    return None


def _plainly_storable(raw: Any) -> bool:
    """The usual case, told in one serialization instead of a walk: orjson
    refuses unpaired surrogates (and anything unusual) and writes U+0000 as
    ``\\u0000``, and a document with fewer brackets than ``MAX_DEPTH`` cannot
    nest deeper. False means "walk it" (``_find_unstorable`` says what and
    where), not "unstorable"."""
    try:
        blob = orjson.dumps(raw)
    except (orjson.JSONEncodeError, TypeError):
        return False
    return b"\\u0000" not in blob and blob.count(b"{") + blob.count(b"[") < MAX_DEPTH


def unstorable_error(raw: Any) -> ContractError | None:
    """Why ``raw`` cannot be stored, else None: U+0000 or an unpaired
    surrogate in a string, or nesting deeper than ``MAX_DEPTH``.

    PostgreSQL cannot store either character in text or jsonb, and deep
    nesting exhausts recursion somewhere on the way: such an event is refused
    up front rather than failing a whole batch's transaction later.
    """
    if _plainly_storable(raw):
        return None
    found = _find_unstorable(raw, [])
    if found is None:
        return None
    path, problem = found
    return ContractError(
        REASON_INVALID_DATA if path[:1] == ["data"] else REASON_INVALID_ENVELOPE,
        ({"loc": path, "msg": problem},),
    )


def events_upcast(raws: list[Any]) -> list[Any]:
    """Decoded CloudEvents, each of an older version that has an upcaster
    turned into the newest version the upcasters reach (as JSON-ready
    dicts); every other item (the newest version already, or invalid, left
    for the subscriber to dead-letter) is passed on as it is.

    This is where a subscriber's events are upcast (``subscriber_task`` calls
    it on every batch): each subscriber sees the version its code knows best,
    while the event log and ``portal.broadcast`` keep what the producer sent.
    """
    upcast = []
    for raw in raws:
        if isinstance(raw, Mapping) and (raw.get("type"), _raw_version(raw)) in (
            UPCASTERS
        ):
            try:
                event = validate_event(raw)
            except ContractError:
                pass
            else:
                newer = event_upcast(event)
                if newer is not event:
                    raw = newer.as_json()
        upcast.append(raw)
    return upcast


def event_upcast(event: Event) -> Event:
    """``event`` as the newest version of its type the registered upcasters
    reach: each step turns version N's data into N + 1's and is validated
    against N + 1's model. A step that answers ``None`` (it cannot) or gives
    data that does not validate stops there: the event stays at the last
    version reached, which is valid as it is."""
    envelope, data = event.envelope, event.data
    version = envelope.version
    while version is not None and (envelope.type, version) in UPCASTERS:
        newer = EVENT_TYPES.get((envelope.type, version + 1))
        if newer is None:
            break
        try:
            upcast = UPCASTERS[(envelope.type, version)](data.model_dump(mode="json"))
        except LookupError:
            upcast = None
        if upcast is None:
            break
        try:
            data = newer.model_validate(upcast)
        except ValidationError:
            logger.warning(
                "Upcaster of %s v%d gave invalid data; kept v%d",
                envelope.type,
                version,
                version,
            )
            break
        version += 1
        # A plain envelope (not the typed one of the old version), validated
        # already: the attributes are the same, only the data changed.
        attributes = envelope.model_dump(exclude={"data"})
        attributes.update(dataschemaversion=version, dataschema=None, data=upcast)
        envelope = Envelope.model_construct(**attributes)
    if envelope is event.envelope:
        return event
    return Event(envelope=envelope, data=data)


def validate_event(raw: Any, *, check_storable: bool = True) -> Event:
    """Validate a decoded CloudEvent; raise ``ContractError`` if it never can be.

    ``check_storable=False`` leaves out the walk over every string and level
    (``unstorable_error``), for a caller that checks what it stores in one
    pass instead (the feed checks its serialized rows). The event keeps its
    version: ``event_upcast`` turns it into a newer one.
    """
    if not isinstance(raw, Mapping):
        raise ContractError(
            REASON_INVALID_ENVELOPE,
            ({"loc": [], "msg": "event must be a JSON object"},),
        )
    if check_storable and (error := unstorable_error(raw)) is not None:
        raise error
    event_type = raw.get("type")
    typed = (
        _TYPED_ENVELOPES.get((event_type, _raw_version(raw)))
        if isinstance(event_type, str)
        else None  # not a type name at all: the envelope check below says so
    )
    if typed is not None:
        # The usual case in one validation; any failure is explained below.
        try:
            envelope = typed.model_validate(raw)
        except ValidationError:
            pass
        else:
            # The typed envelope's ``data`` is the contract's model.
            return Event(envelope=envelope, data=cast(EventData, envelope.data))
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(REASON_INVALID_ENVELOPE, _errors(exc)) from None
    version = envelope.version
    model = EVENT_TYPES.get((envelope.type, version)) if version is not None else None
    if model is None:
        raise ContractError(
            REASON_UNKNOWN_TYPE,
            (
                {
                    "loc": ["type"],
                    "msg": f"no schema for {envelope.type!r} "
                    f"version {envelope.version!r}",
                },
            ),
        )
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise ContractError(
            REASON_INVALID_DATA,
            tuple({**e, "loc": ["data", *e["loc"]]} for e in _errors(exc)),
        ) from None
    return Event(envelope=envelope, data=data)


# Per (type, version): the envelope with its data's model, validated in one go.
# Keyed (str, int); looked up with a raw event's attributes, of any type.
_TYPED_ENVELOPES: dict[tuple[Any, int | None], type[Envelope]] = {}


def contract_register(
    type: str,
    version: int,
    data: type[EventData],
    *,
    owner: str,
    description: str = "",
) -> Contract:
    """Add an event type's contract (from the owning app's ``ready()``).

    Registering the same contract again is a no-op; another model for a
    (type, version) already registered is an error: a published contract
    changes by a new version, never in place.
    """
    contract = Contract(type, version, data, owner, description)
    known = CONTRACTS.get((type, version))
    if known is not None:
        if known.data is not data:
            raise ValueError(f"{type} v{version} is registered already")
        return known
    CONTRACTS[(type, version)] = contract
    EVENT_TYPES[(type, version)] = data
    _TYPED_ENVELOPES[(type, version)] = create_model(
        # A name per type: two types may share a data model.
        "".join(part.title() for part in re.split(r"[._]", type))
        + f"V{version}Envelope",
        __base__=Envelope,
        data=(data, ...),
    )
    return contract


# What upcasters looked up while one batch is validated (see upcast_batch).
_upcast_memo: ContextVar[dict[Any, Any] | None] = ContextVar(
    "upcast_memo", default=None
)


@contextmanager
def upcast_batch() -> Iterator[None]:
    """Let upcasters remember their look-ups while a batch is validated.

    A subscriber's task runs inside one (``subscriber_task``), so a thousand
    v1 events naming the same department cost one query, not a thousand;
    nothing is remembered past the batch, so a renamed or recreated
    department is never answered from an old look-up.
    """
    token = _upcast_memo.set({})
    try:
        yield
    finally:
        _upcast_memo.reset(token)


def upcast_memo() -> dict[Any, Any] | None:
    """The current batch's memo for upcasters' look-ups (None outside one)."""
    return _upcast_memo.get()


def contract_upcaster_register(
    type: str, version: int, upcaster: Upcaster, *, owner: str
) -> None:
    """Register how ``type`` version ``version`` becomes version + 1 (from the
    owning app's ``ready()``, after both contracts).

    ``upcaster(data)`` gets version ``version``'s data as JSON-ready values and
    returns version + 1's, or ``None`` when it cannot (it may also raise
    ``LookupError``). It may read the owner's database (through the owner's
    own selectors), so it runs wherever a subscriber validates; it must not
    write.
    """
    for needed in (version, version + 1):
        contract = CONTRACTS.get((type, needed))
        if contract is None:
            raise ValueError(f"register {type} v{needed} before its upcaster")
        if contract.owner != owner:
            raise ValueError(f"{type} belongs to {contract.owner}, not {owner}")
    UPCASTERS[(type, version)] = upcaster


def _raw_version(raw: Mapping[str, Any]) -> int | None:
    """``Envelope.version`` read off the raw attributes (None when unsure)."""
    return _version_of(raw.get("dataschemaversion"), raw.get("dataschema"))


def build_event(
    *,
    type: str,
    data: Mapping[str, Any],
    source: str,
    id: str | None = None,
    time: datetime | None = None,
    version: int = 1,
    traceparent: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Event:
    """Make a new, validated event; raise ``ContractError`` if it is invalid.

    ``extensions`` are CloudEvents extension attributes (``correlationid``…).
    """
    raw: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": id or str(uuid.uuid4()),
        "source": source,
        "type": type,
        "time": (time or timezone.now()).isoformat(),
        "datacontenttype": DATA_CONTENT_TYPE,
        "dataschemaversion": version,
        "data": dict(data),
    }
    if traceparent:
        raw["traceparent"] = traceparent
    for name, value in (extensions or {}).items():
        raw.setdefault(name, value)
    return validate_event(raw)
