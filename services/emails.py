"""Emails sent to a lead."""

from collections.abc import Mapping

from models.base import utc_now
from models.email import EmailDocument, EmailStatus
from models.lead import LeadDocument
from services import timeline
from services.children import add_to_lead
from services.errors import BadUserInput, FieldError
from services.leads import get_lead
from services.validation import Rule, Text, clean
from services.viewer import Viewer

EMAIL_RULES: dict[str, Rule] = {
    "to": Text(max_length=2000, format="email_list"),
    "cc": Text(max_length=2000, format="email_list"),
    "bcc": Text(max_length=2000, format="email_list"),
    "subject": Text(max_length=500, required=True),
    "body": Text(max_length=100_000, required=True),
}


async def send_email(
    viewer: Viewer, lead_id: str, values: Mapping[str, object]
) -> tuple[EmailDocument, LeadDocument]:
    fields = clean(values, EMAIL_RULES)
    lead = await get_lead(lead_id)
    if fields.get("to") is None:
        if lead.email is None:
            raise BadUserInput([FieldError("to", "the lead has no email address; give one")])
        fields["to"] = lead.email
    now = utc_now()
    email = EmailDocument.model_validate(
        {
            **fields,
            "lead_id": lead.lead_id,
            "from_": viewer.email,
            "timestamp": now,
            "status": EmailStatus.SENT,
            "sent_by": viewer.name,
        }
    )
    return await add_to_lead(lead, email, timeline.email_sent(email))
