"""Two `crm serve` processes starting at once on one un-migrated seed database (one
MongoDB-wire server, the session's, shared over MONGODB_URI): both come up, the migration
runs once, nothing is duplicated, and each serves the other's writes."""

import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pymongo
import pytest

from config import Settings
from tests.live_server import CRM, LiveServer, serve
from tests.seed_fixture import seed_database

LEADS = 200


@pytest.fixture
def seed_database_name(settings: Settings) -> Iterator[str]:
    name = f"crm_two_{uuid.uuid4().hex[:8]}"
    with pymongo.MongoClient[dict[str, Any]](settings.mongodb_uri) as client:
        for collection, documents in seed_database(LEADS).items():
            client[name][collection].insert_many(documents)
        yield name
        client.drop_database(name)


def rest(server: LiveServer, method: str, path: str, body: object = None) -> Any:
    request = urllib.request.Request(
        f"{server.base_url}/api/crm{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {server.dev_token()}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def migration_lines(server: LiveServer) -> list[dict[str, Any]]:
    lines = []
    for line in server.output:
        if line.startswith("{") and '"crm.migration"' in line:
            lines.append(json.loads(line))
    return lines


def test_two_servers_start_on_one_unmigrated_database(
    settings: Settings, seed_database_name: str, tmp_path: Path
) -> None:
    env = {
        "MONGODB_URI": str(settings.mongodb_uri),
        "CRM_DB_NAME": seed_database_name,
        "CRM_LOG_FORMAT": "json",
    }
    starting: list[AbstractContextManager[LiveServer]] = [
        serve(tmp_path / "a", env),
        serve(tmp_path / "b", env),
    ]
    with ThreadPoolExecutor(2) as pool:  # both start at the same moment
        servers = list(pool.map(lambda server: server.__enter__(), starting))
    try:
        done = [
            line
            for server in servers
            for line in migration_lines(server)
            if line["message"].startswith("migration done")
        ]
        assert len(done) == 2, [s.output for s in servers]
        waited = any(
            line["message"].startswith("migration: another instance is migrating")
            for server in servers
            for line in migration_lines(server)
        )
        other = "waited for it" if waited else "started after it"
        print(f"\ntwo instances: one migrated, the other {other}")
        # One instance did the work; the other waited for it, then found nothing to do.
        changed = sorted(sum(line["changed"].values()) for line in done)
        assert changed[0] == 0, done
        assert changed[1] >= 4 * LEADS, done

        with pymongo.MongoClient[dict[str, Any]](settings.mongodb_uri) as client:
            database = client[seed_database_name]
            numbers = [lead["leadNumber"] for lead in database.leads.find({})]
            assert sorted(numbers) == list(range(1, LEADS + 1))
            for collection in ("lead_emails", "lead_calls", "lead_tasks", "lead_notes"):
                assert database[collection].count_documents({}) == LEADS
            assert database.counters.find_one({"_id": "lead"}) == {"_id": "lead", "seq": LEADS}

        # Both serve, and each the other's writes: new ids continue from the seed's highest.
        first = rest(servers[0], "POST", "/leads", {"firstName": "Ada"})
        second = rest(servers[1], "POST", "/leads", {"firstName": "Grace"})
        assert {first["lead_id"], second["lead_id"]} == {
            f"LEAD-{LEADS + 1:03d}",
            f"LEAD-{LEADS + 2:03d}",
        }
        assert rest(servers[1], "GET", f"/leads/{first['lead_id']}")["firstName"] == "Ada"
        assert len(rest(servers[0], "GET", "/leads")) == LEADS + 2
    finally:
        for server in starting:
            server.__exit__(None, None, None)


def test_crm_doctor_and_crm_migrate(settings: Settings, seed_database_name: str) -> None:
    """`crm doctor` names each unreadable document and what is not migrated yet; `crm
    migrate` does the migration from the command line."""
    with pymongo.MongoClient[dict[str, Any]](settings.mongodb_uri) as client:
        broken = client[seed_database_name].leads.insert_one(
            {"lead_id": "LEAD-900", "status": "Won over", "createdAt": "yesterday"}
        )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MONGODB_URI"))},
        "MONGODB_URI": str(settings.mongodb_uri),
        "CRM_DB_NAME": seed_database_name,
    }

    def crm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CRM, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    doctor = crm("doctor")
    assert doctor.returncode == 1, doctor.stderr
    assert f"leads _id={broken.inserted_id} (LEAD-900): firstName: Field required" in doctor.stdout
    assert f"not migrated yet: {LEADS + 1} documents without leads.leadNumber" in doctor.stdout

    migrated = crm("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "migration done:" in migrated.stdout

    again = crm("doctor")
    assert "LEAD-900" in again.stdout
    assert "not migrated yet" not in again.stdout
