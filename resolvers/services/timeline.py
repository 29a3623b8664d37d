"""The only writer of a lead's activity timeline (seed "Activity Tracking")."""

from collections.abc import Mapping
from datetime import datetime
from enum import Enum

from pymongo import ReturnDocument

from models.activity import Activity, ActivityType
from models.base import stored_fields, to_bson, utc_now
from models.lead import LeadDocument


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
    return None if raw is None else LeadDocument.model_validate(raw)
