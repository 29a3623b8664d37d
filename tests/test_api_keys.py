"""API keys and rate limits (README "Teams"): keys made by admins, stored as hashes, revoked
on the next request (HTTP and open WebSockets), `lastUsedAt` without a write per request;
token buckets per principal on every door. Real keys, real JWTs, the real database."""

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from starlette.applications import Starlette

from api.rate_limit import RateLimited, RateLimiter
from config import Settings
from models.api_key import ApiKeyDocument
from models.database import CommandCounter
from server import create_app
from tests.conftest import JWT_SECRET, GraphQLClient, mint
from tests.test_websocket import Closed, Socket

PROJECT_DIR = Path(__file__).resolve().parent.parent
CREATE_KEY = """
mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { secret apiKey { id name role prefix createdBy expiresAt } }
}
"""
ME = "{ me { id name role } }"


async def create_key(gql: GraphQLClient, role: str = "sales", **extra: Any) -> tuple[str, str]:
    data = await gql(CREATE_KEY, {"input": {"name": f"{role} script", "role": role, **extra}})
    return data["createApiKey"]["apiKey"]["id"], data["createApiKey"]["secret"]


async def call(
    http: httpx.AsyncClient, secret: str, query: str, **variables: Any
) -> httpx.Response:
    return await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {secret}"},
    )


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    data = await gql(CREATE_KEY, {"input": {"name": "Nightly import", "role": "viewer"}})
    secret = data["createApiKey"]["secret"]
    key = data["createApiKey"]["apiKey"]
    assert secret.startswith("crm_")
    assert len(secret) == 4 + 43
    assert secret[4:].isalnum()
    assert key["prefix"] == secret[:12]
    assert key["role"] == "viewer"
    assert key["createdBy"] == "Shariq Ansari"

    raw = await ApiKeyDocument.get_pymongo_collection().find_one({})
    assert raw is not None
    assert raw["secretHash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps(raw, default=str)  # the secret itself is nowhere
    listed = await gql("{ apiKeys { id name role prefix revokedAt } }")
    assert listed["apiKeys"] == [
        {
            "id": key["id"],
            "name": "Nightly import",
            "role": "viewer",
            "prefix": key["prefix"],
            "revokedAt": None,
        }
    ]

    response = await call(http, secret, ME)
    assert response.json() == {
        "data": {"me": {"id": f"apikey:{key['id']}", "name": "Nightly import", "role": "viewer"}}
    }


async def test_a_keys_role_and_scope_apply(gql: GraphQLClient, http: httpx.AsyncClient) -> None:
    viewer_id, viewer_secret = await create_key(gql, "viewer")
    sales_id, sales_secret = await create_key(gql, "sales")
    other = await gql('mutation { createLead(input: {firstName: "Admin"}) { lead { leadId } } }')

    refused = await call(
        http, viewer_secret, 'mutation { createLead(input: {firstName: "V"}) { lead { leadId } } }'
    )
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    created = await call(
        http,
        sales_secret,
        'mutation { createLead(input: {firstName: "Scripted"}) '
        "{ lead { leadId leadOwnerId createdBy } } }",
    )
    lead = created.json()["data"]["createLead"]["lead"]
    assert lead["leadOwnerId"] == lead["createdBy"] == f"apikey:{sales_id}"
    listed = await call(http, sales_secret, "{ leads { nodes { leadId } } }")
    assert listed.json()["data"]["leads"]["nodes"] == [{"leadId": lead["leadId"]}]
    hidden = await call(
        http,
        sales_secret,
        "query($id: String!) { lead(leadId: $id) { leadId } }",
        id=other["createLead"]["lead"]["leadId"],
    )
    assert hidden.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    # REST: the same key, the same scope.
    rest = await http.get("/api/crm/leads", headers={"authorization": f"Bearer {sales_secret}"})
    assert rest.status_code == 200, rest.text
    assert [item["lead_id"] for item in rest.json()] == [lead["leadId"]]
    assert viewer_id != sales_id


async def test_a_revoked_or_expired_key_fails_on_the_next_request(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    key_id, secret = await create_key(gql)
    assert (await call(http, secret, ME)).status_code == 200

    revoked = await gql(
        "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }", {"id": key_id}
    )
    assert revoked["revokeApiKey"]["revokedAt"] is not None
    response = await call(http, secret, ME)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "revoked" in response.json()["errors"][0]["message"]
    rest = await http.get("/api/crm/leads", headers={"authorization": f"Bearer {secret}"})
    assert rest.status_code == 401

    key_id, secret = await create_key(gql, expiresAt="2999-01-01T00:00:00Z")
    assert (await call(http, secret, ME)).status_code == 200
    await ApiKeyDocument.get_pymongo_collection().update_one(
        {"_id": ObjectId(key_id)}, {"$set": {"expiresAt": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    expired = await call(http, secret, ME)
    assert expired.status_code == 401
    assert "expired" in expired.json()["errors"][0]["message"]

    unknown = await call(http, "crm_" + "x" * 43, ME)
    assert unknown.status_code == 401
    past = await gql.errors(
        CREATE_KEY, {"input": {"name": "n", "role": "root", "expiresAt": "2001-01-01T00:00:00Z"}}
    )
    fields = {error["field"] for error in past[0]["extensions"]["fieldErrors"]}
    assert fields == {"role", "expiresAt"}


async def test_last_used_at_is_written_at_most_once_a_minute(
    gql: GraphQLClient, http: httpx.AsyncClient, commands: CommandCounter
) -> None:
    key_id, secret = await create_key(gql)
    commands.reset()
    for _ in range(5):
        assert (await call(http, secret, ME)).status_code == 200
    writes = [name for name in commands.names if name in ("update", "findAndModify")]
    assert len(writes) == 1, list(commands.names)
    listed = await gql("{ apiKeys { lastUsedAt } }")
    first_use = listed["apiKeys"][0]["lastUsedAt"]
    assert first_use is not None

    # A minute later (as stored), the next request moves it once more.
    await ApiKeyDocument.get_pymongo_collection().update_one(
        {"_id": ObjectId(key_id)},
        {"$set": {"lastUsedAt": datetime.now(UTC) - timedelta(minutes=2)}},
    )
    await call(http, secret, ME)
    assert (await gql("{ apiKeys { lastUsedAt } }"))["apiKeys"][0]["lastUsedAt"] >= first_use


async def test_revoking_a_key_ends_it_on_open_websockets(
    app: Starlette, gql: GraphQLClient
) -> None:
    key_id, secret = await create_key(gql, "viewer")
    socket = Socket(app)
    try:
        await socket.connect(secret)
        assert (await socket.data(ME))["me"]["role"] == "viewer"
        await gql("mutation($id: ID!) { revokeApiKey(id: $id) { id } }", {"id": key_id})
        # The next operation is refused (UNAUTHENTICATED) and the socket closed with 4403; the
        # close may even come first, from the check after the previous operation.
        await socket.subscribe("2", ME)
        messages = []
        while not isinstance(message := await socket.receive(), Closed):
            messages.append(message)
        assert message.code == 4403
        assert all(item["type"] == "error" for item in messages), messages
        for item in messages:
            assert item["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await socket.close()


async def test_crm_api_key_on_the_command_line(mongodb_uri: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MONGODB_URI": mongodb_uri,
        "CRM_DB_NAME": "crm_test",
        "CRM_JWT_SECRET": JWT_SECRET,
        "CRM_DATA_DIR": str(tmp_path),
    }

    def crm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", "api-key", *args],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    created = crm("create", "--name", "CLI script", "--role", "manager", "--days", "30")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("crm_")
    raw = await ApiKeyDocument.get_pymongo_collection().find_one({"name": "CLI script"})
    assert raw is not None
    assert raw["secretHash"] == hashlib.sha256(secret.encode()).hexdigest()
    key_id = str(raw["_id"])

    listed = crm("list")
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout
    assert secret not in listed.stdout
    revoked = crm("revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    raw = await ApiKeyDocument.get_pymongo_collection().find_one({"_id": raw["_id"]})
    assert raw is not None
    assert raw["revokedAt"] is not None


# --- rate limits ----------------------------------------------------------------------------


@pytest.fixture
async def limited(settings: Settings, app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An app with a limit of 3 a minute (on the session's database: no lifespan needed)."""
    limited_app = create_app(settings.model_copy(update={"rate_limit_per_minute": 3}))
    limited_app.state.database = app.state.database
    transport = httpx.ASGITransport(app=limited_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        client.app = limited_app  # type: ignore[attr-defined]
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_over_the_limit_is_429_with_retry_after_per_principal(
    limited: httpx.AsyncClient, app: Starlette, gql: GraphQLClient
) -> None:
    alice, bob = mint(app, sub="u-alice"), mint(app, sub="u-bob")
    for _ in range(3):
        assert (
            await limited.post("/graphql", json={"query": ME}, headers=bearer(alice))
        ).status_code == 200
    refused = await limited.post("/graphql", json={"query": ME}, headers=bearer(alice))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    # Alice's burst does not slow Bob, nor a key.
    assert (
        await limited.post("/graphql", json={"query": ME}, headers=bearer(bob))
    ).status_code == 200
    _, secret = await create_key(gql, "viewer")
    assert (
        await limited.post("/graphql", json={"query": ME}, headers=bearer(secret))
    ).status_code == 200

    # REST takes from the same bucket.
    rest = await limited.get("/api/crm/leads", headers=bearer(alice))
    assert rest.status_code == 429
    assert rest.json()["code"] == "RATE_LIMITED"
    assert int(rest.headers["retry-after"]) >= 1

    # A batch counts each of its operations.
    carol = mint(app, sub="u-carol")
    batch = [{"query": ME}] * 4
    assert (await limited.post("/graphql", json=batch, headers=bearer(carol))).status_code == 429


async def test_concurrent_requests_never_spend_more_than_the_limit(
    limited: httpx.AsyncClient, app: Starlette
) -> None:
    token = mint(app, sub="u-burst")
    responses = await asyncio.gather(
        *(limited.post("/graphql", json={"query": ME}, headers=bearer(token)) for _ in range(12))
    )
    assert sorted(response.status_code for response in responses) == [200] * 3 + [429] * 9


async def test_each_websocket_operation_takes_a_token(
    limited: httpx.AsyncClient, app: Starlette
) -> None:
    socket = Socket(limited.app)  # type: ignore[attr-defined]
    try:
        await socket.connect(mint(app, sub="u-socket"))
        for _ in range(3):
            await socket.data(ME)
        messages = await socket.run(ME, id="4")
        assert messages[0]["type"] == "error", messages  # type: ignore[index]
        assert messages[0]["payload"][0]["extensions"]["code"] == "RATE_LIMITED"  # type: ignore[index]
    finally:
        await socket.close()


def test_a_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one a second
    for _ in range(60):
        limiter.take("a")
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.retry_after == 1
    now[0] += 1.0
    limiter.take("a")
    with pytest.raises(RateLimited):
        limiter.take("a")
    limiter.take("b")  # another principal: a full bucket of its own
    RateLimiter(0).take("a", cost=10**6)  # 0: no limit
