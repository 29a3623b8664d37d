"""The `Viewer` type: the caller, as the token says."""

import strawberry


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
        description="The token's `role` claim (empty when absent), or the API key's role: "
        "`admin`, `manager`, `sales` or `viewer` (README: Teams); any other role may call "
        "`me` only."
    )
