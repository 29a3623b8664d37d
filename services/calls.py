"""Calls logged with a lead."""

from collections.abc import Mapping

from models.base import utc_now
from models.call import CallDocument
from models.fields import FieldSpec, Number, Text
from models.lead import LeadDocument
from services import policy, timeline
from services.children import add_to_lead
from services.leads import full_name, get_lead
from services.policy import Action
from services.validation import clean
from services.viewer import Viewer

CALL_RULES: dict[str, FieldSpec] = {
    "duration": Number(maximum=24 * 60 * 60),
    "phone": Text(max_length=32, format="phone"),
    "to": Text(max_length=200),
}


async def log_call(
    viewer: Viewer, lead_id: str, values: Mapping[str, object]
) -> tuple[CallDocument, LeadDocument]:
    policy.require(viewer, Action.WRITE)
    fields = clean(values, CALL_RULES)
    lead = await get_lead(viewer, lead_id)
    now = utc_now()
    call = CallDocument.model_validate(
        {
            "phone": lead.mobile,
            "to": full_name(lead),
            "timestamp": now,
            **{name: value for name, value in fields.items() if value is not None},
            "lead_id": lead.lead_id,
            "from_": viewer.name,
            "logged_by": viewer.name,
        }
    )
    scope = policy.lead_scope(viewer)
    return await add_to_lead(lead, call, timeline.call_logged(call, at=now), scope=scope)
