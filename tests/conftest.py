"""One embedded MongoDB-compatible server for the session (or MONGODB_URI), a clean
database per test, and an HTTP client that talks to the real ASGI app with real JWTs."""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from config import Settings
from models import DOCUMENT_MODELS
from models.database import Capabilities, CommandCounter, EmbeddedMongo
from playground import ensure_assets
from server import create_app

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!"


@pytest.fixture(scope="session")
async def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """MONGODB_URI when set (a real MongoDB), else an embedded server over TCP."""
    if uri := os.environ.get("MONGODB_URI"):
        yield uri
        return
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo"))
    yield await server.start()
    await server.stop()


@pytest.fixture(scope="session")
def settings(mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        MONGODB_URI=mongodb_uri,
        CRM_DB_NAME="crm_test",
        CRM_JWT_SECRET=JWT_SECRET,
        CRM_DATA_DIR=Path(tmp_path_factory.mktemp("data")),
        CRM_INTROSPECTION=True,  # off by default with a secret; tests read the schema
        CRM_COUNT_COMMANDS=True,  # the `commands` fixture; off (no listener) by default
        # One session-wide principal ("user-1") makes every test's requests; rate limits are
        # tested with apps of their own (tests/test_teams.py).
        CRM_RATE_LIMIT_PER_MINUTE=0,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    ensure_assets()  # GraphiQL's files, as `crm build-playground` builds them (npm ci once)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(autouse=True)
async def clean_database(app: Starlette) -> None:
    # A test may have started another app, which re-binds the models process-wide.
    await app.state.database.bind()
    for document in DOCUMENT_MODELS:
        await document.get_pymongo_collection().delete_many({})


@pytest.fixture
def commands(app: Starlette) -> CommandCounter:
    counter: CommandCounter = app.state.database.commands
    counter.reset()
    return counter


def mint(app: Starlette, **claims: Any) -> str:
    token: str = app.state.tokens.mint(
        subject=claims.pop("sub", "user-1"),
        name=claims.pop("name", "Shariq Ansari"),
        email=claims.pop("email", "admin@company.com"),
        **claims,
    )
    return token


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app, without credentials."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        yield client


class GraphQLClient:
    """Posts GraphQL documents as an admin (or with the headers given)."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.token = token

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        headers.setdefault("authorization", f"Bearer {self.token}")
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The `data` of a request that must succeed."""
        response = await self.post(query, variables)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def errors(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The `errors` of a request that must fail."""
        body = (await self.post(query, variables)).json()
        assert body.get("errors"), body
        return body["errors"]


@pytest.fixture
def gql(http: httpx.AsyncClient, app: Starlette) -> GraphQLClient:
    return GraphQLClient(http, mint(app))


@pytest.fixture
def ordered(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> None:
    """Multi-document writes take their path for deployments without transactions (the
    embedded engine's, a standalone's), whatever the test database is."""
    monkeypatch.setattr(
        app.state.database, "_capabilities", Capabilities(transactions=False, change_streams=False)
    )


@pytest.fixture
async def transactional(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> None:
    """Multi-document writes take the transaction path. A replica set takes it anyway. The
    embedded engine's transactions are atomic (aborts roll back) but fail every other
    session's command while open, so the app never uses them; with nothing else running they
    test the path: a step that forgot its session fails loudly there."""
    database = app.state.database
    if os.environ.get("MONGODB_URI") and not (await database.capabilities()).transactions:
        pytest.skip("the test database (a standalone) has no transactions")
    monkeypatch.setattr(
        database, "_capabilities", Capabilities(transactions=True, change_streams=False)
    )


def websocket_scope(query_string: str = "", request_id: str | None = None) -> dict[str, Any]:
    """The ASGI scope of a graphql-transport-ws handshake on /graphql."""
    headers = [(b"host", b"crm.test"), (b"sec-websocket-protocol", b"graphql-transport-ws")]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode()))
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": query_string.encode(),
        "headers": headers,
        "subprotocols": ["graphql-transport-ws"],
        "client": ("127.0.0.1", 50000),
        "server": ("crm.test", 80),
    }
