"""Lead type, its inputs, and the lead queries and mutations."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Parent

from models.call import CallDocument
from models.deal import DealDocument
from models.email import EmailDocument
from models.lead import LeadDocument, LeadStatus
from models.note import NoteDocument
from models.task import TaskDocument
from resolvers.context import Info
from resolvers.dataloaders import load_optional
from schema.activity import Activity, TimelineEntry, timeline
from schema.common import OrderDirection, describe_values
from services import leads
from services.leads import LeadOrderField

if TYPE_CHECKING:
    from schema.call import Call
    from schema.deal import Deal
    from schema.email import Email
    from schema.note import Note
    from schema.task import Task

strawberry.enum(LeadStatus, description="Where a lead stands in qualification.")
strawberry.enum(LeadOrderField, description="What the lead list can be ordered by.")
describe_values(
    LeadStatus,
    NEW='Just added, not worked on yet (the default). Timeline label "New".',
    CONTACTED='Reached out to. Timeline label "Contacted".',
    NURTURE='Not ready to buy yet; kept warm. Timeline label "Nurture".',
    QUALIFIED='A real opportunity; conversion to a deal sets it. Timeline label "Qualified".',
    UNQUALIFIED='Not a fit. Timeline label "Unqualified".',
    JUNK='Spam or unusable. Timeline label "Junk".',
)
describe_values(
    LeadOrderField,
    CREATED_AT="When the lead was created.",
    UPDATED_AT="When the lead last changed.",
    LEAD_ID="The lead id's number, numerically: LEAD-999 before LEAD-1000.",
    ANNUAL_REVENUE="Annual revenue; leads without one sort lowest.",
    FIRST_NAME="First name, case-sensitively (uppercase before lowercase).",
)

EmailType = Annotated["Email", strawberry.lazy("schema.email")]
CallType = Annotated["Call", strawberry.lazy("schema.call")]
TaskType = Annotated["Task", strawberry.lazy("schema.task")]
NoteType = Annotated["Note", strawberry.lazy("schema.note")]
DealType = Annotated["Deal", strawberry.lazy("schema.deal")]


@strawberry.type(description="A prospective customer, with everything done with them.")
class Lead:
    id: strawberry.ID = strawberry.field(description="Database id (ObjectId hex).")
    lead_id: str = strawberry.field(description='Human id, "LEAD-001".')
    salutation: str | None = strawberry.field(description='Form of address, e.g. "Mr", "Dr".')
    first_name: str = strawberry.field(description="First name; never empty.")
    last_name: str | None = strawberry.field(description="Last name.")
    email: str | None = strawberry.field(
        description="Email address; sendEmail's default recipient."
    )
    mobile: str | None = strawberry.field(description="Mobile number; logCall's default `phone`.")
    organization: str | None = strawberry.field(description="Company name.")
    website: str | None = strawberry.field(description="Company website.")
    job_title: str | None = strawberry.field(description="Job title.")
    industry: str | None = strawberry.field(description="Industry of the company.")
    source: str | None = strawberry.field(description="Where the lead came from.")
    status: LeadStatus = strawberry.field(description="Where the lead stands.")
    gender: str | None = strawberry.field(description="Gender, free text.")
    no_of_employees: str | None = strawberry.field(description='A range, e.g. "100-500".')
    annual_revenue: float | None = strawberry.field(
        description="Annual revenue of the company; never negative."
    )
    territory: str | None = strawberry.field(description="Sales territory (region).")
    lead_owner: str | None = strawberry.field(description="Name of the user who owns the lead.")
    created_at: datetime = strawberry.field(description="When the lead was created.")
    created_by: str | None = strawberry.field(description="User id of the creator.")
    updated_at: datetime = strawberry.field(
        description="When the lead or its timeline last changed (a sent email counts too)."
    )
    converted_to_deal: bool = strawberry.field(
        description="Whether the lead was converted to a deal (see `deal`)."
    )

    @strawberry.field(description="First and last name.")
    def full_name(self, root: Parent[LeadDocument]) -> str:
        return leads.full_name(root)

    @strawberry.field(graphql_type=list[Activity], description="The timeline, newest first.")
    def activities(self, root: Parent[LeadDocument]) -> list[TimelineEntry]:
        return timeline(root)

    @strawberry.field(description="How many timeline entries the lead has.")
    def activities_count(self, root: Parent[LeadDocument]) -> int:
        return root.activities_count

    @strawberry.field(graphql_type=DealType | None, description="The deal it was converted to.")
    async def deal(self, root: Parent[LeadDocument], info: Info) -> DealDocument | None:
        return await load_optional(info.context.loaders.deal_by_deal_id, root.deal_id)

    @strawberry.field(graphql_type=list[EmailType], description="Emails sent, newest first.")
    async def emails(self, root: Parent[LeadDocument], info: Info) -> list[EmailDocument]:
        return await info.context.loaders.emails_by_lead_id.load(root.lead_id)

    @strawberry.field(graphql_type=list[CallType], description="Calls logged, newest first.")
    async def calls(self, root: Parent[LeadDocument], info: Info) -> list[CallDocument]:
        return await info.context.loaders.calls_by_lead_id.load(root.lead_id)

    @strawberry.field(graphql_type=list[TaskType], description="Tasks, newest first.")
    async def tasks(self, root: Parent[LeadDocument], info: Info) -> list[TaskDocument]:
        return await info.context.loaders.tasks_by_lead_id.load(root.lead_id)

    @strawberry.field(graphql_type=list[NoteType], description="Notes, newest first.")
    async def notes(self, root: Parent[LeadDocument], info: Info) -> list[NoteDocument]:
        return await info.context.loaders.notes_by_lead_id.load(root.lead_id)


@strawberry.input(description="Which leads to list; all given conditions must hold.")
class LeadFilter:
    status: list[LeadStatus] | None = strawberry.field(
        default=None, description="Any of these statuses; an empty list matches no lead."
    )
    lead_owner: str | None = strawberry.field(
        default=None, description="Exactly this owner name (case-sensitive)."
    )
    source: str | None = strawberry.field(
        default=None, description="Exactly this source (case-sensitive)."
    )
    industry: str | None = strawberry.field(
        default=None, description="Exactly this industry (case-sensitive)."
    )
    territory: str | None = strawberry.field(
        default=None, description="Exactly this territory (case-sensitive)."
    )
    converted_to_deal: bool | None = strawberry.field(
        default=None, description="Only converted (true) or only unconverted (false) leads."
    )
    created_after: datetime | None = strawberry.field(
        default=None, description="Created at or after this time (inclusive)."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Created before this time (exclusive)."
    )
    search: str | None = strawberry.field(
        default=None,
        description="Words matched case-insensitively, as typed, against first and last "
        "name, email, organization and lead id; every word must match.",
    )


@strawberry.input(description="How to order the lead list.")
class LeadOrder:
    field: LeadOrderField = strawberry.field(
        description="What to sort by; leads with equal values keep a stable order."
    )
    direction: OrderDirection = strawberry.field(description="Ascending or descending.")


@strawberry.input(
    description="A new lead. Only firstName is required. Strings are trimmed; blank optional "
    "strings are stored as null."
)
class CreateLeadInput:
    first_name: str = strawberry.field(description="Required, at most 100 characters.")
    salutation: str | None = strawberry.field(
        default=None, description='Form of address ("Mr", "Dr"), at most 20 characters.'
    )
    last_name: str | None = strawberry.field(default=None, description="At most 100 characters.")
    email: str | None = strawberry.field(
        default=None, description="An address like name@example.com, at most 254 characters."
    )
    mobile: str | None = strawberry.field(
        default=None, description="Digits, spaces and + ( ) . - only; 3 to 32 characters."
    )
    organization: str | None = strawberry.field(
        default=None, description="Company name, at most 200 characters."
    )
    website: str | None = strawberry.field(default=None, description="At most 2048 characters.")
    job_title: str | None = strawberry.field(default=None, description="At most 200 characters.")
    industry: str | None = strawberry.field(default=None, description="At most 100 characters.")
    source: str | None = strawberry.field(
        default=None, description="Where the lead came from, at most 100 characters."
    )
    status: LeadStatus = strawberry.field(default=LeadStatus.NEW, description="Defaults to NEW.")
    gender: str | None = strawberry.field(default=None, description="At most 50 characters.")
    no_of_employees: str | None = strawberry.field(
        default=None, description='A range, e.g. "100-500"; at most 50 characters.'
    )
    annual_revenue: float | None = strawberry.field(
        default=None, description="Must not be negative."
    )
    territory: str | None = strawberry.field(default=None, description="At most 100 characters.")
    lead_owner: str | None = strawberry.field(
        default=None,
        description="Owner's name, at most 200 characters; defaults to the caller's name.",
    )


@strawberry.input(
    description="Changes to a lead: omitted fields stay, null (or a blank string) clears a "
    "field. Limits as in CreateLeadInput."
)
class UpdateLeadInput:
    first_name: str | None = strawberry.field(
        default=strawberry.UNSET, description="Cannot be cleared; at most 100 characters."
    )
    salutation: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 20 characters."
    )
    last_name: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 100 characters."
    )
    email: str | None = strawberry.field(
        default=strawberry.UNSET, description="An address like name@example.com."
    )
    mobile: str | None = strawberry.field(
        default=strawberry.UNSET, description="Digits, spaces and + ( ) . - only."
    )
    organization: str | None = strawberry.field(
        default=strawberry.UNSET, description="Company name, at most 200 characters."
    )
    website: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 2048 characters."
    )
    job_title: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 200 characters."
    )
    industry: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 100 characters."
    )
    source: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 100 characters."
    )
    status: LeadStatus | None = strawberry.field(
        default=strawberry.UNSET,
        description="Cannot be null; a change is recorded as STATUS_CHANGED.",
    )
    gender: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 50 characters."
    )
    no_of_employees: str | None = strawberry.field(
        default=strawberry.UNSET, description='A range, e.g. "100-500".'
    )
    annual_revenue: float | None = strawberry.field(
        default=strawberry.UNSET, description="Must not be negative."
    )
    territory: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 100 characters."
    )
    lead_owner: str | None = strawberry.field(
        default=strawberry.UNSET, description="Owner's name, at most 200 characters."
    )


@strawberry.type(description="The created lead.")
class CreateLeadPayload:
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead, description="The new lead, with its lead id and CREATED entry."
    )


@strawberry.type(description="The lead as it is after the change.")
class UpdateLeadPayload:
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead, description="The lead after the change, with its new entries."
    )


@strawberry.type(description="What a lead delete removed.")
class DeleteLeadPayload:
    lead_id: str = strawberry.field(description="The deleted lead's id.")
    deleted_emails: int = strawberry.field(description="How many of its emails were deleted.")
    deleted_calls: int = strawberry.field(description="How many of its calls were deleted.")
    deleted_tasks: int = strawberry.field(description="How many of its tasks were deleted.")
    deleted_notes: int = strawberry.field(description="How many of its notes were deleted.")
