"""sendEmail: read the arguments, call a service, return."""

from typing import Annotated

import strawberry

from resolvers.arguments import LeadIdArgument, provided
from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.email import SendEmailInput, SendEmailPayload
from services.emails import send_email
from services.policy import Action


@strawberry.type
class EmailMutation:
    @permission_field(
        Action.WRITE,
        description="Send an email to a lead (an EMAIL_SENT entry). Errors: NOT_FOUND, "
        "BAD_USER_INPUT.",
    )
    async def send_email(
        self,
        info: Info,
        lead_id: LeadIdArgument,
        input: Annotated[SendEmailInput, strawberry.argument(description="The email.")],
    ) -> SendEmailPayload:
        email, lead = await send_email(info.context.user, lead_id, provided(input))
        return SendEmailPayload(email=email, lead=lead)
