"""A lead's emails, calls, tasks and notes: listing them, and adding one with its timeline
entry."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import DESCENDING

from models.activity import Activity
from models.base import CrmDocument
from models.lead import LeadDocument
from services import timeline
from services.documents import decode_each
from services.errors import not_found

# One round trip for a whole batch: the driver's default first batch is 101 documents.
BATCH_SIZE = 10_000


async def children_of[D: CrmDocument](
    document: type[D], lead_ids: Sequence[str], newest_first_by: str
) -> dict[str, list[D]]:
    """Each lead's `document`s, newest first; ones that cannot be read are skipped (logged)."""
    cursor = (
        document.get_pymongo_collection()
        .find({"lead_id": {"$in": list(lead_ids)}}, batch_size=BATCH_SIZE)
        .sort([(newest_first_by, DESCENDING), ("_id", DESCENDING)])
    )
    grouped: dict[str, list[D]] = defaultdict(list)
    for child in decode_each(document, await cursor.to_list()):
        grouped[child.lead_id].append(child)
    return grouped


async def add_to_lead[D: CrmDocument](
    lead: LeadDocument, child: D, entry: Activity, *, scope: Mapping[str, Any]
) -> tuple[D, LeadDocument]:
    """Store `child`, then log `entry` on its lead while the lead is in `scope` (the caller's,
    services/policy.py); returns both as stored."""
    await child.insert()
    lead_filter = {"$and": [{"_id": lead.id}, dict(scope)]} if scope else {"_id": lead.id}
    updated = await timeline.record(lead_filter, [entry], at=entry.timestamp)
    if updated is None:
        # The lead was deleted meanwhile: take the child back so it is not left orphaned.
        await child.delete()
        raise not_found("Lead", lead.lead_id)
    return child, updated
