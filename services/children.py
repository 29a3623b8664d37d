"""Adding an email, call, task or note to a lead, with its timeline entry."""

from models.activity import Activity
from models.base import CrmDocument
from models.lead import LeadDocument
from services import timeline
from services.errors import not_found


async def add_to_lead[D: CrmDocument](
    lead: LeadDocument, child: D, entry: Activity
) -> tuple[D, LeadDocument]:
    """Store `child`, then log `entry` on its lead; returns both as stored."""
    await child.insert()
    updated = await timeline.record({"_id": lead.id}, [entry], at=entry.timestamp)
    if updated is None:
        # The lead was deleted meanwhile: take the child back so it is not left orphaned.
        await child.delete()
        raise not_found("Lead", lead.lead_id)
    return child, updated
