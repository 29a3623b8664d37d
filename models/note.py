"""The `lead_notes` collection."""

from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument, StoredDateTime


class NoteDocument(CrmDocument):
    lead_id: str
    title: str | None = None
    content: str
    created_at: StoredDateTime = Field(alias="createdAt")
    created_by: str | None = Field(default=None, alias="createdBy")

    class Settings:
        name = "lead_notes"
        indexes = [IndexModel("lead_id"), IndexModel("mergeId", sparse=True)]  # merge: unmergeLeads
