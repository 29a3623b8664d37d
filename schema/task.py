"""Task type and the createTask / updateTask mutations."""

from datetime import datetime

import strawberry

from models.lead import LeadDocument
from models.task import TaskDocument, TaskPriority, TaskStatus
from resolvers.context import Info
from resolvers.task import create_task, update_task
from schema.common import admin_field, provided
from schema.lead import Lead

strawberry.enum(TaskStatus, description="Progress of a task.")
strawberry.enum(TaskPriority, description="How urgent a task is.")


@strawberry.type(description="A follow-up task on a lead.")
class Task:
    id: strawberry.ID
    lead_id: str
    title: str
    description: str | None
    status: TaskStatus
    assigned_to: str | None = strawberry.field(description="Name of the assignee.")
    due_date: datetime | None
    priority: TaskPriority
    created_at: datetime
    created_by: str | None = strawberry.field(description="Name of the user who created it.")
    updated_at: datetime | None


@strawberry.input(description="A task to create. Defaults: BACKLOG, MEDIUM.")
class CreateTaskInput:
    title: str
    description: str | None = None
    status: TaskStatus = TaskStatus.BACKLOG
    assigned_to: str | None = None
    due_date: datetime | None = None
    priority: TaskPriority = TaskPriority.MEDIUM


@strawberry.input(description="Changes to a task: omitted fields stay, null clears a field.")
class UpdateTaskInput:
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    status: TaskStatus | None = strawberry.UNSET
    assigned_to: str | None = strawberry.UNSET
    due_date: datetime | None = strawberry.UNSET
    priority: TaskPriority | None = strawberry.UNSET


@strawberry.type(description="The task and the lead with its new timeline entry.")
class TaskPayload:
    task: TaskDocument = strawberry.field(graphql_type=Task)
    lead: LeadDocument = strawberry.field(graphql_type=Lead)


@strawberry.type(description="The created task and the lead with its TASK_CREATED entry.")
class CreateTaskPayload(TaskPayload):
    pass


@strawberry.type(description="The changed task and the lead with its TASK_UPDATED entry.")
class UpdateTaskPayload(TaskPayload):
    pass


@strawberry.type
class TaskMutation:
    @admin_field(description="Create a task on a lead (a TASK_CREATED entry).")
    async def create_task(
        self, info: Info, lead_id: str, input: CreateTaskInput
    ) -> CreateTaskPayload:
        task, lead = await create_task(info.context.user, lead_id, provided(input))
        return CreateTaskPayload(task=task, lead=lead)

    @admin_field(description="Change a task (a TASK_UPDATED entry on its lead).")
    async def update_task(
        self, info: Info, id: strawberry.ID, input: UpdateTaskInput
    ) -> UpdateTaskPayload:
        task, lead = await update_task(info.context.user, id, provided(input))
        return UpdateTaskPayload(task=task, lead=lead)
