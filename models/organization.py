"""The `organizations` collection: companies deals are made with."""

from pymongo import IndexModel

from models.base import CrmDocument
from models.fields import AnnualRevenue, Industry, NoOfEmployees, Territory, Website


class OrganizationDocument(CrmDocument):
    name: str
    # Copied from the lead at conversion: declared with the lead's own field types.
    website: Website = None
    industry: Industry = None
    no_of_employees: NoOfEmployees = None
    annual_revenue: AnnualRevenue = None
    territory: Territory = None

    class Settings:
        name = "organizations"
        # Conversion reuses an organization by its exact name: one per name.
        indexes = [IndexModel("name", unique=True)]
