"""The `lead_tasks` collection."""

from enum import Enum

from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument, StoredDateTime


class TaskStatus(Enum):
    BACKLOG = "Backlog"
    TODO = "Todo"
    IN_PROGRESS = "In Progress"
    DONE = "Done"
    CANCELED = "Canceled"


class TaskPriority(Enum):
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


class TaskDocument(CrmDocument):
    lead_id: str
    title: str
    description: str | None = None
    status: TaskStatus = TaskStatus.BACKLOG
    assigned_to: str | None = Field(default=None, alias="assignedTo")
    due_date: StoredDateTime | None = Field(default=None, alias="dueDate")
    priority: TaskPriority = TaskPriority.MEDIUM
    created_at: StoredDateTime = Field(alias="createdAt")
    created_by: str | None = Field(default=None, alias="createdBy")
    updated_at: StoredDateTime | None = Field(default=None, alias="updatedAt")

    class Settings:
        name = "lead_tasks"
        indexes = [IndexModel("lead_id"), IndexModel("mergeId", sparse=True)]  # merge: unmergeLeads
