"""The `me` query: who the token says the caller is."""

import strawberry

from resolvers.context import Info
from schema.auth import ViewerType
from services.viewer import Viewer


@strawberry.type
class AuthQuery:
    @strawberry.field(
        graphql_type=ViewerType,
        description="The caller; needs a valid token but no particular role.",
    )
    def me(self, info: Info) -> Viewer:
        return info.context.user
