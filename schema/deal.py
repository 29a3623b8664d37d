"""Deal, Organization and Contact types; deal queries and lead conversion."""

from datetime import datetime

import strawberry
from strawberry import Parent

from models.contact import ContactDocument
from models.deal import DealDocument, DealStatus
from models.fields import copied_from_lead
from models.lead import LeadDocument
from models.organization import OrganizationDocument
from resolvers.context import Info
from resolvers.dataloaders import load_optional
from schema.common import describe_values
from schema.fields import catalog_fields
from schema.lead import Lead

strawberry.enum(DealStatus, description="Stage of a deal in the pipeline.")
describe_values(
    DealStatus,
    QUALIFICATION="Just converted: checking fit and budget (where every deal starts).",
    DEMO_MAKING="Showing a demo.",
    PROPOSAL_QUOTATION="A proposal or quotation was sent.",
    NEGOTIATION="Negotiating terms.",
    READY_TO_CLOSE="Agreed; waiting to be signed.",
    WON="Closed: the customer bought.",
    LOST="Closed: the customer did not buy.",
)


@strawberry.type(description="A company deals are made with.")
@catalog_fields(OrganizationDocument, copied_from_lead(OrganizationDocument))
class Organization:
    id: strawberry.ID = strawberry.field(
        description="Database id (ObjectId hex); pass it as ConvertLeadInput.organizationId."
    )
    name: str = strawberry.field(description="Company name; unique.")


@strawberry.type(description="A person deals are made with.")
@catalog_fields(ContactDocument, copied_from_lead(ContactDocument))
class Contact:
    id: strawberry.ID = strawberry.field(
        description="Database id (ObjectId hex); pass it as ConvertLeadInput.contactId."
    )

    @strawberry.field(graphql_type=Organization | None, description="The company they work for.")
    async def organization(
        self, root: Parent[ContactDocument], info: Info
    ) -> OrganizationDocument | None:
        return await load_optional(info.context.loaders.organization_by_id, root.organization_id)


@strawberry.type(description="An opportunity, made from a converted lead.")
@catalog_fields(
    DealDocument,
    # `organization` is the linked Organization below, not the copied name.
    [name for name in copied_from_lead(DealDocument) if name != "organization"],
    describe=lambda description: f"Copied from the lead: {description[0].lower()}{description[1:]}",
)
class Deal:
    id: strawberry.ID = strawberry.field(description="Database id (ObjectId hex).")
    deal_id: str = strawberry.field(description='Human id, "DEAL-001".')
    lead_id: str | None = strawberry.field(
        description="The lead it was converted from (kept after that lead is deleted)."
    )
    status: DealStatus = strawberry.field(description="Pipeline stage; starts at QUALIFICATION.")
    deal_owner: str | None = strawberry.field(
        description="Name of the user who owns the deal; by default the lead's owner."
    )
    created_at: datetime = strawberry.field(description="When the lead was converted.")
    created_by: str | None = strawberry.field(description="Name of the user who converted it.")

    @strawberry.field(
        graphql_type=Organization | None,
        description="The company; null when the lead had no organization and none was given.",
    )
    async def organization(
        self, root: Parent[DealDocument], info: Info
    ) -> OrganizationDocument | None:
        return await load_optional(info.context.loaders.organization_by_id, root.organization_id)

    @strawberry.field(graphql_type=Contact | None, description="The person the deal is with.")
    async def contact(self, root: Parent[DealDocument], info: Info) -> ContactDocument | None:
        return await load_optional(info.context.loaders.contact_by_id, root.contact_id)


@strawberry.input(
    description="Links for the new deal. Without ids, a contact with the lead's email and an "
    "organization with the lead's organization name are reused, else created."
)
class ConvertLeadInput:
    organization_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="An existing Organization's id (24 hex digits) to link; NOT_FOUND if absent.",
    )
    contact_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="An existing Contact's id (24 hex digits) to link; NOT_FOUND if absent.",
    )
    deal_owner: str | None = strawberry.field(
        default=None, description="At most 200 characters; defaults to the lead's owner."
    )


@strawberry.type(description="The converted lead and its new deal.")
class ConvertLeadPayload:
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead,
        description="The lead, now QUALIFIED and convertedToDeal, with its new entries.",
    )
    deal: DealDocument = strawberry.field(graphql_type=Deal, description="The new deal.")
