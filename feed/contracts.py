"""The events the feed publishes: thanks between colleagues.

Registered with the portal's contract registry in ``FeedConfig.ready``.
Version 2 carries both colleagues' department ids; a v1 event is upcast by
looking them up in the registrar (``registrar.selectors``).
"""

from typing import Any

from pydantic import Field, StrictStr

from portal.messaging.contracts import (
    EventData,
    Id,
    NonEmpty,
    contract_register,
    contract_upcaster_register,
)

THANKS_SENT = "thanks.sent"
THANKS_MAX_LENGTH = 500


class ThanksSentV1(EventData):
    from_employee_id: Id
    from_name: StrictStr = NonEmpty
    to_employee_id: Id
    to_name: StrictStr = NonEmpty
    message: StrictStr = Field(min_length=1, max_length=THANKS_MAX_LENGTH)


class ThanksSentV2(EventData):
    from_employee_id: Id
    from_name: StrictStr = NonEmpty
    from_department_id: Id | None = None
    to_employee_id: Id
    to_name: StrictStr = NonEmpty
    to_department_id: Id | None = None
    message: StrictStr = Field(min_length=1, max_length=THANKS_MAX_LENGTH)


def register_contracts() -> None:
    contract_register(
        THANKS_SENT,
        1,
        ThanksSentV1,
        owner="feed",
        description="A colleague thanked another.",
    )
    contract_register(
        THANKS_SENT,
        2,
        ThanksSentV2,
        owner="feed",
        description="A colleague thanked another (with both departments' ids).",
    )
    contract_upcaster_register(THANKS_SENT, 1, _thanks_v2, owner="feed")


def _thanks_v2(data: dict[str, Any]) -> dict[str, Any] | None:
    """Both colleagues' departments, as the registrar knows them now."""
    from registrar.selectors import department_id_of_employee

    to_department = department_id_of_employee(data["to_employee_id"])
    if to_department is None:
        return None
    return {
        **data,
        "from_department_id": department_id_of_employee(data["from_employee_id"]),
        "to_department_id": to_department,
    }
