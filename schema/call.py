"""Call type and the logCall mutation."""

from datetime import datetime

import strawberry

from models.call import CallDocument, CallStatus, CallType
from models.lead import LeadDocument
from schema.common import describe_values
from schema.lead import Lead

strawberry.enum(CallType, description="Who called whom.")
strawberry.enum(CallStatus, description="How the call went.")
describe_values(
    CallType,
    OUTBOUND='We called the lead (the default). Timeline label "Outbound Call".',
    INBOUND='The lead called us. Timeline label "Inbound Call".',
)
describe_values(
    CallStatus,
    COMPLETED="The call took place (the default).",
    NO_ANSWER="Nobody answered.",
    BUSY="The line was busy.",
    FAILED="The call could not be made.",
    CANCELED="The call was called off.",
)


@strawberry.type(description="A call with a lead.")
class Call:
    id: strawberry.ID = strawberry.field(description="Database id (ObjectId hex).")
    lead_id: str = strawberry.field(description='The lead\'s human id, "LEAD-001".')
    type: CallType = strawberry.field(description="Outbound or inbound.")
    duration: int = strawberry.field(description="Length in seconds.")
    from_: str | None = strawberry.field(
        name="from", description="The caller's name: the user who logged the call."
    )
    to: str | None = strawberry.field(
        description="Name of who was called; by default the lead's full name."
    )
    phone: str | None = strawberry.field(description="Number called; by default the lead's mobile.")
    timestamp: datetime = strawberry.field(description="When the call took place.")
    status: CallStatus = strawberry.field(description="How the call went.")
    logged_by: str | None = strawberry.field(description="Name of the user who logged it.")


@strawberry.input(
    description="A call to log. Defaults: OUTBOUND, the lead's mobile and full name, "
    "COMPLETED, now."
)
class LogCallInput:
    duration: int = strawberry.field(description="Length in seconds, 0 to 86400 (24 hours).")
    type: CallType = strawberry.field(
        default=CallType.OUTBOUND, description="Defaults to OUTBOUND."
    )
    phone: str | None = strawberry.field(
        default=None,
        description="Digits, spaces and + ( ) . - only; 3 to 32 characters. "
        "Defaults to the lead's mobile.",
    )
    to: str | None = strawberry.field(
        default=None,
        description="Name of who was called, at most 200 characters; defaults to the lead's "
        "full name.",
    )
    status: CallStatus = strawberry.field(
        default=CallStatus.COMPLETED, description="Defaults to COMPLETED."
    )
    timestamp: datetime | None = strawberry.field(
        default=None, description="When the call took place; defaults to now."
    )


@strawberry.type(description="The logged call and the lead with its new timeline entry.")
class LogCallPayload:
    call: CallDocument = strawberry.field(graphql_type=Call, description="The logged call.")
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead, description="The lead, with the CALL_LOGGED entry."
    )
