"""Task type and the createTask / updateTask mutations."""

from datetime import datetime

import strawberry
from strawberry import Parent

from models.lead import LeadDocument
from models.task import TaskDocument, TaskPriority, TaskStatus
from schema.common import describe_values
from schema.lead import Lead
from services.tasks import task_version

strawberry.enum(TaskStatus, description="Progress of a task.")
strawberry.enum(TaskPriority, description="How urgent a task is.")
describe_values(
    TaskStatus,
    BACKLOG="Not planned yet (the default).",
    TODO="Planned, not started.",
    IN_PROGRESS="Being worked on.",
    DONE="Finished.",
    CANCELED="Dropped.",
)
describe_values(
    TaskPriority,
    LOW="Can wait.",
    MEDIUM="Normal (the default).",
    HIGH="Urgent.",
)


@strawberry.type(description="A follow-up task on a lead.")
class Task:
    id: strawberry.ID = strawberry.field(
        description="Database id (ObjectId hex); what updateTask takes."
    )
    lead_id: str = strawberry.field(description='The lead\'s human id, "LEAD-001".')
    title: str = strawberry.field(description="What is to be done.")
    description: str | None = strawberry.field(description="Details, free text.")
    status: TaskStatus = strawberry.field(description="Progress.")
    assigned_to: str | None = strawberry.field(description="Name of the assignee.")
    due_date: datetime | None = strawberry.field(description="When it is due.")
    priority: TaskPriority = strawberry.field(description="How urgent it is.")
    created_at: datetime = strawberry.field(description="When it was created.")
    created_by: str | None = strawberry.field(description="Name of the user who created it.")

    @strawberry.field(
        description="When it last changed (its creation time if it never changed); pass it "
        "to updateTask as `expectedUpdatedAt`."
    )
    def updated_at(self, root: Parent[TaskDocument]) -> datetime:
        return task_version(root)


@strawberry.input(description="A task to create. Defaults: BACKLOG, MEDIUM.")
class CreateTaskInput:
    title: str = strawberry.field(description="Required, at most 200 characters.")
    description: str | None = strawberry.field(
        default=None, description="At most 10,000 characters."
    )
    status: TaskStatus = strawberry.field(
        default=TaskStatus.BACKLOG, description="Defaults to BACKLOG."
    )
    assigned_to: str | None = strawberry.field(
        default=None, description="Name of the assignee, at most 200 characters."
    )
    due_date: datetime | None = strawberry.field(default=None, description="When it is due.")
    priority: TaskPriority = strawberry.field(
        default=TaskPriority.MEDIUM, description="Defaults to MEDIUM."
    )


@strawberry.input(description="Changes to a task: omitted fields stay, null clears a field.")
class UpdateTaskInput:
    title: str | None = strawberry.field(
        default=strawberry.UNSET, description="Cannot be cleared; at most 200 characters."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="At most 10,000 characters."
    )
    status: TaskStatus | None = strawberry.field(
        default=strawberry.UNSET, description="Cannot be null."
    )
    assigned_to: str | None = strawberry.field(
        default=strawberry.UNSET, description="Name of the assignee, at most 200 characters."
    )
    due_date: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="When it is due."
    )
    priority: TaskPriority | None = strawberry.field(
        default=strawberry.UNSET, description="Cannot be null."
    )


@strawberry.type(description="The task and the lead with its new timeline entry.")
class TaskPayload:
    task: TaskDocument = strawberry.field(graphql_type=Task, description="The task as stored now.")
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead, description="The task's lead, with its timeline."
    )


@strawberry.type(description="The created task and the lead with its TASK_CREATED entry.")
class CreateTaskPayload(TaskPayload):
    pass


@strawberry.type(description="The changed task and the lead with its TASK_UPDATED entry.")
class UpdateTaskPayload(TaskPayload):
    pass
