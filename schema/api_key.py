"""API key types: keys scripts authenticate with (`Authorization: Bearer crm_…`)."""

from datetime import datetime

import strawberry

from models.api_key import ApiKeyDocument


@strawberry.type(description="A key scripts authenticate with; its secret is never shown again.")
class ApiKey:
    id: strawberry.ID = strawberry.field(description="Database id (ObjectId hex).")
    name: str = strawberry.field(description="What the key is for; its callers' `by` name.")
    role: str = strawberry.field(description="The role its callers have.")
    prefix: str = strawberry.field(
        description='The secret\'s first characters ("crm_" and 8 more), to tell keys apart.'
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    created_by: str | None = strawberry.field(description="Name of the admin who created it.")
    expires_at: datetime | None = strawberry.field(
        description="When it stops working; null: never."
    )
    last_used_at: datetime | None = strawberry.field(
        description="When it was last used, to the minute (null: never)."
    )
    revoked_at: datetime | None = strawberry.field(
        description="When it was revoked (null: it is not)."
    )


@strawberry.input(description="A new API key.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="What the key is for (1 to 100 characters).")
    role: str = strawberry.field(
        description="The role its callers get: admin, manager, sales or viewer."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="When it stops working (in the future); null: never."
    )


@strawberry.type(description="The new key and its secret.")
class CreateApiKeyPayload:
    api_key: ApiKeyDocument = strawberry.field(graphql_type=ApiKey, description="The new key.")
    secret: str = strawberry.field(
        description="The key itself (`crm_…`), shown this once: only its hash is stored. Send "
        "it as `Authorization: Bearer <secret>`."
    )
