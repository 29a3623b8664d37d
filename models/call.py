"""The `lead_calls` collection."""

from enum import Enum

from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument, StoredDateTime


class CallType(Enum):
    OUTBOUND = "Outbound Call"
    INBOUND = "Inbound Call"


class CallStatus(Enum):
    COMPLETED = "completed"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"


class CallDocument(CrmDocument):
    lead_id: str
    type: CallType = CallType.OUTBOUND
    duration: int
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    phone: str | None = None
    timestamp: StoredDateTime
    status: CallStatus = CallStatus.COMPLETED
    logged_by: str | None = Field(default=None, alias="loggedBy")

    class Settings:
        name = "lead_calls"
        indexes = [IndexModel("lead_id"), IndexModel("mergeId", sparse=True)]  # merge: unmergeLeads
