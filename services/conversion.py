"""Converting a lead into a deal, with its organization and contact (DESIGN.md §4)."""

from collections.abc import Mapping
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from models.activity import ActivityType
from models.base import CrmDocument, stored_fields, utc_now
from models.contact import ContactDocument
from models.deal import DealDocument, DealStatus
from models.lead import LeadDocument, LeadStatus
from models.organization import OrganizationDocument
from services import sequence, timeline
from services.errors import Conflict, not_found
from services.validation import ObjectIdText, Rule, Text, clean
from services.viewer import Viewer

CONVERT_RULES: dict[str, Rule] = {
    "organization_id": ObjectIdText(),
    "contact_id": ObjectIdText(),
    "deal_owner": Text(max_length=200),
}
# The lead's fields a deal starts from (same names on both).
DEAL_FIELDS_FROM_LEAD = (
    "organization",
    "website",
    "territory",
    "industry",
    "annual_revenue",
    "source",
    "no_of_employees",
)
ORGANIZATION_FIELDS_FROM_LEAD = (
    "website",
    "industry",
    "no_of_employees",
    "annual_revenue",
    "territory",
)
CONTACT_FIELDS_FROM_LEAD = (
    "salutation",
    "first_name",
    "last_name",
    "email",
    "mobile",
    "job_title",
    "gender",
)


async def _existing[D: CrmDocument](document: type[D], key: object, kind: str) -> D | None:
    if key is None:
        return None
    assert isinstance(key, PydanticObjectId)
    found = await document.get(key)
    if found is None:
        raise not_found(kind, str(key))
    return found


async def _upsert[D: CrmDocument](
    document: type[D], match: Mapping[str, Any], fields: Mapping[str, Any]
) -> D:
    """The document matching `match` (a unique key), created from `fields` if there is none."""
    collection = document.get_pymongo_collection()
    update = {"$setOnInsert": stored_fields(document, fields)}
    try:
        raw = await collection.find_one_and_update(
            dict(match), update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:
        # Two upserts raced on the unique key; the other one's document is the one to use.
        raw = await collection.find_one(dict(match))
    found: D = document.model_validate(raw)
    return found


def _copied(lead: LeadDocument, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in names}


async def convert_lead(
    viewer: Viewer, lead_id: str, values: Mapping[str, object]
) -> tuple[LeadDocument, DealDocument]:
    """Links `organization_id` / `contact_id` when given, else reuses or creates them."""
    fields = clean(values, CONVERT_RULES)
    lead = await LeadDocument.find_one({"lead_id": lead_id})
    if lead is None:
        raise not_found("Lead", lead_id)
    already = Conflict(f"Lead {lead_id!r} has already been converted to a deal")
    if lead.converted_to_deal:
        raise already
    organization = await _existing(
        OrganizationDocument, fields.get("organization_id"), "Organization"
    )
    contact = await _existing(ContactDocument, fields.get("contact_id"), "Contact")

    now = utc_now()
    number = await sequence.next_number("deal")
    deal = DealDocument.model_validate(
        {
            **_copied(lead, DEAL_FIELDS_FROM_LEAD),
            "deal_id": sequence.format_id("DEAL", number),
            "deal_number": number,
            "lead_id": lead.lead_id,
            "status": DealStatus.QUALIFICATION,
            "deal_owner": fields.get("deal_owner") or lead.lead_owner,
            "created_at": now,
            "created_by": viewer.name,
        }
    )
    try:
        # The unique index on deals.lead_id lets exactly one concurrent conversion through.
        await deal.insert()
    except DuplicateKeyError:
        raise already from None

    if organization is None and lead.organization:
        organization = await _upsert(
            OrganizationDocument,
            {"name": lead.organization},
            {"name": lead.organization, **_copied(lead, ORGANIZATION_FIELDS_FROM_LEAD)},
        )
    organization_key = organization.id if organization else None
    if contact is None:
        contact_fields = {
            **_copied(lead, CONTACT_FIELDS_FROM_LEAD),
            "organization_id": organization_key,
        }
        if lead.email:
            contact = await _upsert(ContactDocument, {"email": lead.email}, contact_fields)
        else:
            contact = ContactDocument.model_validate(contact_fields)
            await contact.insert()
    deal.organization_id, deal.contact_id = organization_key, contact.id
    await DealDocument.get_pymongo_collection().update_one(
        {"_id": deal.id},
        {
            "$set": stored_fields(
                DealDocument, {"organization_id": organization_key, "contact_id": contact.id}
            )
        },
    )

    # Appended oldest first, so the timeline (newest first) leads with the conversion.
    entries = []
    if lead.status is not LeadStatus.QUALIFIED:
        entries.append(
            timeline.lead_field_changed(
                "status", lead.status, LeadStatus.QUALIFIED, by=viewer.name, at=now
            )
        )
    entries.append(
        timeline.activity(
            ActivityType.CONVERTED_TO_DEAL,
            f"Converted to deal {deal.deal_id}",
            by=viewer.name,
            at=now,
        )
    )
    converted = await timeline.record(
        {"_id": lead.id},
        entries,
        changes={
            "status": LeadStatus.QUALIFIED,
            "converted_to_deal": True,
            "deal_id": deal.deal_id,
        },
        at=now,
    )
    if converted is None:
        # The lead was deleted meanwhile: the deal keeps its lead_id as history.
        raise not_found("Lead", lead_id)
    return converted, deal
