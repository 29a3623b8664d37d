"""bench/run.py end to end (tiny), and the CRM_BENCH-only `/debug/stats` it reads."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient
from starlette.applications import Starlette

from config import Settings
from models.database import EmbeddedMongo
from server import create_app
from tests.conftest import GraphQLClient
from tests.live_server import ROOT

OPERATIONS = {
    "list",
    "list_nested",
    "lead_page",
    "seed_flow",
    "create_lead",
    "send_email",
    "update_status",
}


def test_bench_runs_every_operation_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    tiny = ["--leads", "3", "--requests", "4", "--clients", "2", "--warmup", "0"]
    result = subprocess.run(
        [sys.executable, "bench/run.py", *tiny, "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # ~15 s on a quiet machine: two process starts dominate
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seed flow: 5 sequential requests take" in result.stdout

    document = json.loads(output.read_text())
    assert set(document["operations"]) == OPERATIONS
    for name, figures in document["operations"].items():
        assert figures["ops"] == 4, name
        assert figures["errors"] == 0, (name, figures["error_samples"])
        assert figures["latency_ms"]["p50"] > 0, name
        assert figures["commands_per_op"] >= 1, name  # /debug/stats answered
        assert figures["server_cpu_ms_per_op"] > 0, name
    assert document["operations"]["seed_flow"]["http_requests_per_op"] == 5
    assert document["stats_available"] is True
    flow = document["seed_flow"]
    assert flow["p50"] > 0
    assert flow["commands"]["seed_flow"] > flow["commands"]["graphql"]


async def test_debug_stats_only_with_crm_bench(
    http: httpx.AsyncClient, app: Starlette, settings: Settings, gql: GraphQLClient
) -> None:
    assert (await http.get("/debug/stats")).status_code == 404  # CRM_BENCH unset

    bench = create_app(settings.model_copy(update={"bench": True}))
    bench.state.database = app.state.database  # the session's connected database
    transport = httpx.ASGITransport(app=bench)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        before = (await client.get("/debug/stats")).json()
        await gql('mutation { createLead(input: {firstName: "Ada"}) { lead { leadId } } }')
        after = (await client.get("/debug/stats")).json()
    assert after["commands"] > before["commands"]
    assert after["command_seconds"] > before["command_seconds"]
    assert after["cpu_seconds"] > before["cpu_seconds"]
    assert after["embedded_cpu_seconds"] is None  # the tests' engine is not the app's own


async def test_embedded_engine_reports_its_threads_cpu(tmp_path: Path) -> None:
    engine = EmbeddedMongo(tmp_path)
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(await engine.start())
    try:
        assert engine.cpu_seconds() is not None
        collection = client.bench.items
        await collection.insert_many([{"n": n, "text": "x" * 100} for n in range(300)])
        for _ in range(20):
            await collection.find({"n": {"$gt": 10}}).to_list()
        used = engine.cpu_seconds()
        assert used is not None
        assert used > 0
    finally:
        await client.close()
        await engine.stop()
