"""The live timeline: `leadActivity` pushes each new activity over graphql-transport-ws."""

import strawberry
from strawberry import Parent

from models.lead import LeadDocument
from schema.activity import Activity, TimelineEntry, entry
from schema.lead import Lead
from services.events import LeadActivityEvent as Event


@strawberry.type(description="A new entry on a lead's timeline, as pushed to subscribers.")
class LeadActivityEvent:
    @strawberry.field(graphql_type=Lead, description="The lead right after the entry was written.")
    def lead(self, root: Parent[Event]) -> LeadDocument:
        return root.lead

    @strawberry.field(graphql_type=Activity, description="The new timeline entry.")
    def activity(self, root: Parent[Event]) -> TimelineEntry:
        return entry(root.lead, root.number)
