"""Email type and the sendEmail mutation."""

from datetime import datetime

import strawberry

from models.email import EmailDocument, EmailStatus
from models.lead import LeadDocument
from schema.common import describe_values
from schema.lead import Lead

strawberry.enum(EmailStatus, description="Delivery state of an email.")
describe_values(
    EmailStatus,
    SENT="Sent; sendEmail records every email as SENT.",
    QUEUED="Waiting to be sent.",
    FAILED="Could not be sent.",
)


@strawberry.type(description="An email sent to a lead.")
class Email:
    id: strawberry.ID = strawberry.field(description="Database id (ObjectId hex).")
    lead_id: str = strawberry.field(description='The lead\'s human id, "LEAD-001".')
    from_: str | None = strawberry.field(
        name="from", description="Sender's email address (the sending user's token `email`)."
    )
    to: str = strawberry.field(description="Recipients, comma-separated.")
    cc: str | None = strawberry.field(description="Copy recipients, comma-separated.")
    bcc: str | None = strawberry.field(description="Blind-copy recipients, comma-separated.")
    subject: str = strawberry.field(description="Subject line.")
    body: str = strawberry.field(description="Body text.")
    timestamp: datetime = strawberry.field(description="When it was sent.")
    status: EmailStatus = strawberry.field(description="Delivery state.")
    sent_by: str | None = strawberry.field(description="Name of the user who sent it.")


@strawberry.input(description="An email to send; `to` defaults to the lead's email.")
class SendEmailInput:
    subject: str = strawberry.field(description="Required, at most 500 characters.")
    body: str = strawberry.field(description="Required, at most 100,000 characters.")
    to: str | None = strawberry.field(
        default=None,
        description="Comma-separated addresses, at most 2000 characters; defaults to the "
        "lead's email (BAD_USER_INPUT when the lead has none).",
    )
    cc: str | None = strawberry.field(
        default=None, description="Comma-separated addresses, at most 2000 characters."
    )
    bcc: str | None = strawberry.field(
        default=None, description="Comma-separated addresses, at most 2000 characters."
    )


@strawberry.type(description="The sent email and the lead with its new timeline entry.")
class SendEmailPayload:
    email: EmailDocument = strawberry.field(graphql_type=Email, description="The sent email.")
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead, description="The lead, with the EMAIL_SENT entry."
    )
