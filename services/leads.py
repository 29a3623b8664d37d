"""Leads: look-ups, the list with filters and order, create, update, status."""

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from pymongo.errors import DuplicateKeyError

from models.activity import ActivityType
from models.base import stored_fields, utc_now
from models.fields import LeadFields, LeadStatus, specs
from models.lead import ACTIVITIES_COUNT, LeadDocument
from services import changes, normalize, policy, sequence, timeline, versions
from services.documents import decode
from services.errors import BadUserInput, Conflict, FieldError, not_found
from services.events import LeadActivityEvent, hub
from services.pagination import Order, Page, paginate
from services.policy import Action
from services.validation import CONTROL_CHARACTERS, clean
from services.viewer import Viewer

# What clients may write, with its limits: the catalog's writable fields.
LEAD_RULES = specs(LeadFields, writable=True)
# Writes that lose a race with another writer of the same lead are retried this often.
MAX_WRITE_ATTEMPTS = 25
MAX_SEARCH_WORDS = 10
MAX_OWNER_ID_LENGTH = 200
MAX_SEARCH_LENGTH = 200
# A lead read to be shown or changed comes without its search keys (only queries use them).
WITHOUT_KEYS = {"searchKeys": 0}


class LeadOrderField(Enum):
    """What `leads` can be ordered by; the value is the stored field that is sorted."""

    CREATED_AT = "createdAt"
    UPDATED_AT = "updatedAt"
    LEAD_ID = "leadNumber"
    ANNUAL_REVENUE = "annualRevenue"
    FIRST_NAME = "firstName"


def full_name(lead: LeadDocument) -> str:
    return " ".join(part for part in (lead.first_name, lead.last_name) if part)


async def get_lead(viewer: Viewer, lead_id: str) -> LeadDocument:
    """The lead, if the viewer may read it; NOT_FOUND when absent or out of their scope."""
    policy.require(viewer, Action.READ)
    query = policy.scoped(viewer, {"lead_id": lead_id})
    raw = await LeadDocument.get_pymongo_collection().find_one(query, WITHOUT_KEYS)
    if raw is None:
        raise not_found("Lead", lead_id)
    return decode(LeadDocument, raw, "Lead")


def lead_query(filters: Mapping[str, Any]) -> dict[str, Any]:
    """A MongoDB filter from LeadFilter values; client values are literals, never operators."""
    query: dict[str, Any] = {}
    statuses = filters.get("status")
    if statuses is not None:
        # An empty list allows no status: match nothing through the _id index
        # (the embedded engine fails on `$in: []`).
        query.update(
            {"status": {"$in": [s.value for s in statuses]}} if statuses else {"_id": None}
        )
    for name in (
        "lead_owner",
        "lead_owner_id",
        "source",
        "industry",
        "territory",
        "converted_to_deal",
    ):
        if filters.get(name) is not None:
            query.update(stored_fields(LeadDocument, {name: filters[name]}))
    if filters.get("converted_to_deal") is False:
        # The seed stored no flag on leads never converted: a missing flag means false.
        query["convertedToDeal"] = {"$in": [False, None]}
    created: dict[str, Any] = {}
    if filters.get("created_after") is not None:
        created["$gte"] = filters["created_after"]
    if filters.get("created_before") is not None:
        created["$lt"] = filters["created_before"]
    if created:
        query["createdAt"] = created
    search = filters.get("search") or ""
    if len(search) > MAX_SEARCH_LENGTH or len(search.split()) > MAX_SEARCH_WORDS:
        message = f"at most {MAX_SEARCH_WORDS} words and {MAX_SEARCH_LENGTH} characters"
        raise BadUserInput([FieldError("search", message)])
    if search.strip():
        # Every word must start a word of the name, organization, email or lead id ("jane
        # acme" finds Jane at Acme), by the stored keys: one index, never a scan.
        terms = normalize.search_terms(search)
        words = [normalize.WORD + term for term in dict.fromkeys(terms)]
        if words:
            query["searchKeys"] = {"$all": words}
        else:
            query["_id"] = None  # only punctuation: no word to match, so no lead
    return query


# What a lead list reads: never the search keys; the timeline (a lead's longest array) only
# when it shows it, else, when it shows the count, the database's count instead (an
# aggregation: the engine counts, and sends no entry).
WITH_TIMELINE: dict[str, Any] = {"searchKeys": 0}
WITHOUT_TIMELINE: dict[str, Any] = {"activities": 0, "searchKeys": 0}
COUNTED_TIMELINE = (
    {"$set": {ACTIVITIES_COUNT: {"$size": {"$ifNull": ["$activities", []]}}}},
    {"$unset": ["activities", "searchKeys"]},
)


async def list_leads(
    viewer: Viewer,
    *,
    first: int | None,
    after: str | None,
    filters: Mapping[str, Any],
    order: Order,
    with_timeline: bool,
    with_counts: bool = True,
) -> Page[LeadDocument]:
    """A page of the leads in the viewer's scope that match `filters`; without the timeline,
    each lead's count of entries when `with_counts`."""
    policy.require(viewer, Action.READ)
    query = policy.scoped(viewer, lead_query(filters))
    counted = with_counts and not with_timeline
    page = await paginate(
        LeadDocument,
        query,
        order,
        first=first,
        after=after,
        projection=WITH_TIMELINE if with_timeline else WITHOUT_TIMELINE,
        reshape=COUNTED_TIMELINE if counted else (),
    )
    if not with_timeline and not counted:
        for lead in page.documents:
            lead.omit_timeline()
    return page


async def count_leads(viewer: Viewer, filters: Mapping[str, Any]) -> int:
    policy.require(viewer, Action.READ)
    return await LeadDocument.find(policy.scoped(viewer, lead_query(filters))).count()


async def create_lead(
    viewer: Viewer, values: Mapping[str, object], *, owner_id: str | None = None
) -> LeadDocument:
    """A new lead owned by the caller, or by `owner_id` (who may assign leads only)."""
    policy.require(viewer, Action.CREATE)
    fields = clean(values, LEAD_RULES, required=True)
    fields.setdefault("status", LeadStatus.NEW)
    fields["lead_owner_id"] = _owner_at_creation(viewer, owner_id, fields)
    if fields.get("lead_owner") is None:
        fields["lead_owner"] = viewer.name or viewer.id
    now = utc_now()
    created = timeline.activity(ActivityType.CREATED, "Lead created", by=viewer.name, at=now)
    for _ in range(MAX_WRITE_ATTEMPTS):
        number = await sequence.next_number("lead")
        lead_id = sequence.format_id("LEAD", number)
        lead: LeadDocument = LeadDocument.model_validate(
            {
                **fields,
                **normalize.lead_keys({**fields, "lead_id": lead_id}),
                "lead_id": lead_id,
                "lead_number": number,
                "created_at": now,
                "created_by": viewer.id,
                "updated_at": now,
                "activities": [created],
            }
        )
        try:
            await lead.insert()
        except DuplicateKeyError:
            continue  # the number is held by a lead stored without the counter (imported data)
        hub.written(lead, len(lead.activities))
        return lead
    raise Conflict("Could not allocate a lead id; retry")


def _owner_at_creation(viewer: Viewer, owner_id: str | None, fields: Mapping[str, Any]) -> str:
    """`leadOwnerId` of a new lead: the creator's, or one given by a role that may assign."""
    if owner_id is None or owner_id == viewer.id:
        return viewer.id
    policy.require(viewer, Action.ASSIGN)
    owner_id = owner_id.strip()
    if not owner_id or len(owner_id) > MAX_OWNER_ID_LENGTH or CONTROL_CHARACTERS.search(owner_id):
        message = f"must be 1 to {MAX_OWNER_ID_LENGTH} characters"
        raise BadUserInput([FieldError("leadOwnerId", message)])
    if fields.get("lead_owner") is None:
        message = "give the owner's name with leadOwnerId"
        raise BadUserInput([FieldError("leadOwner", message)])
    return owner_id


async def update_lead(
    viewer: Viewer,
    lead_id: str,
    values: Mapping[str, object],
    *,
    expected_updated_at: datetime | None = None,
) -> LeadDocument:
    """Apply the given fields; one timeline entry per field that really changed.

    With `expected_updated_at`, only if the lead is still at that version (else CONFLICT).
    """
    policy.require(viewer, Action.WRITE)
    if "lead_owner_id" in values:
        # Ownership moves only with its ASSIGNED entry (services/assignment.py).
        raise BadUserInput([FieldError("leadOwnerId", "change it with assignLead")])
    fields = clean(values, LEAD_RULES)
    return await _write_fields(
        viewer, lead_id, fields, unchanged_too=False, expected=expected_updated_at
    )


async def update_lead_status(viewer: Viewer, lead_id: str, status: LeadStatus) -> LeadDocument:
    """Set the status; always one STATUS_CHANGED entry, also when the status stays the same,
    so every call leaves its trace on the timeline."""
    policy.require(viewer, Action.WRITE)
    return await _write_fields(viewer, lead_id, {"status": status}, unchanged_too=True)


async def _write_fields(
    viewer: Viewer,
    lead_id: str,
    fields: Mapping[str, object],
    *,
    unchanged_too: bool,
    expected: datetime | None = None,
) -> LeadDocument:
    for _ in range(MAX_WRITE_ATTEMPTS):
        lead = await get_lead(viewer, lead_id)
        # Checked on every attempt: a write that missed because another got in first comes
        # back here and becomes CONFLICT, never a retry that overwrites what the client missed.
        versions.check("Lead", lead_id, lead.updated_at, expected)
        changed = dict(fields) if unchanged_too else changes.diff(lead, fields)
        if not changed:
            return lead
        now = versions.next_version(lead.updated_at, utc_now())
        entries = [
            timeline.lead_field_changed(name, getattr(lead, name), new, by=viewer.name, at=now)
            for name, new in changed.items()
        ]
        writes, read = with_keys(lead, changed)
        # The expected version is part of the write's filter, so check and write are atomic.
        pinned = changes.pinned(lead, [*read, "updated_at"] if expected else read)
        # The scope too: a lead assigned away meanwhile is not written (then NOT_FOUND).
        updated = await timeline.record(
            policy.scoped(viewer, pinned), entries, changes=writes, at=now
        )
        if updated is not None:
            return updated
    raise Conflict(f"Lead {lead_id!r} is being changed by others; retry")


def with_keys(
    lead: LeadDocument, changed: Mapping[str, object]
) -> tuple[dict[str, object], list[str]]:
    """The write for `changed`: with the lead's new keys when a field they come from changes.
    Also the fields the write must pin: all the keys' sources then, so a concurrent change
    of another of them makes this write miss instead of storing keys of a mix."""
    if not any(name in normalize.KEY_SOURCES for name in changed):
        return dict(changed), list(changed)
    after = {name: getattr(lead, name) for name in normalize.KEY_SOURCES} | dict(changed)
    pinned = list(dict.fromkeys([*changed, *normalize.KEY_SOURCES]))
    return {**changed, **normalize.lead_keys(after)}, pinned


async def lead_activity(viewer: Viewer, lead_id: str | None) -> AsyncIterator[LeadActivityEvent]:
    """New timeline entries of one lead, or of every lead in the viewer's scope (None).

    NOT_FOUND for a lead out of scope. Each event is checked against the lead as stored right
    after its write, so a lead assigned away stops reaching its previous owner (after the
    ASSIGNED entry itself: policy.sees_activity).
    """
    policy.require(viewer, Action.READ)
    if lead_id is not None:
        await get_lead(viewer, lead_id)
    async for event in hub.subscribe(lead_id):
        if policy.sees_activity(viewer, event.lead, event.lead.activities[event.number - 1]):
            yield event
