"""API keys for scripts (README "Teams"): created by admins with a role and an optional expiry,
sent as `Authorization: Bearer crm_…`, revoked at once.

- The secret is `crm_` + 43 base62 characters (32 random bytes); only its sha256 is stored,
  and looked up through a unique index: one indexed read per request or WebSocket operation.
- A key's viewer is `sub: "apikey:<id>"`, `name`: the key's name, `role`: the key's role.
- Revocation (and expiry) is checked on every request and on every operation of an open
  WebSocket (`require_active`), so a revoked key fails on the very next one.
- `lastUsedAt` is written at most once a minute per key: the request that reads a key whose
  `lastUsedAt` is older makes one conditional update (its filter pins the old value, so of
  concurrent requests, on any instance, at most one writes); the others write nothing.
"""

import hashlib
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from models.api_key import ApiKeyDocument
from models.base import utc_now
from services import policy
from services.documents import decode
from services.errors import BadUserInput, FieldError, Unauthenticated, not_found
from services.policy import Action
from services.validation import CONTROL_CHARACTERS, object_id
from services.viewer import Viewer

KEY_PREFIX = "crm_"
SECRET_BYTES = 32
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
SECRET_LENGTH = 43  # 62**43 > 2**256
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8
LAST_USED_EVERY = timedelta(minutes=1)
MAX_NAME_LENGTH = 100
VIEWER_ID_PREFIX = "apikey:"


def is_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def new_secret() -> str:
    number = int.from_bytes(secrets.token_bytes(SECRET_BYTES))
    digits = []
    for _ in range(SECRET_LENGTH):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return KEY_PREFIX + "".join(digits)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def viewer_of(key: ApiKeyDocument) -> Viewer:
    return Viewer(
        id=f"{VIEWER_ID_PREFIX}{key.id}",
        name=key.name,
        email=None,
        role=key.role,
        expires_at=key.expires_at,
        api_key_id=str(key.id),
    )


def _collection() -> AsyncCollection[Any]:
    return ApiKeyDocument.get_pymongo_collection()


async def create_api_key(
    viewer: Viewer, name: str, role: str, expires_at: datetime | None = None
) -> tuple[ApiKeyDocument, str]:
    """A new key and its secret (shown this once; only its hash is kept)."""
    policy.require(viewer, Action.MANAGE_KEYS)
    name = name.strip()
    problems = []
    if not name or len(name) > MAX_NAME_LENGTH or CONTROL_CHARACTERS.search(name):
        problems.append(FieldError("name", f"must be 1 to {MAX_NAME_LENGTH} characters"))
    if role not in policy.ROLES:
        problems.append(FieldError("role", f"must be one of {', '.join(policy.ROLES)}"))
    now = utc_now()
    if expires_at is not None:
        expires_at = expires_at.replace(tzinfo=UTC) if expires_at.tzinfo is None else expires_at
        if expires_at <= now:
            problems.append(FieldError("expiresAt", "must be in the future"))
    if problems:
        raise BadUserInput(problems)
    secret = new_secret()
    key = ApiKeyDocument(
        name=name,
        role=role,
        prefix=secret[:SHOWN_PREFIX_LENGTH],
        secret_hash=hash_secret(secret),
        created_at=now,
        created_by=viewer.name or viewer.id,
        expires_at=expires_at,
    )
    await key.insert()
    return key, secret


async def list_api_keys(viewer: Viewer) -> list[ApiKeyDocument]:
    """Every key, newest first (revoked ones too, with `revokedAt`)."""
    policy.require(viewer, Action.MANAGE_KEYS)
    found = await _collection().find({}).sort([("createdAt", -1), ("_id", -1)]).to_list()
    return [decode(ApiKeyDocument, raw, "ApiKey") for raw in found]


async def revoke_api_key(viewer: Viewer, key_id: str) -> ApiKeyDocument:
    """Revoke a key: it fails from the next request on. Revoking it again changes nothing."""
    policy.require(viewer, Action.MANAGE_KEYS)
    key = object_id(key_id)
    raw = await _collection().find_one_and_update(
        {"_id": key, "revokedAt": None},
        {"$set": {"revokedAt": utc_now()}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raw = await _collection().find_one({"_id": key})  # revoked before: as it is
    if raw is None:
        raise not_found("API key", key_id)
    return decode(ApiKeyDocument, raw, "ApiKey")


def _refusal(key: ApiKeyDocument, now: datetime) -> Unauthenticated | None:
    if key.revoked_at is not None:
        return Unauthenticated("API key has been revoked")
    if key.expires_at is not None and now >= key.expires_at:
        return Unauthenticated("API key has expired")
    return None


async def authenticate(secret: str) -> Viewer:
    """The viewer of an API key secret; UNAUTHENTICATED when unknown, revoked or expired."""
    raw = await _collection().find_one({"secretHash": hash_secret(secret)})
    if raw is None:
        raise Unauthenticated("Invalid API key")
    key = decode(ApiKeyDocument, raw, "ApiKey")
    now = utc_now()
    if refused := _refusal(key, now):
        raise refused
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        # At most one write a minute per key: the filter pins the value read.
        await _collection().update_one(
            {"_id": key.id, "lastUsedAt": raw.get("lastUsedAt")}, {"$set": {"lastUsedAt": now}}
        )
    return viewer_of(key)


async def require_active(viewer: Viewer) -> None:
    """For what outlives a request (a WebSocket, a subscription): UNAUTHENTICATED once the
    token has expired, or the key has been revoked or has expired, since it was checked."""
    viewer.require_unexpired()
    if viewer.api_key_id is None:
        return
    raw = await _collection().find_one(
        {"_id": PydanticObjectId(viewer.api_key_id)}, {"revokedAt": 1, "expiresAt": 1}
    )
    if raw is None or raw.get("revokedAt") is not None:
        raise Unauthenticated("API key has been revoked")
    expires_at = raw.get("expiresAt")
    if isinstance(expires_at, datetime):
        expires_at = expires_at.replace(tzinfo=UTC) if expires_at.tzinfo is None else expires_at
        if utc_now() >= expires_at:
            raise Unauthenticated("API key has expired")
