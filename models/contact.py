"""The `contacts` collection: people deals are made with."""

from beanie import PydanticObjectId
from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument


class ContactDocument(CrmDocument):
    salutation: str | None = None
    first_name: str = Field(alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    email: str | None = None
    mobile: str | None = None
    job_title: str | None = Field(default=None, alias="jobTitle")
    gender: str | None = None
    organization_id: PydanticObjectId | None = Field(default=None, alias="organizationId")

    class Settings:
        name = "contacts"
        # Conversion reuses a contact by email: one per address (contacts without one may repeat).
        indexes = [
            IndexModel("email", unique=True, partialFilterExpression={"email": {"$type": "string"}})
        ]
