"""Tasks to follow a lead up."""

from collections.abc import Mapping
from datetime import datetime

from pymongo import ReturnDocument

from models.activity import ActivityType
from models.base import stored_fields, utc_now
from models.fields import Choice, FieldSpec, Text
from models.lead import LeadDocument
from models.task import TaskDocument
from services import changes, policy, timeline, versions
from services.children import add_to_lead
from services.documents import decode
from services.errors import Conflict, not_found
from services.leads import get_lead
from services.policy import Action
from services.validation import clean, object_id
from services.viewer import Viewer

TASK_RULES: dict[str, FieldSpec] = {
    "title": Text(max_length=200, required=True),
    "description": Text(max_length=10_000),
    "assigned_to": Text(max_length=200),
    "status": Choice(),
    "priority": Choice(),
}
MAX_WRITE_ATTEMPTS = 25


async def create_task(
    viewer: Viewer, lead_id: str, values: Mapping[str, object]
) -> tuple[TaskDocument, LeadDocument]:
    policy.require(viewer, Action.WRITE)
    fields = clean(values, TASK_RULES)
    lead = await get_lead(viewer, lead_id)
    now = utc_now()
    task = TaskDocument.model_validate(
        {
            **{name: value for name, value in fields.items() if value is not None},
            "lead_id": lead.lead_id,
            "created_at": now,
            "created_by": viewer.name,
            "updated_at": now,
        }
    )
    scope = policy.lead_scope(viewer)
    return await add_to_lead(lead, task, timeline.task_created(task), scope=scope)


async def _lead_in_scope(viewer: Viewer, lead_id: str) -> bool:
    query = policy.scoped(viewer, {"lead_id": lead_id})
    return await LeadDocument.get_pymongo_collection().find_one(query, {"_id": 1}) is not None


def task_version(task: TaskDocument) -> datetime:
    """What `updatedAt` shows and `expectedUpdatedAt` is checked against: a task stored
    without `updatedAt` (made before tasks were stamped, or imported) never changed, so its
    version is its creation time."""
    return task.updated_at or task.created_at


async def update_task(
    viewer: Viewer,
    task_id: str,
    values: Mapping[str, object],
    *,
    expected_updated_at: datetime | None = None,
) -> tuple[TaskDocument, LeadDocument]:
    """Apply the given fields; one TASK_UPDATED entry on the lead lists what changed.

    With `expected_updated_at`, only if the task is still at that version (else CONFLICT).
    """
    policy.require(viewer, Action.WRITE)
    fields = clean(values, TASK_RULES)
    key = object_id(task_id)
    scope = policy.lead_scope(viewer)
    for _ in range(MAX_WRITE_ATTEMPTS):
        raw_task = await TaskDocument.get_pymongo_collection().find_one({"_id": key})
        if raw_task is None:
            raise not_found("Task", task_id)
        task = decode(TaskDocument, raw_task, "Task")
        if scope and not await _lead_in_scope(viewer, task.lead_id):
            raise not_found("Task", task_id)  # a task is in scope when its lead is
        # Checked on every attempt, so a write that lost a race becomes CONFLICT, not a retry.
        versions.check("Task", task_id, task_version(task), expected_updated_at)
        changed = changes.diff(task, fields)
        if not changed:
            return task, await get_lead(viewer, task.lead_id)
        now = versions.next_version(task_version(task), utc_now())
        # The version read (null included) is pinned in the filter: check and write are atomic.
        pinned = [*changed, "updated_at"] if expected_updated_at else changed
        raw = await TaskDocument.get_pymongo_collection().find_one_and_update(
            changes.pinned(task, pinned),
            {"$set": stored_fields(TaskDocument, {**changed, "updated_at": now})},
            return_document=ReturnDocument.AFTER,
        )
        if raw is None:
            continue  # changed meanwhile: re-read, so the timeline shows true old values
        summary = "; ".join(
            f"{TaskDocument.model_fields[name].alias or name} "
            f"{timeline.shown(getattr(task, name))} → {timeline.shown(value)}"
            for name, value in changed.items()
        )
        entry = timeline.activity(
            ActivityType.TASK_UPDATED,
            f"Task updated: {task.title} ({summary})",
            by=viewer.name,
            at=now,
        )
        lead_filter = policy.scoped(viewer, {"lead_id": task.lead_id})
        lead = await timeline.record(lead_filter, [entry], at=now)
        if lead is None:
            raise not_found("Lead", task.lead_id)
        return TaskDocument.model_validate(raw), lead
    raise Conflict(f"Task {task_id!r} is being changed by others; retry")
