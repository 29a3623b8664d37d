"""The timeline entry type."""

from datetime import datetime

import strawberry

from models.activity import ActivityType

strawberry.enum(ActivityType, description="What happened to a lead.")


@strawberry.type(description="One entry of a lead's activity timeline.")
class Activity:
    type: ActivityType
    description: str
    by: str | None = strawberry.field(description="Name of the user who did it.")
    timestamp: datetime
    field: str | None = strawberry.field(
        description="The changed field (stored name), on UPDATED and STATUS_CHANGED."
    )
    old_value: str | None = strawberry.field(description="The value before the change.")
    new_value: str | None = strawberry.field(description="The value after the change.")
