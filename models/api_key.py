"""The `api_keys` collection: keys scripts authenticate with (`Authorization: Bearer crm_…`).

Only a hash of each secret is stored (sha256, hex, unique-indexed: a request finds its key
with one indexed look-up); the secret itself is shown once, when the key is created.
"""

from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument, StoredDateTime


class ApiKeyDocument(CrmDocument):
    name: str
    role: str
    prefix: str
    """The secret's first characters (`crm_` and 8 more), to tell keys apart in lists."""
    secret_hash: str = Field(alias="secretHash")
    created_at: StoredDateTime = Field(alias="createdAt")
    created_by: str | None = Field(default=None, alias="createdBy")
    expires_at: StoredDateTime | None = Field(default=None, alias="expiresAt")
    last_used_at: StoredDateTime | None = Field(default=None, alias="lastUsedAt")
    revoked_at: StoredDateTime | None = Field(default=None, alias="revokedAt")

    class Settings:
        name = "api_keys"
        indexes = [IndexModel("secretHash", unique=True), IndexModel("createdAt")]
