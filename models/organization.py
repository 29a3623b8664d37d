"""The `organizations` collection: companies deals are made with."""

from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument


class OrganizationDocument(CrmDocument):
    name: str
    website: str | None = None
    industry: str | None = None
    no_of_employees: str | None = Field(default=None, alias="noOfEmployees")
    annual_revenue: float | None = Field(default=None, alias="annualRevenue")
    territory: str | None = None

    class Settings:
        name = "organizations"
        # Conversion reuses an organization by its exact name: one per name.
        indexes = [IndexModel("name", unique=True)]
