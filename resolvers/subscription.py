"""The live timeline subscription: `leadActivity` over graphql-transport-ws."""

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from resolvers.context import Info
from resolvers.dataloaders import Loaders
from resolvers.permissions import IsAdmin
from schema.subscription import LeadActivityEvent
from services.events import LeadActivityEvent as Event
from services.events import hub
from services.leads import get_lead


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
