"""The events the feed publishes: thanks between colleagues.

Registered with the portal's contract registry in ``FeedConfig.ready``.
"""

from pydantic import Field, StrictStr

from portal.messaging.contracts import EventData, Id, NonEmpty, contract_register

THANKS_SENT = "thanks.sent"
THANKS_MAX_LENGTH = 500


class ThanksSentV1(EventData):
    from_employee_id: Id
    from_name: StrictStr = NonEmpty
    to_employee_id: Id
    to_name: StrictStr = NonEmpty
    message: StrictStr = Field(min_length=1, max_length=THANKS_MAX_LENGTH)


def register_contracts() -> None:
    contract_register(
        THANKS_SENT,
        1,
        ThanksSentV1,
        owner="feed",
        description="A colleague thanked another.",
    )
