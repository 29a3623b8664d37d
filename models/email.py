"""The `lead_emails` collection."""

from enum import Enum

from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument, StoredDateTime


class EmailStatus(Enum):
    SENT = "sent"
    QUEUED = "queued"
    FAILED = "failed"


class EmailDocument(CrmDocument):
    lead_id: str
    from_: str | None = Field(default=None, alias="from")
    to: str
    cc: str | None = None
    bcc: str | None = None
    subject: str
    body: str
    timestamp: StoredDateTime
    status: EmailStatus = EmailStatus.SENT
    sent_by: str | None = Field(default=None, alias="sentBy")

    class Settings:
        name = "lead_emails"
        indexes = [IndexModel("lead_id"), IndexModel("mergeId", sparse=True)]  # merge: unmergeLeads
