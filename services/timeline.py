"""The only writer of a lead's activity timeline (seed "Activity Tracking")."""

from collections.abc import Mapping
from datetime import datetime
from enum import Enum

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from models.activity import Activity, ActivityType
from models.base import stored_fields, to_bson, utc_now
from models.call import CallDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from services import versions
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


def _update(
    activities: list[Activity], changes: Mapping[str, object], at: datetime
) -> list[dict[str, object]]:
    """The write of `record`: an update pipeline, so the new version is computed from the
    stored one. Values are literals: a client's "$name" is text, never a field path."""
    update: dict[str, object] = {
        name: {"$literal": value} for name, value in stored_fields(LeadDocument, changes).items()
    }
    update["updatedAt"] = versions.advanced("updatedAt", at)
    update["activities"] = {
        "$concatArrays": [{"$ifNull": ["$activities", []]}, {"$literal": to_bson(activities)}]
    }
    return [{"$set": update}]


async def record(
    lead_filter: Mapping[str, object],
    activities: list[Activity],
    *,
    changes: Mapping[str, object] | None = None,
    at: datetime | None = None,
    session: AsyncClientSession | None = None,
) -> LeadDocument | None:
    """In one write: apply `changes` to the lead, append `activities`, advance `updatedAt`.

    `updatedAt` becomes `at` (default: now), or 1 ms after the stored one if that is not
    earlier (versions.advanced): every write makes a new, later version whatever the clocks.
    Returns the updated lead, or None when no lead matches `lead_filter` (gone, or changed
    since it was read when the filter pins old values).
    """
    raw = await LeadDocument.get_pymongo_collection().find_one_and_update(
        dict(lead_filter),
        _update(activities, changes or {}, at or utc_now()),
        projection={"searchKeys": 0},  # keys are for queries, not for the caller
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if raw is None:
        return None
    lead: LeadDocument = LeadDocument.model_validate(raw)
    hub.written(lead, len(activities))
    return lead


async def rewrite(
    lead_filter: Mapping[str, object],
    activities: list[dict[str, object]],
    *,
    sets: Mapping[str, object],
    unsets: list[str],
    at: datetime,
    announced: int,
) -> LeadDocument | None:
    """Replace the whole timeline (merge and unmerge re-sort it; entries as stored, so each
    keeps every byte), set and unset stored fields, advance `updatedAt`; in one write.
    The last `announced` entries are new (live events). None when no lead matches."""
    update: dict[str, object] = {name: {"$literal": value} for name, value in sets.items()}
    update["activities"] = {"$literal": activities}
    update["updatedAt"] = versions.advanced("updatedAt", at)
    pipeline: list[dict[str, object]] = [{"$set": update}]
    if unsets:
        pipeline.append({"$unset": unsets})
    raw = await LeadDocument.get_pymongo_collection().find_one_and_update(
        dict(lead_filter),
        pipeline,
        projection={"searchKeys": 0},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        return None
    lead: LeadDocument = LeadDocument.model_validate(raw)
    if announced:
        hub.written(lead, announced)
    return lead


def merged(merge_id: str, lead_ids: list[str], *, by: str | None, at: datetime) -> Activity:
    """MERGED, naming the merged leads, with the merge's id (unmergeLeads takes it off)."""
    entry = activity(
        ActivityType.MERGED, f"Merged {', '.join(lead_ids)} into this lead", by=by, at=at
    )
    return Activity.model_validate({**entry.model_dump(by_alias=True), "mergeId": merge_id})


# --- imports (services/imports.py) ----------------------------------------------------------


def import_marker(job_id: str) -> str:
    """The words every timeline entry of an import job carries (revertImport finds them)."""
    return f"by import {job_id}"


def lead_imported(job_id: str, row: int, *, by: str | None, at: datetime) -> Activity:
    """CREATED, naming the import job and the file's row."""
    return activity(
        ActivityType.CREATED, f"Lead created {import_marker(job_id)} (row {row})", by=by, at=at
    )


def lead_field_imported(
    name: str, old: object, new: object, *, job_id: str, row: int, by: str | None, at: datetime
) -> Activity:
    """`lead_field_changed`'s entry, naming the import job and the file's row."""
    entry = lead_field_changed(name, old, new, by=by, at=at)
    entry.description = f"{entry.description} {import_marker(job_id)} (row {row})"
    return entry


def record_operation(
    lead_filter: Mapping[str, object],
    activities: list[Activity],
    *,
    changes: Mapping[str, object],
    at: datetime,
) -> UpdateOne:
    """`record`'s write as one operation of a `bulk_write` (no lead is read back)."""
    return UpdateOne(dict(lead_filter), _update(activities, changes, at))
