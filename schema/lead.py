"""Lead type, its inputs, and the lead queries and mutations."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import Parent

from models.call import CallDocument
from models.deal import DealDocument
from models.email import EmailDocument
from models.fields import LeadFields, LeadStatus
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from resolvers.context import Info
from resolvers.dataloaders import load_optional
from schema.activity import Activity, TimelineEntry, timeline
from schema.common import OrderDirection, describe_values
from schema.fields import catalog_fields, create_input_fields, update_input_fields
from services import leads, search
from services.leads import LeadOrderField

if TYPE_CHECKING:
    from schema.call import Call
    from schema.deal import Deal
    from schema.email import Email
    from schema.note import Note
    from schema.search import DuplicateCandidate
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
DuplicateCandidateType = Annotated["DuplicateCandidate", strawberry.lazy("schema.search")]


async def _with_timeline(lead: LeadDocument, info: Info) -> LeadDocument:
    """The lead with its timeline: itself, or, read without it (by a list or a search), read
    again, in one query with the request's other such leads."""
    if not lead.timeline_omitted or lead.id is None:
        return lead
    return await info.context.loaders.lead_by_id.load(lead.id) or lead


@strawberry.type(description="A prospective customer, with everything done with them.")
@catalog_fields(LeadFields)
class Lead:
    id: strawberry.ID = strawberry.field(description="Database id (ObjectId hex).")

    @strawberry.field(description="First and last name.")
    def full_name(self, root: Parent[LeadDocument]) -> str:
        return leads.full_name(root)

    @strawberry.field(graphql_type=list[Activity], description="The timeline, newest first.")
    async def activities(self, root: Parent[LeadDocument], info: Info) -> list[TimelineEntry]:
        return timeline(await _with_timeline(root, info))

    @strawberry.field(description="How many timeline entries the lead has.")
    async def activities_count(self, root: Parent[LeadDocument], info: Info) -> int:
        counted = root.activities_count
        if counted is None:
            return len((await _with_timeline(root, info)).activities)
        return counted

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
    lead_owner_id: str | None = strawberry.field(
        default=None,
        description="Exactly this owner's user id. Never widens the caller's scope: a sales "
        "user asking for another owner's id gets no leads.",
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
        description="Words (letters and digits; accents and case do not matter), each the "
        "start of a word of the first or last name, email, organization or lead id; every "
        "word must match. At most 10 words and 200 characters. For ranked, typo-tolerant "
        "search use searchLeads.",
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
@create_input_fields(LeadFields)
class CreateLeadInput:
    pass


@strawberry.input(
    description="Changes to a lead: omitted fields stay, null (or a blank string) clears a "
    "field. Limits as in CreateLeadInput."
)
@update_input_fields(LeadFields)
class UpdateLeadInput:
    pass


@strawberry.type(description="The created lead.")
class CreateLeadPayload:
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead, description="The new lead, with its lead id and CREATED entry."
    )

    @strawberry.field(
        graphql_type=list[DuplicateCandidateType],
        description="Leads that look like the same person (one indexed query, run only when "
        "asked for): the lead is created all the same; merge them with mergeLeads.",
    )
    async def duplicates(self, info: Info) -> list[search.DuplicateCandidate]:
        return await search.duplicates_of(
            info.context.user, self.lead.model_dump(), exclude_lead_id=self.lead.lead_id
        )


@strawberry.type(description="The lead as it is after the change.")
class UpdateLeadPayload:
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead, description="The lead after the change, with its new entries."
    )


@strawberry.type(description="How many leads assignLeads gave the new owner.")
class AssignLeadsPayload:
    count: int = strawberry.field(
        description="Leads assigned (each has an ASSIGNED entry); leads the owner already "
        "had are not counted."
    )


@strawberry.type(description="What a lead delete removed.")
class DeleteLeadPayload:
    lead_id: str = strawberry.field(description="The deleted lead's id.")
    deleted_emails: int = strawberry.field(description="How many of its emails were deleted.")
    deleted_calls: int = strawberry.field(description="How many of its calls were deleted.")
    deleted_tasks: int = strawberry.field(description="How many of its tasks were deleted.")
    deleted_notes: int = strawberry.field(description="How many of its notes were deleted.")
