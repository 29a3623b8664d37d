"""The `me` query: who the token says the caller is."""

import strawberry

from resolvers.auth import Viewer
from resolvers.context import Info


@strawberry.type(name="Viewer", description="The authenticated user, from the bearer token.")
class ViewerType:
    id: strawberry.ID = strawberry.field(description="The token's `sub`.")
    name: str | None
    email: str | None
    role: str


@strawberry.type
class AuthQuery:
    @strawberry.field(
        graphql_type=ViewerType,
        description="The caller; needs a valid token but no particular role.",
    )
    def me(self, info: Info) -> Viewer:
        return info.context.user
