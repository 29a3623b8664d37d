"""logCall: read the arguments, call a service, return."""

from typing import Annotated

import strawberry

from resolvers.arguments import LeadIdArgument, provided
from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.call import LogCallInput, LogCallPayload
from services.calls import log_call
from services.policy import Action


@strawberry.type
class CallMutation:
    @permission_field(
        Action.WRITE,
        description="Log a call with a lead (a CALL_LOGGED entry). Errors: NOT_FOUND, "
        "BAD_USER_INPUT.",
    )
    async def log_call(
        self,
        info: Info,
        lead_id: LeadIdArgument,
        input: Annotated[LogCallInput, strawberry.argument(description="The call.")],
    ) -> LogCallPayload:
        call, lead = await log_call(info.context.user, lead_id, provided(input))
        return LogCallPayload(call=call, lead=lead)
