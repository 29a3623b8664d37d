"""The only writer of a lead's activity timeline (seed "Activity Tracking")."""

from collections.abc import Mapping
from datetime import datetime
from enum import Enum

from pymongo import ReturnDocument

from models.activity import Activity, ActivityType
from models.base import stored_fields, to_bson, utc_now
from models.call import CallDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from services.events import hub

NOTE_PREVIEW_LENGTH = 60


def shown(value: object) -> str:
    """A field value as the timeline prints it: enums by their stored label."""
    return "empty" if value is None else str(value.value if isinstance(value, Enum) else value)


def activity(
    kind: ActivityType,
    description: str,
    *,
    by: str | None,
    at: datetime,
    field: str | None = None,
    old_value: object = None,
    new_value: object = None,
) -> Activity:
    return Activity(
        type=kind,
        description=description,
        by=by,
        timestamp=at,
        field=field,
        old_value=None if old_value is None else str(to_bson(old_value)),
        new_value=None if new_value is None else str(to_bson(new_value)),
    )


def email_sent(email: EmailDocument) -> Activity:
    return activity(
        ActivityType.EMAIL_SENT,
        f"Email sent: {email.subject}",
        by=email.sent_by,
        at=email.timestamp,
    )


def call_logged(call: CallDocument, *, at: datetime) -> Activity:
    """`at` is when it was logged; the call's own timestamp may be earlier."""
    minutes, seconds = divmod(call.duration, 60)
    duration = f"{minutes}m {seconds}s" if minutes else f"{seconds}s"
    return activity(
        ActivityType.CALL_LOGGED,
        f"{call.type.value} logged ({duration}, {call.status.value})",
        by=call.logged_by,
        at=at,
    )


def task_created(task: TaskDocument) -> Activity:
    return activity(
        ActivityType.TASK_CREATED,
        f"Task created: {task.title}",
        by=task.created_by,
        at=task.created_at,
    )


def note_added(note: NoteDocument) -> Activity:
    summary = note.title or note.content[:NOTE_PREVIEW_LENGTH]
    return activity(
        ActivityType.NOTE_ADDED, f"Note added: {summary}", by=note.created_by, at=note.created_at
    )


def lead_field_changed(
    name: str, old: object, new: object, *, by: str | None, at: datetime
) -> Activity:
    """STATUS_CHANGED for the status, UPDATED for any other lead field, with both values."""
    stored_name = LeadDocument.model_fields[name].alias or name
    is_status = name == "status"
    label = "Status" if is_status else stored_name
    return activity(
        ActivityType.STATUS_CHANGED if is_status else ActivityType.UPDATED,
        f"{label} changed from {shown(old)} to {shown(new)}"
        if old != new
        else f"{label} confirmed as {shown(new)}",
        by=by,
        at=at,
        field=stored_name,
        old_value=old,
        new_value=new,
    )


async def record(
    lead_filter: Mapping[str, object],
    activities: list[Activity],
    *,
    changes: Mapping[str, object] | None = None,
    at: datetime | None = None,
) -> LeadDocument | None:
    """In one write: apply `changes` to the lead, append `activities`, bump `updatedAt`.

    Returns the updated lead, or None when no lead matches `lead_filter` (gone, or changed
    since it was read when the filter pins old values).
    """
    update_set = stored_fields(LeadDocument, changes or {})
    update_set["updatedAt"] = at or utc_now()
    raw = await LeadDocument.get_pymongo_collection().find_one_and_update(
        dict(lead_filter),
        {"$set": update_set, "$push": {"activities": {"$each": to_bson(activities)}}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        return None
    lead: LeadDocument = LeadDocument.model_validate(raw)
    hub.written(lead, len(activities))
    return lead
