"""API keys: list, create and revoke them (admins only)."""

from typing import Annotated

import strawberry

from models.api_key import ApiKeyDocument
from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.api_key import ApiKey, CreateApiKeyInput, CreateApiKeyPayload
from services import api_keys
from services.policy import Action


@strawberry.type
class ApiKeyQuery:
    @permission_field(
        Action.MANAGE_KEYS,
        graphql_type=list[ApiKey],
        description="Every API key, newest first, revoked ones included (admins only).",
    )
    async def api_keys(self, info: Info) -> list[ApiKeyDocument]:
        return await api_keys.list_api_keys(info.context.user)


@strawberry.type
class ApiKeyMutation:
    @permission_field(
        Action.MANAGE_KEYS,
        description="Create an API key with a role and an optional expiry; the payload's "
        "`secret` is shown this once (admins only). Errors: BAD_USER_INPUT.",
    )
    async def create_api_key(
        self,
        info: Info,
        input: Annotated[CreateApiKeyInput, strawberry.argument(description="The new key.")],
    ) -> CreateApiKeyPayload:
        key, secret = await api_keys.create_api_key(
            info.context.user, input.name, input.role, input.expires_at
        )
        return CreateApiKeyPayload(api_key=key, secret=secret)

    @permission_field(
        Action.MANAGE_KEYS,
        graphql_type=ApiKey,
        description="Revoke an API key: it fails from the very next request on, also on open "
        "WebSockets (admins only). Revoking it again changes nothing. Errors: NOT_FOUND, "
        "BAD_USER_INPUT (not an id).",
    )
    async def revoke_api_key(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The key's `id`.")],
    ) -> ApiKeyDocument:
        return await api_keys.revoke_api_key(info.context.user, id)
