"""Lead queries and mutations: read the arguments, call a service, return."""

from typing import Annotated

import strawberry

from models.fields import LeadStatus
from models.lead import LeadDocument
from resolvers.arguments import (
    AfterArgument,
    ExpectedUpdatedAtArgument,
    FirstArgument,
    LeadIdArgument,
    provided,
    selects,
    shows_items,
)
from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.common import Connection, OrderDirection
from schema.lead import (
    AssignLeadsPayload,
    CreateLeadInput,
    CreateLeadPayload,
    DeleteLeadPayload,
    Lead,
    LeadFilter,
    LeadOrder,
    UpdateLeadInput,
    UpdateLeadPayload,
)
from services import assignment, leads
from services.deletion import DeletedLead, delete_lead
from services.leads import LeadOrderField
from services.pagination import DEFAULT_PAGE_SIZE, Order, unread_page
from services.policy import Action

DEFAULT_ORDER = LeadOrder(field=LeadOrderField.CREATED_AT, direction=OrderDirection.DESC)


OwnerIdArgument = Annotated[
    str, strawberry.argument(description="User id (`sub`) of the new owner (1 to 200 chars).")
]
OwnerNameArgument = Annotated[
    str,
    strawberry.argument(description="Display name of the new owner: the lead's `leadOwner`."),
]


@strawberry.type
class LeadQuery:
    @permission_field(
        Action.READ,
        graphql_type=Lead | None,
        description="One lead by its lead id; null with a NOT_FOUND error when there is none "
        "(or when it is not in the caller's scope: a sales user's own leads).",
    )
    async def lead(self, info: Info, lead_id: LeadIdArgument) -> LeadDocument:
        return await leads.get_lead(info.context.user, lead_id)

    @permission_field(
        Action.READ,
        description="Leads in the caller's scope (a sales user's own; all for other roles), "
        "a page at a time (newest first unless ordered). Errors: BAD_USER_INPUT for a "
        "`first` out of range or a foreign `after` cursor.",
    )
    async def leads(
        self,
        info: Info,
        first: FirstArgument = DEFAULT_PAGE_SIZE,
        after: AfterArgument = None,
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
        viewer = info.context.user
        page = (
            await leads.list_leads(
                viewer,
                first=first,
                after=after,
                filters=filters,
                order=order,
                with_timeline=selects(info, "activities"),
                with_counts=selects(info, "activitiesCount"),
            )
            if shows_items(info)
            else unread_page(first, after, order)
        )
        return Connection(page=page, order=order, count=lambda: leads.count_leads(viewer, filters))


@strawberry.type
class LeadMutation:
    @permission_field(
        Action.CREATE,
        description="Create a lead with the next lead id, owned by the caller (or by "
        "`ownerId`, which needs the assign permission); its timeline starts with "
        "CREATED. Errors: BAD_USER_INPUT (every bad field in `fieldErrors`).",
    )
    async def create_lead(
        self,
        info: Info,
        input: Annotated[CreateLeadInput, strawberry.argument(description="The new lead.")],
        owner_id: Annotated[
            str | None,
            strawberry.argument(
                description="User id (`sub`) of its owner (`leadOwnerId`); default: the "
                "caller. Another user's id needs the assign permission (admin, manager) and "
                "`input.leadOwner` (their name)."
            ),
        ] = None,
    ) -> CreateLeadPayload:
        values = provided(input)
        lead = await leads.create_lead(info.context.user, values, owner_id=owner_id)
        return CreateLeadPayload(lead=lead)

    @permission_field(
        Action.WRITE,
        description="Change a lead; one UPDATED (or STATUS_CHANGED) entry per field that really "
        "changes. Errors: NOT_FOUND, BAD_USER_INPUT, CONFLICT (changed since "
        "`expectedUpdatedAt`: reload; or busy lead: retry).",
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

    @permission_field(
        Action.WRITE,
        description="Set a lead's status; always records a STATUS_CHANGED entry, even when the "
        "status stays. Errors: NOT_FOUND, CONFLICT (busy lead; retry).",
    )
    async def update_lead_status(
        self,
        info: Info,
        lead_id: LeadIdArgument,
        status: Annotated[LeadStatus, strawberry.argument(description="The new status.")],
    ) -> UpdateLeadPayload:
        lead = await leads.update_lead_status(info.context.user, lead_id, status)
        return UpdateLeadPayload(lead=lead)

    @permission_field(
        Action.DELETE,
        description="Delete a lead with its emails, calls, tasks and notes; a deal made from "
        "it stays. All or nothing: an interrupted delete leaves the lead (or, on a replica set, "
        "everything) in place, and calling it again finishes. Errors: NOT_FOUND (no such lead; "
        "children an interrupted delete left are removed all the same), CONFLICT (children "
        "kept being added; retry).",
    )
    async def delete_lead(self, info: Info, lead_id: LeadIdArgument) -> DeleteLeadPayload:
        deleted: DeletedLead = await delete_lead(info.context.user, lead_id)
        return DeleteLeadPayload(**vars(deleted))

    @permission_field(
        Action.ASSIGN,
        description="Give a lead another owner, with an ASSIGNED entry (old and new owner) "
        "written in the same write. The payload's `leadOwnerId` tells a client whose list "
        "it still belongs in. The same owner again changes nothing. Errors: NOT_FOUND, "
        "BAD_USER_INPUT, CONFLICT (busy lead; retry).",
    )
    async def assign_lead(
        self,
        info: Info,
        lead_id: LeadIdArgument,
        owner_id: OwnerIdArgument,
        owner_name: OwnerNameArgument,
    ) -> UpdateLeadPayload:
        lead = await assignment.assign_lead(info.context.user, lead_id, owner_id, owner_name)
        return UpdateLeadPayload(lead=lead)

    @permission_field(
        Action.ASSIGN,
        description="Give every lead that matches `filter` (and is not owned by `ownerId` "
        'yet) that owner, each with its ASSIGNED entry; e.g. `{leadOwner: "Shariq Ansari"}` '
        "adopts the seed's leads, which have no `leadOwnerId`. Errors: BAD_USER_INPUT, "
        "CONFLICT (a busy lead; retry: leads already assigned are skipped).",
    )
    async def assign_leads(
        self,
        info: Info,
        filter: Annotated[
            LeadFilter,
            strawberry.argument(description="Which leads; `{}` means every lead."),
        ],
        owner_id: OwnerIdArgument,
        owner_name: OwnerNameArgument,
    ) -> AssignLeadsPayload:
        count = await assignment.assign_leads(
            info.context.user, provided(filter), owner_id, owner_name
        )
        return AssignLeadsPayload(count=count)
