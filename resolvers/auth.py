"""The `me` query: who the token says the caller is."""

import strawberry

from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.auth import ViewerType
from services.policy import Action
from services.viewer import Viewer


@strawberry.type
class AuthQuery:
    @permission_field(
        Action.IDENTIFY,
        graphql_type=ViewerType,
        description="The caller; needs a valid token (or API key) but no particular role.",
    )
    def me(self, info: Info) -> Viewer:
        return info.context.user
