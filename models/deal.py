"""The `deals` collection: what a lead becomes when converted."""

from enum import Enum

from beanie import PydanticObjectId
from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument, StoredDateTime
from models.fields import (
    AnnualRevenue,
    Industry,
    NoOfEmployees,
    Organization,
    Source,
    Territory,
    Website,
)


class DealStatus(Enum):
    QUALIFICATION = "Qualification"
    DEMO_MAKING = "Demo/Making"
    PROPOSAL_QUOTATION = "Proposal/Quotation"
    NEGOTIATION = "Negotiation"
    READY_TO_CLOSE = "Ready to Close"
    WON = "Won"
    LOST = "Lost"


class DealDocument(CrmDocument):
    deal_id: str
    # None on a deal stored without it, until the start-up migration numbers it.
    deal_number: int | None = Field(default=None, alias="dealNumber")
    lead_id: str | None = None
    status: DealStatus = DealStatus.QUALIFICATION
    deal_owner: str | None = Field(default=None, alias="dealOwner")
    # Copied from the lead at conversion: declared with the lead's own field types.
    organization: Organization = None
    website: Website = None
    territory: Territory = None
    industry: Industry = None
    source: Source = None
    no_of_employees: NoOfEmployees = None
    annual_revenue: AnnualRevenue = None
    organization_id: PydanticObjectId | None = Field(default=None, alias="organizationId")
    contact_id: PydanticObjectId | None = Field(default=None, alias="contactId")
    created_at: StoredDateTime = Field(alias="createdAt")
    created_by: str | None = Field(default=None, alias="createdBy")

    class Settings:
        name = "deals"
        indexes = [
            IndexModel("deal_id", unique=True),
            IndexModel([("dealNumber", 1)], unique=True, sparse=True),
            # One deal per lead: the unique index is what makes a second conversion fail.
            IndexModel("lead_id", unique=True, sparse=True),
            IndexModel("mergeId", sparse=True),  # a deal a merge moved (unmergeLeads)
            IndexModel([("createdAt", 1), ("_id", 1)]),
        ]
