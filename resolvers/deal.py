"""Deal queries and lead conversion: read the arguments, call a service, return."""

from typing import Annotated

import strawberry

from models.deal import DealDocument
from resolvers.arguments import (
    AfterArgument,
    FirstArgument,
    LeadIdArgument,
    provided,
    shows_items,
)
from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.common import Connection
from schema.deal import ConvertLeadInput, ConvertLeadPayload, Deal
from services import deals
from services.conversion import convert_lead
from services.pagination import DEFAULT_PAGE_SIZE, unread_page
from services.policy import Action


@strawberry.type
class DealQuery:
    @permission_field(
        Action.READ,
        graphql_type=Deal | None,
        description="One deal by its deal id; null with a NOT_FOUND error when there is none "
        "(or when its lead is not in the caller's scope).",
    )
    async def deal(
        self,
        info: Info,
        deal_id: Annotated[
            str, strawberry.argument(description='Human id of the deal, e.g. "DEAL-001".')
        ],
    ) -> DealDocument:
        return await deals.get_deal(info.context.user, deal_id)

    @permission_field(
        Action.READ,
        description="Deals whose lead is in the caller's scope, newest first, a page at a "
        "time. Errors: BAD_USER_INPUT for a `first` out of range or a foreign `after` cursor.",
    )
    async def deals(
        self,
        info: Info,
        first: FirstArgument = DEFAULT_PAGE_SIZE,
        after: AfterArgument = None,
    ) -> Connection[Deal]:
        viewer = info.context.user
        page = (
            await deals.list_deals(viewer, first=first, after=after)
            if shows_items(info)
            else unread_page(first, after, deals.DEAL_ORDER)
        )
        return Connection(
            page=page, order=deals.DEAL_ORDER, count=lambda: deals.count_deals(viewer)
        )


@strawberry.type
class DealMutation:
    @permission_field(
        Action.WRITE,
        description="Turn a lead into a deal (status QUALIFIED, a CONVERTED_TO_DEAL entry). "
        "Errors: NOT_FOUND (lead, organization or contact), BAD_USER_INPUT, CONFLICT "
        "(already converted).",
    )
    async def convert_lead_to_deal(
        self,
        info: Info,
        lead_id: LeadIdArgument,
        input: Annotated[
            ConvertLeadInput | None,
            strawberry.argument(description="Optional links and owner for the deal."),
        ] = None,
    ) -> ConvertLeadPayload:
        lead, deal = await convert_lead(info.context.user, lead_id, provided(input))
        return ConvertLeadPayload(lead=lead, deal=deal)
