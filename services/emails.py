"""Emails sent to a lead."""

from collections.abc import Mapping

from models.base import utc_now
from models.email import EmailDocument, EmailStatus
from models.fields import FieldSpec, Text
from models.lead import LeadDocument
from services import policy, timeline
from services.children import add_to_lead
from services.errors import BadUserInput, FieldError
from services.leads import get_lead
from services.policy import Action
from services.validation import clean
from services.viewer import Viewer

EMAIL_RULES: dict[str, FieldSpec] = {
    "to": Text(max_length=2000, format="email_list"),
    "cc": Text(max_length=2000, format="email_list"),
    "bcc": Text(max_length=2000, format="email_list"),
    "subject": Text(max_length=500, required=True),
    "body": Text(max_length=100_000, required=True),
}


async def send_email(
    viewer: Viewer, lead_id: str, values: Mapping[str, object]
) -> tuple[EmailDocument, LeadDocument]:
    policy.require(viewer, Action.WRITE)
    fields = clean(values, EMAIL_RULES)
    lead = await get_lead(viewer, lead_id)
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
    scope = policy.lead_scope(viewer)
    return await add_to_lead(lead, email, timeline.email_sent(email), scope=scope)
