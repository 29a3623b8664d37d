"""The `deals` collection: what a lead becomes when converted."""

from datetime import datetime
from enum import Enum

from beanie import PydanticObjectId
from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument


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
    deal_number: int = Field(alias="dealNumber")
    lead_id: str | None = None
    status: DealStatus = DealStatus.QUALIFICATION
    deal_owner: str | None = Field(default=None, alias="dealOwner")
    # Copied from the lead at conversion (the lead's same-named fields).
    organization: str | None = None
    website: str | None = None
    territory: str | None = None
    industry: str | None = None
    source: str | None = None
    no_of_employees: str | None = Field(default=None, alias="noOfEmployees")
    annual_revenue: float | None = Field(default=None, alias="annualRevenue")
    organization_id: PydanticObjectId | None = Field(default=None, alias="organizationId")
    contact_id: PydanticObjectId | None = Field(default=None, alias="contactId")
    created_at: datetime = Field(alias="createdAt")
    created_by: str | None = Field(default=None, alias="createdBy")

    class Settings:
        name = "deals"
        indexes = [
            IndexModel("deal_id", unique=True),
            IndexModel([("dealNumber", 1)], unique=True, sparse=True),
            # One deal per lead: the unique index is what makes a second conversion fail.
            IndexModel("lead_id", unique=True, sparse=True),
            IndexModel([("createdAt", 1), ("_id", 1)]),
        ]
