"""Notes written about a lead."""

from collections.abc import Mapping

from models.base import utc_now
from models.fields import FieldSpec, Text
from models.lead import LeadDocument
from models.note import NoteDocument
from services import policy, timeline
from services.children import add_to_lead
from services.leads import get_lead
from services.policy import Action
from services.validation import clean
from services.viewer import Viewer

NOTE_RULES: dict[str, FieldSpec] = {
    "title": Text(max_length=200),
    "content": Text(max_length=100_000, required=True),
}


async def create_note(
    viewer: Viewer, lead_id: str, values: Mapping[str, object]
) -> tuple[NoteDocument, LeadDocument]:
    policy.require(viewer, Action.WRITE)
    fields = clean(values, NOTE_RULES)
    lead = await get_lead(viewer, lead_id)
    now = utc_now()
    note = NoteDocument.model_validate(
        {**fields, "lead_id": lead.lead_id, "created_at": now, "created_by": viewer.name}
    )
    scope = policy.lead_scope(viewer)
    return await add_to_lead(lead, note, timeline.note_added(note), scope=scope)
