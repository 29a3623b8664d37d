"""The timeline entry type."""

from datetime import datetime

import strawberry

from models.activity import Activity as StoredActivity
from models.activity import ActivityType
from models.lead import LeadDocument

strawberry.enum(ActivityType, description="What happened to a lead.")


class TimelineEntry(StoredActivity):
    """A stored activity with its place on its lead's timeline, which gives it a stable id.

    Timelines are append-only, so `LEAD-001:3` (the lead's third entry) never changes meaning.
    """

    id: str


def timeline(lead: LeadDocument) -> list[TimelineEntry]:
    """The lead's activities, newest first, each with its id."""
    return [
        TimelineEntry.model_construct(**entry.__dict__, id=f"{lead.lead_id}:{number}")
        for number, entry in reversed(list(enumerate(lead.activities, start=1)))
    ]


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
