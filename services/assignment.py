"""Giving leads an owner: `assignLead` (one lead) and `assignLeads` (every lead a filter
matches, e.g. the seed's leads of one `leadOwner` name, which have no `leadOwnerId` yet).

Each lead's owner changes in the same write as its ASSIGNED entry (timeline.record), and
only while the lead still has the owner read (and, in bulk, still matches the filter and the
caller's scope): the entry's old owner is always the true one.
"""

from collections.abc import Mapping
from typing import Any

from models.activity import ActivityType
from models.base import utc_now
from models.lead import LeadDocument
from services import changes, policy, timeline, versions
from services.documents import decode
from services.errors import BadUserInput, Conflict, FieldError
from services.leads import MAX_OWNER_ID_LENGTH, get_lead, lead_query
from services.policy import OWNER_ID_FIELD, Action
from services.validation import CONTROL_CHARACTERS
from services.viewer import Viewer

MAX_WRITE_ATTEMPTS = 25
MAX_OWNER_NAME_LENGTH = 200
OWNER_FIELDS = ["lead_owner_id", "lead_owner"]


def _checked_owner(owner_id: str, owner_name: str) -> tuple[str, str]:
    owner_id, owner_name = owner_id.strip(), owner_name.strip()
    problems = []
    for field, value, limit in (
        ("ownerId", owner_id, MAX_OWNER_ID_LENGTH),
        ("ownerName", owner_name, MAX_OWNER_NAME_LENGTH),
    ):
        if not value or len(value) > limit or CONTROL_CHARACTERS.search(value):
            message = f"must be 1 to {limit} characters, without control characters"
            problems.append(FieldError(field, message))
    if problems:
        raise BadUserInput(problems)
    return owner_id, owner_name


def _both(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Documents matching both filters (either may use `$and` or `$or` itself)."""
    if not first:
        return dict(second)
    if not second:
        return dict(first)
    return {"$and": [dict(first), dict(second)]}


async def _assign(
    viewer: Viewer, lead: LeadDocument, owner_id: str, owner_name: str, guard: Mapping[str, Any]
) -> LeadDocument | None:
    """Write the new owner and its ASSIGNED entry while `lead` still has the owner read and
    matches `guard`; None when it changed meanwhile (re-read and try again)."""
    now = versions.next_version(lead.updated_at, utc_now())
    previous = lead.lead_owner or lead.lead_owner_id or "no one"
    entry = timeline.activity(
        ActivityType.ASSIGNED,
        f"Assigned from {previous} to {owner_name}",
        by=viewer.name,
        at=now,
        field=OWNER_ID_FIELD,
        old_value=lead.lead_owner_id,
        new_value=owner_id,
    )
    return await timeline.record(
        _both(changes.pinned(lead, OWNER_FIELDS), guard),
        [entry],
        changes={"lead_owner_id": owner_id, "lead_owner": owner_name},
        at=now,
    )


async def assign_lead(viewer: Viewer, lead_id: str, owner_id: str, owner_name: str) -> LeadDocument:
    """Make `owner_id` (named `owner_name`) the lead's owner, with an ASSIGNED entry; the same
    owner again changes nothing. NOT_FOUND for a lead out of the caller's scope."""
    policy.require(viewer, Action.ASSIGN)
    owner_id, owner_name = _checked_owner(owner_id, owner_name)
    for _ in range(MAX_WRITE_ATTEMPTS):
        lead = await get_lead(viewer, lead_id)
        if (lead.lead_owner_id, lead.lead_owner) == (owner_id, owner_name):
            return lead
        assigned = await _assign(viewer, lead, owner_id, owner_name, policy.lead_scope(viewer))
        if assigned is not None:
            return assigned
    raise Conflict(f"Lead {lead_id!r} is being changed by others; retry")


async def assign_leads(
    viewer: Viewer, filters: Mapping[str, Any], owner_id: str, owner_name: str
) -> int:
    """Give every lead in the caller's scope that matches `filters` (LeadFilter values) and
    is not owned by `owner_id` yet that owner; returns how many were assigned."""
    policy.require(viewer, Action.ASSIGN)
    owner_id, owner_name = _checked_owner(owner_id, owner_name)
    matching = policy.scoped(
        viewer, _both(lead_query(filters), {OWNER_ID_FIELD: {"$ne": owner_id}})
    )
    collection = LeadDocument.get_pymongo_collection()
    # The ids first (a small projection), then each lead on its own: a lead changed, deleted
    # or no longer matching by the time its turn comes is re-read or left out.
    found = await collection.find(matching, {"lead_id": 1}).to_list()
    count = 0
    for lead_id in [raw["lead_id"] for raw in found]:
        for _ in range(MAX_WRITE_ATTEMPTS):
            raw = await collection.find_one(_both({"lead_id": lead_id}, matching))
            if raw is None:
                break  # gone, assigned meanwhile, or no longer matching
            lead = decode(LeadDocument, raw, "Lead")
            if await _assign(viewer, lead, owner_id, owner_name, matching) is not None:
                count += 1
                break
        else:
            raise Conflict(f"Lead {lead_id!r} is being changed by others; retry")
    return count
