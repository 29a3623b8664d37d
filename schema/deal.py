"""Deal, Organization and Contact types; deal queries and lead conversion."""

from datetime import datetime

import strawberry
from strawberry import Parent

from models.contact import ContactDocument
from models.deal import DealDocument, DealStatus
from models.lead import LeadDocument
from models.organization import OrganizationDocument
from resolvers import deal as deals
from resolvers.context import Info
from resolvers.services.conversion import convert_lead
from resolvers.services.pagination import DEFAULT_PAGE_SIZE
from schema.common import Connection, admin_field, load_optional, provided
from schema.lead import Lead

strawberry.enum(DealStatus, description="Stage of a deal in the pipeline.")


@strawberry.type(description="A company deals are made with.")
class Organization:
    id: strawberry.ID
    name: str
    website: str | None
    industry: str | None
    no_of_employees: str | None
    annual_revenue: float | None
    territory: str | None


@strawberry.type(description="A person deals are made with.")
class Contact:
    id: strawberry.ID
    salutation: str | None
    first_name: str
    last_name: str | None
    email: str | None
    mobile: str | None
    job_title: str | None
    gender: str | None

    @strawberry.field(graphql_type=Organization | None)
    async def organization(
        self, root: Parent[ContactDocument], info: Info
    ) -> OrganizationDocument | None:
        return await load_optional(info.context.loaders.organization_by_id, root.organization_id)


@strawberry.type(description="An opportunity, made from a converted lead.")
class Deal:
    id: strawberry.ID
    deal_id: str = strawberry.field(description='Human id, "DEAL-001".')
    lead_id: str | None = strawberry.field(description="The lead it was converted from.")
    status: DealStatus
    deal_owner: str | None
    annual_revenue: float | None
    website: str | None
    territory: str | None
    industry: str | None
    source: str | None
    no_of_employees: str | None
    created_at: datetime
    created_by: str | None = strawberry.field(description="Name of the user who converted it.")

    @strawberry.field(graphql_type=Organization | None)
    async def organization(
        self, root: Parent[DealDocument], info: Info
    ) -> OrganizationDocument | None:
        return await load_optional(info.context.loaders.organization_by_id, root.organization_id)

    @strawberry.field(graphql_type=Contact | None)
    async def contact(self, root: Parent[DealDocument], info: Info) -> ContactDocument | None:
        return await load_optional(info.context.loaders.contact_by_id, root.contact_id)


@strawberry.input(
    description="Links for the new deal. Without ids, a contact with the lead's email and an "
    "organization with the lead's organization name are reused, else created."
)
class ConvertLeadInput:
    organization_id: strawberry.ID | None = None
    contact_id: strawberry.ID | None = None
    deal_owner: str | None = strawberry.field(
        default=None, description="Defaults to the lead's owner."
    )


@strawberry.type(description="The converted lead and its new deal.")
class ConvertLeadPayload:
    lead: LeadDocument = strawberry.field(graphql_type=Lead)
    deal: DealDocument = strawberry.field(graphql_type=Deal)


@strawberry.type
class DealQuery:
    @admin_field(graphql_type=Deal | None, description="One deal by its deal id.")
    async def deal(self, deal_id: str) -> DealDocument:
        return await deals.get_deal(deal_id)

    @admin_field(description="Deals, newest first, a page at a time.")
    async def deals(
        self, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[Deal]:
        page = await deals.list_deals(first=first, after=after)
        return Connection(page=page, order=deals.DEAL_ORDER, count=deals.count_deals)


@strawberry.type
class DealMutation:
    @admin_field(description="Turn a lead into a deal (QUALIFIED, CONVERTED_TO_DEAL entry).")
    async def convert_lead_to_deal(
        self, info: Info, lead_id: str, input: ConvertLeadInput | None = None
    ) -> ConvertLeadPayload:
        lead, deal = await convert_lead(info.context.user, lead_id, provided(input))
        return ConvertLeadPayload(lead=lead, deal=deal)
