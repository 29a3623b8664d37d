"""The `lead_tasks` collection."""

from datetime import datetime
from enum import Enum

from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument


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
    due_date: datetime | None = Field(default=None, alias="dueDate")
    priority: TaskPriority = TaskPriority.MEDIUM
    created_at: datetime = Field(alias="createdAt")
    created_by: str | None = Field(default=None, alias="createdBy")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")

    class Settings:
        name = "lead_tasks"
        indexes = [IndexModel("lead_id")]
