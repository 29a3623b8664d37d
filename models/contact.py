"""The `contacts` collection: people deals are made with."""

from beanie import PydanticObjectId
from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument
from models.fields import Email, FirstName, Gender, JobTitle, LastName, Mobile, Salutation


class ContactDocument(CrmDocument):
    # Copied from the lead at conversion: declared with the lead's own field types.
    salutation: Salutation = None
    first_name: FirstName
    last_name: LastName = None
    email: Email = None
    mobile: Mobile = None
    job_title: JobTitle = None
    gender: Gender = None
    organization_id: PydanticObjectId | None = Field(default=None, alias="organizationId")

    class Settings:
        name = "contacts"
        # Conversion reuses a contact by email: one per address (contacts without one may repeat).
        indexes = [
            IndexModel("email", unique=True, partialFilterExpression={"email": {"$type": "string"}})
        ]
