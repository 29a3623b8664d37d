"""Email type and the sendEmail mutation."""

from datetime import datetime

import strawberry

from models.email import EmailDocument, EmailStatus
from models.lead import LeadDocument
from resolvers.context import Info
from resolvers.email import send_email
from schema.common import admin_field, provided
from schema.lead import Lead

strawberry.enum(EmailStatus, description="Delivery state of an email.")


@strawberry.type(description="An email sent to a lead.")
class Email:
    id: strawberry.ID
    lead_id: str
    from_: str | None = strawberry.field(name="from", description="Sender's email address.")
    to: str = strawberry.field(description="Recipients, comma-separated.")
    cc: str | None
    bcc: str | None
    subject: str
    body: str
    timestamp: datetime
    status: EmailStatus
    sent_by: str | None = strawberry.field(description="Name of the user who sent it.")


@strawberry.input(description="An email to send; `to` defaults to the lead's email.")
class SendEmailInput:
    subject: str
    body: str
    to: str | None = None
    cc: str | None = None
    bcc: str | None = None


@strawberry.type(description="The sent email and the lead with its new timeline entry.")
class SendEmailPayload:
    email: EmailDocument = strawberry.field(graphql_type=Email)
    lead: LeadDocument = strawberry.field(graphql_type=Lead)


@strawberry.type
class EmailMutation:
    @admin_field(description="Send an email to a lead (an EMAIL_SENT entry).")
    async def send_email(self, info: Info, lead_id: str, input: SendEmailInput) -> SendEmailPayload:
        email, lead = await send_email(info.context.user, lead_id, provided(input))
        return SendEmailPayload(email=email, lead=lead)
