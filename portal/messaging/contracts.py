"""The event contract (v1): CloudEvents 1.0 envelopes and the data of each type.

One registry serves both ends: the outbox refuses to store an event that does
not validate, and the feed validates every event it receives again.
"""

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.utils import timezone
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

SPECVERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE = "application/json"
MAX_EVENT_BYTES = 64 * 1024

REASON_INVALID_ENVELOPE = "invalid envelope"
REASON_UNKNOWN_TYPE = "unknown type/version"
REASON_INVALID_DATA = "invalid data"

Name = StrictStr
NonEmpty = Field(min_length=1, max_length=300)


class _Data(BaseModel):
    # Strict: "42" is not an employee id. Unknown extra keys are tolerated so a
    # producer may add fields without breaking older consumers.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class EmployeeRegisteredV1(_Data):
    employee_id: StrictInt
    full_name: StrictStr = NonEmpty
    position: StrictStr = NonEmpty
    department: StrictStr = NonEmpty
    team: StrictStr | None = None


class EmployeePositionChangedV1(_Data):
    employee_id: StrictInt
    full_name: StrictStr = NonEmpty
    old_position: StrictStr = NonEmpty
    new_position: StrictStr = NonEmpty


class TeamMembershipV1(_Data):
    team_id: StrictInt
    team: StrictStr = NonEmpty
    employee_id: StrictInt
    full_name: StrictStr = NonEmpty


class DepartmentRenamedV1(_Data):
    department_id: StrictInt
    old_name: StrictStr = NonEmpty
    new_name: StrictStr = NonEmpty


class ThanksSentV1(_Data):
    from_employee_id: StrictInt
    from_name: StrictStr = NonEmpty
    to_employee_id: StrictInt
    to_name: StrictStr = NonEmpty
    message: StrictStr = Field(min_length=1, max_length=500)


EVENT_TYPES: dict[tuple[str, int], type[_Data]] = {
    ("employee.registered", 1): EmployeeRegisteredV1,
    ("employee.position_changed", 1): EmployeePositionChangedV1,
    ("team.member_joined", 1): TeamMembershipV1,
    ("team.member_left", 1): TeamMembershipV1,
    ("department.renamed", 1): DepartmentRenamedV1,
    ("thanks.sent", 1): ThanksSentV1,
}


class Envelope(BaseModel):
    """CloudEvents 1.0 attributes, structured mode. Extensions are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: StrictStr = Field(min_length=1, max_length=200)
    source: StrictStr = Field(min_length=1, max_length=200)
    type: StrictStr = Field(min_length=1, max_length=100)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = DATA_CONTENT_TYPE
    dataschemaversion: StrictInt | StrictStr | None = None
    dataschema: StrictStr | None = None
    traceparent: StrictStr | None = Field(
        default=None, pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
    )
    data: dict[str, Any]

    @property
    def version(self) -> int | None:
        """The schema version of ``data``: 1 when neither attribute says."""
        if self.dataschemaversion is not None:
            value = str(self.dataschemaversion)
            return int(value) if value.isdigit() else None
        if self.dataschema:
            match = re.search(r"v?(\d+)/?$", self.dataschema)
            return int(match.group(1)) if match else None
        return 1


@dataclass(frozen=True)
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
    data: _Data

    def as_json(self) -> dict[str, Any]:
        """The envelope as JSON-ready primitives, with the validated data."""
        body = self.envelope.model_dump(mode="json", exclude_none=True)
        body["data"] = self.data.model_dump(mode="json")
        return body


def _errors(exc: ValidationError) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(
            include_url=False, include_context=False, include_input=False
        )
    )


def _find_nul(value: Any, path: list[Any]) -> list[Any] | None:
    """The path to the first string (or key) holding U+0000, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return [*path, key]
            found = _find_nul(item, [*path, key])
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_nul(item, [*path, index])
            if found is not None:
                return found
    return None


def nul_error(raw: Any) -> ContractError | None:
    """Why ``raw`` cannot be stored if a string in it holds U+0000, else None.

    PostgreSQL cannot store U+0000 in text or jsonb: an event holding it is
    refused up front rather than failing a whole batch's transaction later.
    """
    nul = _find_nul(raw, [])
    if nul is None:
        return None
    return ContractError(
        REASON_INVALID_DATA if nul[:1] == ["data"] else REASON_INVALID_ENVELOPE,
        ({"loc": nul, "msg": "the NUL character (U+0000) is not allowed"},),
    )


def validate_event(raw: Any, *, check_nul: bool = True) -> Event:
    """Validate a decoded CloudEvent; raise ``ContractError`` if it never can be.

    ``check_nul=False`` leaves out the walk over every string looking for
    U+0000 (``nul_error``), for a caller that checks what it stores in one
    pass instead (the feed checks its serialized rows).
    """
    if not isinstance(raw, Mapping):
        raise ContractError(
            REASON_INVALID_ENVELOPE,
            ({"loc": [], "msg": "event must be a JSON object"},),
        )
    if check_nul and (error := nul_error(raw)) is not None:
        raise error
    typed = _TYPED_ENVELOPES.get((raw.get("type"), _raw_version(raw)))
    if typed is not None:
        # The usual case in one validation; any failure is explained below.
        try:
            envelope = typed.model_validate(raw)
        except ValidationError:
            pass
        else:
            return Event(envelope=envelope, data=envelope.data)
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise ContractError(REASON_INVALID_ENVELOPE, _errors(exc)) from None
    model = EVENT_TYPES.get((envelope.type, envelope.version))
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
_TYPED_ENVELOPES: dict[tuple[str, int], type[Envelope]] = {
    (type_, version): create_model(
        f"{model.__name__}Envelope", __base__=Envelope, data=(model, ...)
    )
    for (type_, version), model in EVENT_TYPES.items()
}


def _raw_version(raw: Mapping[str, Any]) -> int | None:
    """``Envelope.version`` read off the raw attributes (None when unsure)."""
    version = raw.get("dataschemaversion")
    if version is not None:
        if type(version) is int:
            return version
        return int(version) if isinstance(version, str) and version.isdigit() else None
    schema = raw.get("dataschema")
    if schema is None:
        return 1
    match = re.search(r"v?(\d+)/?$", schema) if isinstance(schema, str) else None
    return int(match.group(1)) if match else None


def build_event(
    *,
    type: str,
    data: Mapping[str, Any],
    source: str,
    id: str | None = None,
    time: datetime | None = None,
    version: int = 1,
    traceparent: str | None = None,
) -> Event:
    """Make a new, validated event; raise ``ContractError`` if it is invalid."""
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
    return validate_event(raw)
