"""The live timeline: `leadActivity` pushes each new activity over graphql-transport-ws."""

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from strawberry import Parent

from models.lead import LeadDocument
from resolvers.context import Info
from resolvers.dataloaders import Loaders
from resolvers.lead import get_lead
from resolvers.services.events import LeadActivityEvent as Event
from resolvers.services.events import hub
from schema.activity import Activity, TimelineEntry, entry
from schema.common import IsAdmin
from schema.lead import Lead


@strawberry.type(description="A new entry on a lead's timeline, as pushed to subscribers.")
class LeadActivityEvent:
    @strawberry.field(graphql_type=Lead, description="The lead right after the entry was written.")
    def lead(self, root: Parent[Event]) -> LeadDocument:
        return root.lead

    @strawberry.field(graphql_type=Activity, description="The new timeline entry.")
    def activity(self, root: Parent[Event]) -> TimelineEntry:
        return entry(root.lead, root.number)


@strawberry.type
class LeadSubscription:
    @strawberry.subscription(
        graphql_type=LeadActivityEvent,
        permission_classes=[IsAdmin],
        description=(
            "Every new timeline entry, as mutations write it: of one lead, or of all leads when "
            "`leadId` is omitted. Over graphql-transport-ws at /graphql; the token goes in the "
            'connection_init payload as {"Authorization": "Bearer <token>"}. Errors: NOT_FOUND '
            "(unknown lead), FORBIDDEN, UNAUTHENTICATED (the token expired meanwhile)."
        ),
    )
    async def lead_activity(
        self,
        info: Info,
        lead_id: Annotated[
            str | None,
            strawberry.argument(description='Human id of the lead ("LEAD-001"); omit for all.'),
        ] = None,
    ) -> AsyncGenerator[Event]:
        if lead_id is not None:
            await get_lead(lead_id)
        async for event in hub.subscribe(lead_id):
            info.context.user.require_unexpired()
            # Each event is resolved afresh: loaders cache for one event, not the connection.
            info.context.loaders = Loaders()
            yield event
