"""The embedded database keeps every acknowledged write when its process is killed mid-burst,
and `crm backup` copies it consistently while it serves."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import DuplicateKeyError, PyMongoError

from models.database import EmbeddedMongo

ROOT = Path(__file__).resolve().parent.parent
# The embedded server alone in its own process: prints its URI, then serves until killed.
SERVER = """
import asyncio, sys
from pathlib import Path
from models.database import EmbeddedMongo

async def main():
    print(await EmbeddedMongo(Path(sys.argv[1])).start(), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@contextmanager
def embedded_process(data: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(data)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield process, process.stdout.readline().strip()
    finally:
        process.kill()
        process.wait()


class Writer(threading.Thread):
    """Inserts numbered documents and bumps a counter, one acknowledged write at a time."""

    def __init__(self, uri: str) -> None:
        super().__init__(daemon=True)
        self.client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=2000)
        self.acknowledged: list[int] = []
        self.bumps = 0
        self.stop = threading.Event()

    def run(self) -> None:
        items = self.client["durable"]["items"]
        n = len(self.acknowledged)
        try:
            while not self.stop.is_set():
                items.insert_one({"n": n, "payload": "x" * 200})
                self.acknowledged.append(n)
                items.update_one({"_id": "counter"}, {"$inc": {"value": 1}}, upsert=True)
                self.bumps += 1
                n += 1
        except PyMongoError:
            pass  # the server is gone


def check_intact(data: Path, acknowledged: list[int], bumps: int) -> int:
    """Reopens `data` with a new engine: every acknowledged write is there, the file and its
    unique index are sound. Returns how many numbered documents it holds."""
    with sqlite3.connect(data / "crm.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()

    async def inspect() -> int:
        embedded = EmbeddedMongo(data)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(await embedded.start())
        try:
            items = client["durable"]["items"]
            stored = {doc["n"] async for doc in items.find({"n": {"$exists": True}})}
            assert set(acknowledged) <= stored
            counter = await items.find_one({"_id": "counter"})
            assert counter is not None
            assert counter["value"] >= bumps
            with pytest.raises(DuplicateKeyError):
                await items.insert_one({"n": acknowledged[-1]})
            assert await items.count_documents({"n": {"$exists": True}}) == len(stored)
            return len(stored)
        finally:
            await client.close()
            await embedded.stop()

    return asyncio.run(inspect())


def start_items(uri: str) -> None:
    client: MongoClient[dict[str, Any]]
    with MongoClient(uri) as client:
        client["durable"]["items"].create_index("n", unique=True, sparse=True)


def test_sigkill_during_a_burst_of_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    with embedded_process(tmp_path) as (process, uri):
        start_items(uri)
        writer = Writer(uri)
        writer.start()
        while len(writer.acknowledged) < 150 and writer.is_alive():
            threading.Event().wait(0.01)
        os.kill(process.pid, signal.SIGKILL)  # mid-burst: the writer is still sending
        writer.join(timeout=10)
        writer.client.close()
    assert len(writer.acknowledged) >= 150
    check_intact(tmp_path, writer.acknowledged, writer.bumps)


def test_backup_copies_a_consistent_database_while_it_serves(tmp_path: Path) -> None:
    data, copy = tmp_path / "data", tmp_path / "copy"
    copy.mkdir()
    env = {**os.environ, "CRM_DATA_DIR": str(data)}
    env.pop("MONGODB_URI", None)
    crm = [sys.executable, "-c", "import cli; cli.main()", "backup"]
    with embedded_process(data) as (_process, uri):
        start_items(uri)
        writer = Writer(uri)
        writer.start()
        while len(writer.acknowledged) < 100:
            threading.Event().wait(0.01)
        before = list(writer.acknowledged)
        backup = subprocess.run(
            [*crm, str(copy / "crm.sqlite3")], cwd=ROOT, env=env, capture_output=True, text=True
        )
        again = subprocess.run(
            [*crm, str(copy / "crm.sqlite3")], cwd=ROOT, env=env, capture_output=True, text=True
        )
        writer.stop.set()
        writer.join(timeout=10)
        writer.client.close()
    assert backup.returncode == 0, backup.stderr
    assert again.returncode != 0  # never overwrites a file
    assert "exists" in again.stderr
    held = check_intact(copy, before, len(before) - 1)
    assert held <= len(writer.acknowledged)  # a snapshot: nothing half-written, nothing extra
