"""Call type and the logCall mutation."""

from datetime import datetime

import strawberry

from models.call import CallDocument, CallStatus, CallType
from models.lead import LeadDocument
from resolvers.call import log_call
from resolvers.context import Info
from schema.common import admin_field, provided
from schema.lead import Lead

strawberry.enum(CallType, description="Who called whom.")
strawberry.enum(CallStatus, description="How the call went.")


@strawberry.type(description="A call with a lead.")
class Call:
    id: strawberry.ID
    lead_id: str
    type: CallType
    duration: int = strawberry.field(description="Seconds.")
    from_: str | None = strawberry.field(name="from", description="Name of the caller.")
    to: str | None = strawberry.field(description="Name of who was called.")
    phone: str | None
    timestamp: datetime
    status: CallStatus
    logged_by: str | None = strawberry.field(description="Name of the user who logged it.")


@strawberry.input(
    description="A call to log. Defaults: OUTBOUND, the lead's mobile and full name, "
    "COMPLETED, now."
)
class LogCallInput:
    duration: int = strawberry.field(description="Seconds, 0 to 86400.")
    type: CallType = CallType.OUTBOUND
    phone: str | None = None
    to: str | None = None
    status: CallStatus = CallStatus.COMPLETED
    timestamp: datetime | None = None


@strawberry.type(description="The logged call and the lead with its new timeline entry.")
class LogCallPayload:
    call: CallDocument = strawberry.field(graphql_type=Call)
    lead: LeadDocument = strawberry.field(graphql_type=Lead)


@strawberry.type
class CallMutation:
    @admin_field(description="Log a call with a lead (a CALL_LOGGED entry).")
    async def log_call(self, info: Info, lead_id: str, input: LogCallInput) -> LogCallPayload:
        call, lead = await log_call(info.context.user, lead_id, provided(input))
        return LogCallPayload(call=call, lead=lead)
