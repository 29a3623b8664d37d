"""Lead queries and mutations: read the arguments, call a service, return."""

from typing import Annotated

import strawberry

from models.lead import LeadDocument, LeadStatus
from resolvers.arguments import ExpectedUpdatedAtArgument, LeadIdArgument, provided, selects
from resolvers.context import Info
from resolvers.permissions import admin_field
from schema.common import Connection, OrderDirection
from schema.lead import (
    CreateLeadInput,
    CreateLeadPayload,
    DeleteLeadPayload,
    Lead,
    LeadFilter,
    LeadOrder,
    UpdateLeadInput,
    UpdateLeadPayload,
)
from services import leads
from services.deletion import DeletedLead, delete_lead
from services.leads import LeadOrderField
from services.pagination import DEFAULT_PAGE_SIZE, Order

DEFAULT_ORDER = LeadOrder(field=LeadOrderField.CREATED_AT, direction=OrderDirection.DESC)


@strawberry.type
class LeadQuery:
    @admin_field(
        graphql_type=Lead | None,
        description="One lead by its lead id; null with a NOT_FOUND error when there is none.",
    )
    async def lead(self, lead_id: LeadIdArgument) -> LeadDocument:
        return await leads.get_lead(lead_id)

    @admin_field(
        description="Leads, a page at a time (newest first unless ordered). Errors: "
        "BAD_USER_INPUT for a `first` out of range or a foreign `after` cursor."
    )
    async def leads(
        self,
        info: Info,
        first: Annotated[
            int | None, strawberry.argument(description="Page size, 0 to 100 (default 20).")
        ] = DEFAULT_PAGE_SIZE,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="Start after this cursor (`pageInfo.endCursor` or an edge's "
                "`cursor`), from a list with the same `orderBy`."
            ),
        ] = None,
        filter: Annotated[
            LeadFilter | None,
            strawberry.argument(description="Conditions the leads must meet; none: all leads."),
        ] = None,
        order_by: Annotated[
            LeadOrder | None,
            strawberry.argument(description="Sort order; default newest first."),
        ] = DEFAULT_ORDER,
    ) -> Connection[Lead]:
        filters = provided(filter)
        order_by = order_by or DEFAULT_ORDER
        order = Order(
            stored_field=order_by.field.value,
            descending=order_by.direction is OrderDirection.DESC,
        )
        page = await leads.list_leads(
            first=first,
            after=after,
            filters=filters,
            order=order,
            with_timeline=selects(info, "activities"),
        )
        return Connection(page=page, order=order, count=lambda: leads.count_leads(filters))


@strawberry.type
class LeadMutation:
    @admin_field(
        description="Create a lead with the next lead id; its timeline starts with CREATED. "
        "Errors: BAD_USER_INPUT (every bad field in `fieldErrors`)."
    )
    async def create_lead(
        self,
        info: Info,
        input: Annotated[CreateLeadInput, strawberry.argument(description="The new lead.")],
    ) -> CreateLeadPayload:
        return CreateLeadPayload(lead=await leads.create_lead(info.context.user, provided(input)))

    @admin_field(
        description="Change a lead; one UPDATED (or STATUS_CHANGED) entry per field that really "
        "changes. Errors: NOT_FOUND, BAD_USER_INPUT, CONFLICT (changed since "
        "`expectedUpdatedAt`: reload; or busy lead: retry)."
    )
    async def update_lead(
        self,
        info: Info,
        lead_id: LeadIdArgument,
        input: Annotated[
            UpdateLeadInput, strawberry.argument(description="Only the fields to change.")
        ],
        expected_updated_at: ExpectedUpdatedAtArgument = None,
    ) -> UpdateLeadPayload:
        lead = await leads.update_lead(
            info.context.user, lead_id, provided(input), expected_updated_at=expected_updated_at
        )
        return UpdateLeadPayload(lead=lead)

    @admin_field(
        description="Set a lead's status; always records a STATUS_CHANGED entry, even when the "
        "status stays. Errors: NOT_FOUND, CONFLICT (busy lead; retry)."
    )
    async def update_lead_status(
        self,
        info: Info,
        lead_id: LeadIdArgument,
        status: Annotated[LeadStatus, strawberry.argument(description="The new status.")],
    ) -> UpdateLeadPayload:
        lead = await leads.update_lead_status(info.context.user, lead_id, status)
        return UpdateLeadPayload(lead=lead)

    @admin_field(
        description="Delete a lead with its emails, calls, tasks and notes; a deal made from "
        "it stays. All or nothing: an interrupted delete leaves the lead (or, on a replica set, "
        "everything) in place, and calling it again finishes. Errors: NOT_FOUND (no such lead; "
        "children an interrupted delete left are removed all the same), CONFLICT (children "
        "kept being added; retry)."
    )
    async def delete_lead(self, lead_id: LeadIdArgument) -> DeleteLeadPayload:
        deleted: DeletedLead = await delete_lead(lead_id)
        return DeleteLeadPayload(**vars(deleted))
