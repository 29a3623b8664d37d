"""The `me` query: who the token says the caller is."""

import strawberry

from resolvers.auth import Viewer
from resolvers.context import Info


@strawberry.type(name="Viewer", description="The authenticated user, from the bearer token.")
class ViewerType:
    id: strawberry.ID = strawberry.field(description="The token's `sub`.")
    name: str | None = strawberry.field(
        description="The token's `name` claim, recorded as `by`, `sentBy`, `loggedBy` (and "
        "`createdBy` of tasks, notes, deals) on what this user does."
    )
    email: str | None = strawberry.field(
        description="The token's `email` claim: the `from` of emails this user sends."
    )
    role: str = strawberry.field(
        description="The token's `role` claim (empty when absent); `admin` is needed for "
        "every operation but `me`."
    )


@strawberry.type
class AuthQuery:
    @strawberry.field(
        graphql_type=ViewerType,
        description="The caller; needs a valid token but no particular role.",
    )
    def me(self, info: Info) -> Viewer:
        return info.context.user
