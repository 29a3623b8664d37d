"""The timeline entry type."""

from datetime import datetime

import strawberry

from models.activity import Activity as StoredActivity
from models.activity import ActivityType
from models.lead import LeadDocument
from schema.common import describe_values

strawberry.enum(ActivityType, description="What happened to a lead.")
describe_values(
    ActivityType,
    CREATED="The lead was created.",
    UPDATED="A lead field other than status changed; `field`, `oldValue`, `newValue` say how.",
    STATUS_CHANGED="The status was set (also to the same value, by updateLeadStatus); "
    '`oldValue`/`newValue` are labels such as "New".',
    EMAIL_SENT="An email was sent to the lead.",
    CALL_LOGGED="A call with the lead was logged.",
    TASK_CREATED="A task was created on the lead.",
    TASK_UPDATED="A task of the lead changed; the description lists the changed fields.",
    NOTE_ADDED="A note was added to the lead.",
    CONVERTED_TO_DEAL="The lead was converted to a deal.",
    MERGED="Other leads were merged into this one (mergeLeads): `mergeId` names the merge "
    "(unmergeLeads undoes it), the description lists the merged leads; their entries are on "
    "this timeline now, in time order, with their ids.",
    ASSIGNED="The lead got another owner (assignLead, assignLeads); `field` is leadOwnerId, "
    "`oldValue`/`newValue` the previous and new owner's user id (null: no owner), the "
    "description names both.",
)


class TimelineEntry(StoredActivity):
    """A stored activity with its place on its lead's timeline, which gives it a stable id.

    Entries are appended, so `LEAD-001:3` (the lead's third entry) never changes meaning; a
    merge, which re-sorts a timeline, stores each entry's id on it (`Activity.stored_id`).
    """

    id: str


def entry(lead: LeadDocument, number: int) -> TimelineEntry:
    """The lead's `number`-th activity (1 = oldest), with its id."""
    stored = lead.activities[number - 1]
    entry_id = stored.stored_id or f"{lead.lead_id}:{number}"
    # Extras (a merge's `mergeId`) come along: the Activity type shows them.
    return TimelineEntry.model_construct(
        **stored.__dict__ | (stored.model_extra or {}) | {"id": entry_id}
    )


def timeline(lead: LeadDocument) -> list[TimelineEntry]:
    """The lead's activities, newest first, each with its id."""
    return [entry(lead, number) for number in range(len(lead.activities), 0, -1)]


@strawberry.type(description="One entry of a lead's activity timeline.")
class Activity:
    id: strawberry.ID = strawberry.field(
        description='"<leadId>:<n>", the n-th entry of the lead\'s timeline (oldest is 1).'
    )
    type: ActivityType = strawberry.field(description="What happened.")
    description: str = strawberry.field(description='What happened, in words ("Email sent: …").')
    by: str | None = strawberry.field(description="Name of the user who did it.")
    timestamp: datetime = strawberry.field(description="When it happened.")
    field: str | None = strawberry.field(
        description="The changed field (stored name), on UPDATED and STATUS_CHANGED."
    )
    old_value: str | None = strawberry.field(description="The value before the change.")
    new_value: str | None = strawberry.field(description="The value after the change.")
    merge_id: strawberry.ID | None = strawberry.field(
        description="On MERGED, and on entries a merge moved here: the merge (unmergeLeads)."
    )
