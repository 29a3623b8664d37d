"""The live timeline subscription: `leadActivity` over graphql-transport-ws."""

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from resolvers.context import Info
from resolvers.dataloaders import Loaders
from resolvers.permissions import permission_subscription
from schema.subscription import LeadActivityEvent
from services.api_keys import require_active
from services.events import LeadActivityEvent as Event
from services.leads import lead_activity
from services.policy import Action


@strawberry.type
class LeadSubscription:
    @permission_subscription(
        Action.READ,
        graphql_type=LeadActivityEvent,
        description=(
            "Every new timeline entry, as mutations write it: of one lead, or of all leads in "
            "the caller's scope when `leadId` is omitted (a sales user: their own leads, and "
            "the ASSIGNED entry that moves one away from them). Over graphql-transport-ws at "
            "/graphql; the token goes in the connection_init payload as "
            '{"Authorization": "Bearer <token>"}. Errors: NOT_FOUND '
            "(unknown lead, or not in scope), FORBIDDEN, UNAUTHENTICATED (the token expired, "
            "or the API key was revoked, meanwhile)."
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
        async for event in lead_activity(info.context.user, lead_id):
            await require_active(info.context.user)
            # Each event is resolved afresh: loaders cache for one event, not the whole stream
            # (the context is this operation's own: api.graphql.OperationHandler).
            info.context.loaders = Loaders()
            yield event
