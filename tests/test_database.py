"""The database the server talks to: embedded when no URI is given, data that survives a
restart, the seed's indexes, and a clear SERVICE_UNAVAILABLE while the database is down."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from config import Settings
from models.database import EmbeddedMongo
from models.lead import LeadDocument
from server import create_app
from tests.conftest import JWT_SECRET, mint
from tests.documents import CREATE_LEAD

SEED_INDEXES = {
    "leads": [[("lead_id", 1)], [("email", 1)], [("status", 1)], [("createdAt", -1)]],
    "lead_emails": [[("lead_id", 1)]],
    "lead_calls": [[("lead_id", 1)]],
    "lead_tasks": [[("lead_id", 1)]],
    "lead_notes": [[("lead_id", 1)]],
}


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
            yield app, client


async def post(
    app: Starlette, client: httpx.AsyncClient, query: str, variables: dict[str, object]
) -> dict[str, object]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {mint(app)}"},
    )
    return dict(response.json())


async def test_without_uri_the_embedded_server_starts_and_data_survives_a_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(MONGODB_URI=None, CRM_JWT_SECRET=None, CRM_DATA_DIR=tmp_path)
    assert settings.dev_mode

    async with running(settings) as (app, client):
        assert app.state.database.embedded is not None
        body = await post(app, client, CREATE_LEAD, {"input": {"firstName": "Persisted"}})
        assert "errors" not in body, body
    printed = capsys.readouterr().out
    assert "Authorization: Bearer " in printed
    assert (tmp_path / "crm.sqlite3").exists()

    async with running(settings) as (app, client):
        body = await post(app, client, '{ lead(leadId: "LEAD-001") { firstName } }', {})
        assert body == {"data": {"lead": {"firstName": "Persisted"}}}
        token = printed.split("Authorization: Bearer ")[1].split()[0]
        me = await client.post(
            "/graphql",
            json={"query": "{ me { id } }"},
            headers={"authorization": f"Bearer {token}"},
        )
        assert me.json() == {"data": {"me": {"id": "dev-admin"}}}  # the printed token works


async def test_the_seed_indexes_exist(app: Starlette) -> None:
    database = LeadDocument.get_pymongo_collection().database
    for collection, keys in SEED_INDEXES.items():
        indexes = await database[collection].index_information()
        present = [list(index["key"]) for index in indexes.values()]
        for key in keys:
            assert key in present, (collection, key)
    lead_id_index = next(
        index
        for index in (await database["leads"].index_information()).values()
        if list(index["key"]) == [("lead_id", 1)]
    )
    assert lead_id_index.get("unique") is True


async def test_database_down_is_service_unavailable_and_recovers(tmp_path: Path) -> None:
    database = EmbeddedMongo(tmp_path / "db")
    uri = await database.start()
    port = int(uri.split(":")[2].split("/")[0])
    # The default CRM_DB_TIMEOUT_MS: a stopped database must fail requests within 5 s.
    settings = Settings(MONGODB_URI=uri, CRM_JWT_SECRET=JWT_SECRET, CRM_DATA_DIR=tmp_path)
    clock = asyncio.get_running_loop().time
    async with running(settings) as (app, client):
        assert (await client.get("/readyz")).status_code == 200
        await database.stop()

        started = clock()
        assert (await client.get("/readyz")).status_code == 503
        assert clock() - started < 5
        started = clock()
        body = await post(app, client, CREATE_LEAD, {"input": {"firstName": "Lost?"}})
        assert clock() - started < 5
        errors = body["errors"]
        assert isinstance(errors, list)
        assert errors[0]["extensions"].keys() == {"code", "requestId"}  # the id is for support
        assert errors[0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "127.0.0.1" not in str(body)  # no database text reaches the client

        database = EmbeddedMongo(tmp_path / "db", port=port)
        await database.start()
        try:
            # The driver's monitor finds the server again on its own (no restart), within seconds.
            deadline = clock() + 15
            while (await client.get("/readyz")).status_code != 200:
                assert clock() < deadline, "did not recover"
                await asyncio.sleep(0.1)
            body = await post(app, client, CREATE_LEAD, {"input": {"firstName": "Back"}})
            assert "errors" not in body, body
        finally:
            await database.stop()


async def test_with_a_uri_nothing_is_started(app: Starlette, settings: Settings) -> None:
    assert settings.mongodb_uri is not None
    assert app.state.database.embedded is None
