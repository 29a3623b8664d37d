"""Deleting a lead with everything that hangs off it, leaving no orphan."""

from dataclasses import dataclass

from models.base import CrmDocument
from models.call import CallDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from resolvers.services.errors import not_found

CHILDREN: dict[str, type[CrmDocument]] = {
    "deleted_emails": EmailDocument,
    "deleted_calls": CallDocument,
    "deleted_tasks": TaskDocument,
    "deleted_notes": NoteDocument,
}


@dataclass(frozen=True)
class DeletedLead:
    lead_id: str
    deleted_emails: int
    deleted_calls: int
    deleted_tasks: int
    deleted_notes: int


async def _delete_children(lead_id: str, counts: dict[str, int]) -> None:
    for name, document in CHILDREN.items():
        result = await document.get_pymongo_collection().delete_many({"lead_id": lead_id})
        counts[name] += result.deleted_count


async def delete_lead(lead_id: str) -> DeletedLead:
    """Children first, then the lead: an interrupted delete leaves the lead, and a retry ends it.

    A second sweep after the lead is gone catches a child added while this ran (adding a
    child re-checks its lead afterwards and takes it back when the lead is gone).
    """
    lead = await LeadDocument.find_one({"lead_id": lead_id})
    if lead is None:
        raise not_found("Lead", lead_id)
    counts = dict.fromkeys(CHILDREN, 0)
    await _delete_children(lead_id, counts)
    deleted = await LeadDocument.get_pymongo_collection().delete_one({"_id": lead.id})
    if deleted.deleted_count == 0:
        raise not_found("Lead", lead_id)
    await _delete_children(lead_id, counts)
    return DeletedLead(lead_id=lead_id, **counts)
