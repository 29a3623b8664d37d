"""createTask and updateTask: read the arguments, call a service, return."""

from typing import Annotated

import strawberry

from resolvers.arguments import ExpectedUpdatedAtArgument, LeadIdArgument, provided
from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.task import CreateTaskInput, CreateTaskPayload, UpdateTaskInput, UpdateTaskPayload
from services.policy import Action
from services.tasks import create_task, update_task


@strawberry.type
class TaskMutation:
    @permission_field(
        Action.WRITE,
        description="Create a task on a lead (a TASK_CREATED entry). Errors: NOT_FOUND, "
        "BAD_USER_INPUT.",
    )
    async def create_task(
        self,
        info: Info,
        lead_id: LeadIdArgument,
        input: Annotated[CreateTaskInput, strawberry.argument(description="The task.")],
    ) -> CreateTaskPayload:
        task, lead = await create_task(info.context.user, lead_id, provided(input))
        return CreateTaskPayload(task=task, lead=lead)

    @permission_field(
        Action.WRITE,
        description="Change a task (one TASK_UPDATED entry on its lead; none when nothing "
        "changes). Errors: NOT_FOUND, BAD_USER_INPUT, CONFLICT (changed since "
        "`expectedUpdatedAt`: reload; or busy task: retry).",
    )
    async def update_task(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The task's `id` (24 hex digits).")
        ],
        input: Annotated[
            UpdateTaskInput, strawberry.argument(description="Only the fields to change.")
        ],
        expected_updated_at: ExpectedUpdatedAtArgument = None,
    ) -> UpdateTaskPayload:
        task, lead = await update_task(
            info.context.user, id, provided(input), expected_updated_at=expected_updated_at
        )
        return UpdateTaskPayload(task=task, lead=lead)
