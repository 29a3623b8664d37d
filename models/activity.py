"""One entry of a lead's timeline, embedded in the lead document (`activities`)."""

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from models.base import StoredDateTime


class ActivityType(Enum):
    CREATED = "created"
    UPDATED = "updated"
    STATUS_CHANGED = "status_changed"
    EMAIL_SENT = "email_sent"
    CALL_LOGGED = "call_logged"
    TASK_CREATED = "task_created"
    TASK_UPDATED = "task_updated"
    NOTE_ADDED = "note_added"
    CONVERTED_TO_DEAL = "converted_to_deal"
    ASSIGNED = "assigned"
    MERGED = "merged"


class Activity(BaseModel):
    """Stored as the seed's `{type, description, by, timestamp}`, plus the changed field if any."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    type: ActivityType
    description: str
    by: str | None = None
    timestamp: StoredDateTime
    field: str | None = None
    old_value: str | None = Field(default=None, alias="oldValue")
    new_value: str | None = Field(default=None, alias="newValue")

    # What a merge stores on the entries it writes or moves (services/merge.py) is kept as
    # extra keys, written only there: `entryId` (a merge re-sorts a timeline, so each entry
    # keeps its id stored), `mergeId` and `mergedFrom` (unmergeLeads moves them back).
    @property
    def stored_id(self) -> str | None:
        return (self.model_extra or {}).get("entryId")

    @property
    def merge_id(self) -> str | None:
        return (self.model_extra or {}).get("mergeId")
