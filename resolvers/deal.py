"""Deal queries and lead conversion: read the arguments, call a service, return."""

from typing import Annotated

import strawberry

from models.deal import DealDocument
from resolvers.arguments import LeadIdArgument, provided
from resolvers.context import Info
from resolvers.permissions import admin_field
from schema.common import Connection
from schema.deal import ConvertLeadInput, ConvertLeadPayload, Deal
from services import deals
from services.conversion import convert_lead
from services.pagination import DEFAULT_PAGE_SIZE


@strawberry.type
class DealQuery:
    @admin_field(
        graphql_type=Deal | None,
        description="One deal by its deal id; null with a NOT_FOUND error when there is none.",
    )
    async def deal(
        self,
        deal_id: Annotated[
            str, strawberry.argument(description='Human id of the deal, e.g. "DEAL-001".')
        ],
    ) -> DealDocument:
        return await deals.get_deal(deal_id)

    @admin_field(
        description="Deals, newest first, a page at a time. Errors: BAD_USER_INPUT for a "
        "`first` out of range or a foreign `after` cursor."
    )
    async def deals(
        self,
        first: Annotated[
            int | None, strawberry.argument(description="Page size, 0 to 100 (default 20).")
        ] = DEFAULT_PAGE_SIZE,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="Start after this cursor (`pageInfo.endCursor` or an edge's `cursor`)."
            ),
        ] = None,
    ) -> Connection[Deal]:
        page = await deals.list_deals(first=first, after=after)
        return Connection(page=page, order=deals.DEAL_ORDER, count=deals.count_deals)


@strawberry.type
class DealMutation:
    @admin_field(
        description="Turn a lead into a deal (status QUALIFIED, a CONVERTED_TO_DEAL entry). "
        "Errors: NOT_FOUND (lead, organization or contact), BAD_USER_INPUT, CONFLICT "
        "(already converted)."
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
