"""The `leads` collection."""

from collections.abc import Mapping
from typing import Any

import pymongo
from pydantic import Field, PrivateAttr, ValidatorFunctionWrapHandler, model_validator
from pymongo import IndexModel

from models.activity import Activity
from models.base import CrmDocument
from models.fields import LeadFields

# What a list counting timelines gets instead of `activities` (see services/leads.py).
ACTIVITIES_COUNT = "activitiesCount"

# The normalized keys (python names): for queries, never shown (REST, exports).
NORMALIZED_KEYS = (
    "email_key",
    "phone_key",
    "name_key",
    "organization_key",
    "domain_key",
    "search_keys",
    "keys_version",
)


class LeadDocument(CrmDocument, LeadFields):
    """A stored lead: the catalog's fields (models/fields.py) and what only storage needs."""

    # The numeric part of lead_id: orders leads by id correctly past LEAD-999.
    # None on a lead the seed stored, until the start-up migration numbers it.
    lead_number: int | None = Field(default=None, alias="leadNumber")
    deal_id: str | None = Field(default=None, alias="dealId")
    # Normalized keys (services/normalize.py computes them; every lead writer stores them):
    # search, duplicate detection and import matching query these, never the raw fields.
    email_key: str | None = Field(default=None, alias="emailKey")
    phone_key: str | None = Field(default=None, alias="phoneKey")
    name_key: str | None = Field(default=None, alias="nameKey")
    organization_key: str | None = Field(default=None, alias="organizationKey")
    domain_key: str | None = Field(default=None, alias="domainKey")
    search_keys: list[str] = Field(default_factory=list, alias="searchKeys")
    # The key rules a lead's keys were computed by; None: stored before keys existed.
    keys_version: int | None = Field(default=None, alias="keysVersion")
    activities: list[Activity] = Field(default_factory=list)
    # A lead read without its timeline (by a list or a search that does not show it): how
    # many entries the database counted for it, when asked to (services/leads.py).
    _timeline_omitted: bool = PrivateAttr(default=False)
    _activities_count: int | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _take_counted_activities(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        counted = data.get(ACTIVITIES_COUNT) if isinstance(data, Mapping) else None
        lead = handler(data)
        if counted is not None:
            lead.omit_timeline(counted)
        return lead

    def omit_timeline(self, counted: int | None = None) -> None:
        """Marks the lead as read without its timeline (`activities` is not it)."""
        self._timeline_omitted = True
        self._activities_count = counted

    @property
    def timeline_omitted(self) -> bool:
        return self._timeline_omitted

    @property
    def activities_count(self) -> int | None:
        """The timeline's length; None for a lead read without it and not counted."""
        if self._timeline_omitted:
            return self._activities_count
        return len(self.activities)

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
            # The embedded engine sorts a page by walking one field's index (with createdAt_-1
            # and leadNumber_1; models/embedded_engine.py): cost independent of the lead count.
            IndexModel("updatedAt"),
            IndexModel("annualRevenue"),
            IndexModel("firstName"),
            # LeadFilter equality filters.
            IndexModel("leadOwner"),
            # Record scope (services/policy.py): a sales user's pages, in any order.
            IndexModel([("leadOwnerId", 1), ("createdAt", 1), ("_id", 1)]),
            IndexModel("source"),
            IndexModel("industry"),
            IndexModel("territory"),
            IndexModel("convertedToDeal"),
            # Leads an import created (models/import_job.py): `importKey` is "<job>:<row>",
            # unique, so a resumed batch never doubles a row (one field: the embedded engine
            # checks a compound sparse unique index by scanning).
            IndexModel("importKey", unique=True, sparse=True),
            IndexModel("importJobId", sparse=True),
            # Search, duplicates and import matching: one multikey index over every key.
            IndexModel("searchKeys"),
            # The start-up migration finds leads whose keys are missing or out of date.
            IndexModel("keysVersion"),
        ]
