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
from resolvers import lead as leads
from resolvers.context import Info
from resolvers.lead import LeadOrderField
from resolvers.services.deletion import DeletedLead, delete_lead
from resolvers.services.pagination import DEFAULT_PAGE_SIZE, Order
from schema.activity import Activity, TimelineEntry, timeline
from schema.common import Connection, OrderDirection, admin_field, load_optional, provided

if TYPE_CHECKING:
    from schema.call import Call
    from schema.deal import Deal
    from schema.email import Email
    from schema.note import Note
    from schema.task import Task

strawberry.enum(LeadStatus, description="Where a lead stands in qualification.")
strawberry.enum(LeadOrderField, description="What the lead list can be ordered by.")

EmailType = Annotated["Email", strawberry.lazy("schema.email")]
CallType = Annotated["Call", strawberry.lazy("schema.call")]
TaskType = Annotated["Task", strawberry.lazy("schema.task")]
NoteType = Annotated["Note", strawberry.lazy("schema.note")]
DealType = Annotated["Deal", strawberry.lazy("schema.deal")]


@strawberry.type(description="A prospective customer, with everything done with them.")
class Lead:
    id: strawberry.ID = strawberry.field(description="Database id (ObjectId hex).")
    lead_id: str = strawberry.field(description='Human id, "LEAD-001".')
    salutation: str | None
    first_name: str
    last_name: str | None
    email: str | None
    mobile: str | None
    organization: str | None = strawberry.field(description="Company name.")
    website: str | None
    job_title: str | None
    industry: str | None
    source: str | None = strawberry.field(description="Where the lead came from.")
    status: LeadStatus
    gender: str | None
    no_of_employees: str | None = strawberry.field(description='A range, e.g. "100-500".')
    annual_revenue: float | None
    territory: str | None
    lead_owner: str | None = strawberry.field(description="Name of the user who owns the lead.")
    created_at: datetime
    created_by: str | None = strawberry.field(description="User id of the creator.")
    updated_at: datetime
    converted_to_deal: bool

    @strawberry.field(description="First and last name.")
    def full_name(self, root: Parent[LeadDocument]) -> str:
        return leads.full_name(root)

    @strawberry.field(graphql_type=list[Activity], description="The timeline, newest first.")
    def activities(self, root: Parent[LeadDocument]) -> list[TimelineEntry]:
        return timeline(root)

    @strawberry.field(description="How many timeline entries the lead has.")
    def activities_count(self, root: Parent[LeadDocument]) -> int:
        return len(root.activities)

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
        default=None, description="Any of these statuses."
    )
    lead_owner: str | None = None
    source: str | None = None
    industry: str | None = None
    territory: str | None = None
    converted_to_deal: bool | None = None
    created_after: datetime | None = strawberry.field(default=None, description="Inclusive.")
    created_before: datetime | None = strawberry.field(default=None, description="Exclusive.")
    search: str | None = strawberry.field(
        default=None,
        description="Words matched case-insensitively, as typed, against first and last "
        "name, email, organization and lead id; every word must match.",
    )


@strawberry.input(description="How to order the lead list.")
class LeadOrder:
    field: LeadOrderField
    direction: OrderDirection


@strawberry.input(description="A new lead. Only firstName is required.")
class CreateLeadInput:
    first_name: str
    salutation: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile: str | None = None
    organization: str | None = None
    website: str | None = None
    job_title: str | None = None
    industry: str | None = None
    source: str | None = None
    status: LeadStatus = LeadStatus.NEW
    gender: str | None = None
    no_of_employees: str | None = None
    annual_revenue: float | None = None
    territory: str | None = None
    lead_owner: str | None = strawberry.field(
        default=None, description="Defaults to the caller's name."
    )


@strawberry.input(description="Changes to a lead: omitted fields stay, null clears a field.")
class UpdateLeadInput:
    first_name: str | None = strawberry.UNSET
    salutation: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    mobile: str | None = strawberry.UNSET
    organization: str | None = strawberry.UNSET
    website: str | None = strawberry.UNSET
    job_title: str | None = strawberry.UNSET
    industry: str | None = strawberry.UNSET
    source: str | None = strawberry.UNSET
    status: LeadStatus | None = strawberry.UNSET
    gender: str | None = strawberry.UNSET
    no_of_employees: str | None = strawberry.UNSET
    annual_revenue: float | None = strawberry.UNSET
    territory: str | None = strawberry.UNSET
    lead_owner: str | None = strawberry.UNSET


@strawberry.type(description="The created lead.")
class CreateLeadPayload:
    lead: LeadDocument = strawberry.field(graphql_type=Lead)


@strawberry.type(description="The lead as it is after the change.")
class UpdateLeadPayload:
    lead: LeadDocument = strawberry.field(graphql_type=Lead)


@strawberry.type(description="What a lead delete removed.")
class DeleteLeadPayload:
    lead_id: str
    deleted_emails: int
    deleted_calls: int
    deleted_tasks: int
    deleted_notes: int


DEFAULT_ORDER = LeadOrder(field=LeadOrderField.CREATED_AT, direction=OrderDirection.DESC)


@strawberry.type
class LeadQuery:
    @admin_field(graphql_type=Lead | None, description="One lead by its lead id.")
    async def lead(self, lead_id: str) -> LeadDocument:
        return await leads.get_lead(lead_id)

    @admin_field(description="Leads, a page at a time (newest first unless ordered).")
    async def leads(
        self,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        filter: LeadFilter | None = None,
        order_by: LeadOrder | None = DEFAULT_ORDER,
    ) -> Connection[Lead]:
        filters = provided(filter)
        order_by = order_by or DEFAULT_ORDER
        order = Order(
            stored_field=order_by.field.value,
            descending=order_by.direction is OrderDirection.DESC,
        )
        page = await leads.list_leads(first=first, after=after, filters=filters, order=order)
        return Connection(page=page, order=order, count=lambda: leads.count_leads(filters))


@strawberry.type
class LeadMutation:
    @admin_field(description="Create a lead; its timeline starts with CREATED.")
    async def create_lead(self, info: Info, input: CreateLeadInput) -> CreateLeadPayload:
        return CreateLeadPayload(lead=await leads.create_lead(info.context.user, provided(input)))

    @admin_field(description="Change a lead; one UPDATED entry per changed field.")
    async def update_lead(
        self, info: Info, lead_id: str, input: UpdateLeadInput
    ) -> UpdateLeadPayload:
        lead = await leads.update_lead(info.context.user, lead_id, provided(input))
        return UpdateLeadPayload(lead=lead)

    @admin_field(description="Set a lead's status (always a STATUS_CHANGED entry).")
    async def update_lead_status(
        self, info: Info, lead_id: str, status: LeadStatus
    ) -> UpdateLeadPayload:
        lead = await leads.update_lead_status(info.context.user, lead_id, status)
        return UpdateLeadPayload(lead=lead)

    @admin_field(description="Delete a lead with its emails, calls, tasks and notes.")
    async def delete_lead(self, lead_id: str) -> DeleteLeadPayload:
        deleted: DeletedLead = await delete_lead(lead_id)
        return DeleteLeadPayload(**vars(deleted))
