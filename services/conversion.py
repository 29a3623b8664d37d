"""Converting a lead into a deal, with its organization and contact (docs/api.md).

The work is a list of steps (`STEPS`, run as services/steps.py describes): in one
transaction where the database has them; elsewhere in an order where every state a crash can
leave is finished by converting again, which returns the same deal:

1. read the lead (CONFLICT if converted) and any organization / contact to link;
2. create the deal, or adopt the one an interrupted conversion of this lead left (the unique
   `deals.lead_id` index allows one);
3. link the organization (given, or reused / created by name) on the deal, unless linked;
4. link the contact (given, or reused / created by email; else a new id) on the deal;
5. create that new contact (an upsert by its id: at most once);
6. mark the lead converted, with its timeline entries, only while it is not: of concurrent
   conversions exactly one gets here first, the others are CONFLICT.

Until step 6, one atomic write, the lead stays unconverted and a retry goes through every
step again: each finds what an earlier run did and keeps it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from models.activity import ActivityType
from models.base import CrmDocument, stored_fields, utc_now
from models.contact import ContactDocument
from models.deal import DealDocument, DealStatus
from models.fields import FieldSpec, LeadStatus, ObjectIdText, Text, copied_from_lead
from models.lead import LeadDocument
from models.organization import OrganizationDocument
from services import changes, policy, sequence, timeline
from services.documents import decode
from services.errors import Conflict, not_found
from services.policy import Action
from services.steps import Step, in_transaction_if_supported, run_steps
from services.validation import clean
from services.viewer import Viewer

CONVERT_RULES: dict[str, FieldSpec] = {
    "organization_id": ObjectIdText(),
    "contact_id": ObjectIdText(),
    "deal_owner": Text(max_length=200),
}
# What each document copies from the lead: the fields it declares with the lead's types.
DEAL_FIELDS_FROM_LEAD = copied_from_lead(DealDocument)
ORGANIZATION_FIELDS_FROM_LEAD = copied_from_lead(OrganizationDocument)
CONTACT_FIELDS_FROM_LEAD = copied_from_lead(ContactDocument)
# Marking the lead misses when its status changed since it was read; re-read this often.
MAX_ATTEMPTS = 25


@dataclass
class Conversion:
    """One convertLeadToDeal run: what it works on, and what it has done so far."""

    viewer: Viewer
    lead_id: str
    fields: Mapping[str, Any]  # the cleaned input
    session: AsyncClientSession | None = None
    now: datetime = field(default_factory=utc_now)
    lead: LeadDocument | None = None
    organization: OrganizationDocument | None = None  # given as organization_id
    contact: ContactDocument | None = None  # given as contact_id
    deal: DealDocument | None = None
    converted: LeadDocument | None = None

    @property
    def read_lead(self) -> LeadDocument:
        assert self.lead is not None
        return self.lead

    @property
    def made_deal(self) -> DealDocument:
        assert self.deal is not None
        return self.deal


def _already(lead_id: str) -> Conflict:
    return Conflict(f"Lead {lead_id!r} has already been converted to a deal")


async def _existing[D: CrmDocument](
    document: type[D], key: object, kind: str, session: AsyncClientSession | None
) -> D | None:
    if key is None:
        return None
    assert isinstance(key, PydanticObjectId)
    found = await document.get(key, session=session)
    if found is None:
        raise not_found(kind, str(key))
    return found


async def _upsert[D: CrmDocument](
    document: type[D],
    match: Mapping[str, Any],
    fields: Mapping[str, Any],
    session: AsyncClientSession | None,
) -> D:
    """The document matching `match` (a unique key), created from `fields` if there is none."""
    collection = document.get_pymongo_collection()
    update = {"$setOnInsert": stored_fields(document, fields)}
    try:
        raw = await collection.find_one_and_update(
            dict(match),
            update,
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
    except DuplicateKeyError:
        # Two upserts raced on the unique key; the other one's document is the one to use.
        raw = await collection.find_one(dict(match), session=session)
    found: D = document.model_validate(raw)
    return found


def _copied(lead: LeadDocument, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in names}


def _deals() -> AsyncCollection[Any]:
    return DealDocument.get_pymongo_collection()


async def _read_lead(run: Conversion) -> None:
    """Every check before anything is written: the lead, not yet converted; given links."""
    raw = await LeadDocument.get_pymongo_collection().find_one(
        policy.scoped(run.viewer, {"lead_id": run.lead_id}), session=run.session
    )
    if raw is None:
        raise not_found("Lead", run.lead_id)
    run.lead = decode(LeadDocument, raw, "Lead")
    if run.lead.converted_to_deal:
        raise _already(run.lead_id)
    run.organization = await _existing(
        OrganizationDocument, run.fields.get("organization_id"), "Organization", run.session
    )
    run.contact = await _existing(
        ContactDocument, run.fields.get("contact_id"), "Contact", run.session
    )


async def _deal_of_lead(run: Conversion) -> DealDocument | None:
    raw = await _deals().find_one({"lead_id": run.lead_id}, session=run.session)
    return None if raw is None else decode(DealDocument, raw, "Deal")


async def _create_deal(run: Conversion) -> None:
    """The lead's deal: the one an interrupted conversion of this (unconverted) lead left, or
    a new one. The unique index on deals.lead_id keeps it to one deal per lead."""
    lead = run.read_lead
    run.deal = await _deal_of_lead(run)
    if run.deal is not None:
        return  # left by an interrupted (or a concurrent) conversion: finish that one
    number = await sequence.next_number("deal", session=run.session)
    deal = DealDocument.model_validate(
        {
            **_copied(lead, DEAL_FIELDS_FROM_LEAD),
            "deal_id": sequence.format_id("DEAL", number),
            "deal_number": number,
            "lead_id": lead.lead_id,
            "status": DealStatus.QUALIFICATION,
            "deal_owner": run.fields.get("deal_owner") or lead.lead_owner,
            "created_at": run.now,
            "created_by": run.viewer.name,
        }
    )
    try:
        await deal.insert(session=run.session)
    except DuplicateKeyError:
        # A concurrent conversion inserted it first. (In a transaction the other one has
        # committed, or will: a transaction never leaves a half-done conversion behind.)
        if run.session is not None:
            raise _already(run.lead_id) from None
        run.deal = await _deal_of_lead(run)
        if run.deal is None:
            raise Conflict(f"Could not allocate a deal id for {run.lead_id!r}; retry") from None
    else:
        run.deal = deal


async def _link(run: Conversion, name: str, key: PydanticObjectId) -> None:
    """Set the deal's `name` (organization_id, contact_id) unless a run set it before."""
    stored = stored_fields(DealDocument, {name: key})
    deal = run.made_deal
    raw = await _deals().find_one_and_update(
        {"_id": deal.id, **dict.fromkeys(stored)},  # still null (or missing)
        {"$set": stored},
        return_document=ReturnDocument.AFTER,
        session=run.session,
    )
    if raw is None:  # set meanwhile by a concurrent run of this conversion: keep that
        raw = await _deals().find_one({"_id": deal.id}, session=run.session)
    if raw is None:
        raise Conflict(f"The deal of {run.lead_id!r} was removed while converting; retry")
    run.deal = decode(DealDocument, raw, "Deal")


async def _link_organization(run: Conversion) -> None:
    lead, organization = run.read_lead, run.organization
    if run.made_deal.organization_id is not None:
        return  # linked by an interrupted run
    if organization is None and lead.organization:
        organization = await _upsert(
            OrganizationDocument,
            {"name": lead.organization},
            {"name": lead.organization, **_copied(lead, ORGANIZATION_FIELDS_FROM_LEAD)},
            run.session,
        )
    if organization is not None:
        assert organization.id is not None
        await _link(run, "organization_id", organization.id)


def _makes_contact(run: Conversion) -> bool:
    """The contact is a new one, made from the lead (no contact given, no email to reuse)."""
    return run.contact is None and not run.read_lead.email


async def _link_contact(run: Conversion) -> None:
    """The given contact, the one with the lead's email (reused or created), or the id of a
    new contact, named on the deal before it is created: a retry then creates that one."""
    lead = run.read_lead
    if run.made_deal.contact_id is not None:
        return  # linked by an interrupted run
    if run.contact is not None:
        key = run.contact.id
    elif lead.email:
        key = (await _upsert(ContactDocument, {"email": lead.email}, _contact(run), run.session)).id
    else:
        key = PydanticObjectId()
    assert key is not None
    await _link(run, "contact_id", key)


def _contact(run: Conversion) -> dict[str, Any]:
    return {
        **_copied(run.read_lead, CONTACT_FIELDS_FROM_LEAD),
        "organization_id": run.made_deal.organization_id,
    }


async def _create_contact(run: Conversion) -> None:
    if _makes_contact(run):
        key = run.made_deal.contact_id
        await _upsert(ContactDocument, {"_id": key}, _contact(run), run.session)  # takes key


async def _mark_lead_converted(run: Conversion) -> None:
    """The step that makes the conversion happen: of concurrent runs exactly one marks the
    lead (its filter requires it unconverted); the others are CONFLICT."""
    deal = run.made_deal
    for _ in range(MAX_ATTEMPTS):
        lead = run.read_lead
        # Appended oldest first, so the timeline (newest first) leads with the conversion.
        entries = []
        if lead.status is not LeadStatus.QUALIFIED:
            entries.append(
                timeline.lead_field_changed(
                    "status", lead.status, LeadStatus.QUALIFIED, by=run.viewer.name, at=run.now
                )
            )
        entries.append(
            timeline.activity(
                ActivityType.CONVERTED_TO_DEAL,
                f"Converted to deal {deal.deal_id}",
                by=run.viewer.name,
                at=run.now,
            )
        )
        # The status read is pinned too, so the timeline's old value is the true one.
        unconverted = policy.scoped(
            run.viewer,
            {**changes.pinned(lead, ["status"]), "convertedToDeal": {"$ne": True}},
        )
        run.converted = await timeline.record(
            unconverted,
            entries,
            changes={
                "status": LeadStatus.QUALIFIED,
                "converted_to_deal": True,
                "deal_id": deal.deal_id,
            },
            at=run.now,
            session=run.session,
        )
        if run.converted is not None:
            return
        await _read_lead(run)  # NOT_FOUND if deleted (the deal stays, as history), CONFLICT
        # if a concurrent conversion marked it; else its status changed: record again
    raise Conflict(f"Lead {run.lead_id!r} is being changed by others; retry")


STEPS: tuple[Step[Conversion], ...] = (
    Step("read lead", _read_lead),
    Step("create deal", _create_deal),
    Step("link organization", _link_organization),
    Step("link contact", _link_contact),
    Step("create contact", _create_contact),
    Step("mark lead converted", _mark_lead_converted),
)


async def convert_lead(
    viewer: Viewer, lead_id: str, values: Mapping[str, object]
) -> tuple[LeadDocument, DealDocument]:
    """Links `organization_id` / `contact_id` when given, else reuses or creates them.

    Run again after a crash, it finishes the interrupted conversion and returns its deal.
    """
    policy.require(viewer, Action.WRITE)
    fields = clean(values, CONVERT_RULES)

    async def convert(session: AsyncClientSession | None) -> Conversion:
        # A fresh Conversion per call: a transaction may be run again after a transient error.
        return await run_steps(STEPS, Conversion(viewer, lead_id, fields, session))

    run = await in_transaction_if_supported(convert)
    assert run.converted is not None
    return run.converted, run.made_deal
