"""The `leads` collection."""

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import pymongo
from pydantic import Field, PrivateAttr, ValidatorFunctionWrapHandler, model_validator
from pymongo import IndexModel

from models.activity import Activity
from models.base import CrmDocument

# What a list without the timeline gets instead of `activities` (see services/leads.py).
ACTIVITIES_COUNT = "activitiesCount"


class LeadStatus(Enum):
    NEW = "New"
    CONTACTED = "Contacted"
    NURTURE = "Nurture"
    QUALIFIED = "Qualified"
    UNQUALIFIED = "Unqualified"
    JUNK = "Junk"


class LeadDocument(CrmDocument):
    lead_id: str
    # The numeric part of lead_id: orders leads by id correctly past LEAD-999.
    lead_number: int = Field(alias="leadNumber")
    salutation: str | None = None
    first_name: str = Field(alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    email: str | None = None
    mobile: str | None = None
    organization: str | None = None
    website: str | None = None
    job_title: str | None = Field(default=None, alias="jobTitle")
    industry: str | None = None
    source: str | None = None
    status: LeadStatus = LeadStatus.NEW
    gender: str | None = None
    no_of_employees: str | None = Field(default=None, alias="noOfEmployees")
    annual_revenue: float | None = Field(default=None, alias="annualRevenue")
    territory: str | None = None
    lead_owner: str | None = Field(default=None, alias="leadOwner")
    created_at: datetime = Field(alias="createdAt")
    created_by: str | None = Field(default=None, alias="createdBy")
    updated_at: datetime = Field(alias="updatedAt")
    converted_to_deal: bool = Field(default=False, alias="convertedToDeal")
    deal_id: str | None = Field(default=None, alias="dealId")
    activities: list[Activity] = Field(default_factory=list)
    # Lists that do not show the timeline have the database count it instead of sending it.
    _activities_count: int | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _take_counted_activities(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        counted = data.get(ACTIVITIES_COUNT) if isinstance(data, Mapping) else None
        lead = handler(data)
        if counted is not None:
            lead._activities_count = counted
        return lead

    @property
    def activities_count(self) -> int:
        return len(self.activities) if self._activities_count is None else self._activities_count

    class Settings:
        name = "leads"
        indexes = [
            # The seed's recommended indexes, with MongoDB's default names (lead_id_1, …),
            # so a database that already has them is used as it is.
            IndexModel("lead_id", unique=True),
            IndexModel("email"),
            IndexModel("status"),
            IndexModel([("createdAt", pymongo.DESCENDING)]),
            # Keyset pagination: each order field with _id as the tie-breaker.
            IndexModel([("createdAt", 1), ("_id", 1)]),
            IndexModel([("updatedAt", 1), ("_id", 1)]),
            IndexModel("leadNumber", unique=True, sparse=True),
            IndexModel([("leadNumber", 1), ("_id", 1)]),
            IndexModel([("annualRevenue", 1), ("_id", 1)]),
            IndexModel([("firstName", 1), ("_id", 1)]),
            # LeadFilter equality filters.
            IndexModel("leadOwner"),
            IndexModel("source"),
            IndexModel("industry"),
            IndexModel("territory"),
            IndexModel("convertedToDeal"),
        ]
