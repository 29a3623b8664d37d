"""Times the start-up migration (services/migration.py) over a database in the seed's shapes.

    uv run python bench/migration.py --leads 1000            # the embedded engine
    MONGODB_URI=mongodb://localhost:27017 uv run python bench/migration.py --leads 10000

Loads `--leads` seed-shaped leads (tests/seed_fixture.py: each with an email, call, task and
note; half the timestamps ISO strings) into a throwaway database, runs the migration once
(timed) and a second time (a no-op run), prints both and the time per 1,000 leads, and drops
the database.
"""

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beanie import init_beanie
from pymongo import AsyncMongoClient

from models import DOCUMENT_MODELS
from models.database import EmbeddedMongo
from services.migration import migrate
from tests.seed_fixture import seed_database

LOAD_BATCH = 1000


async def run(leads: int) -> None:
    embedded = None
    uri = os.environ.get("MONGODB_URI")
    if uri is None:
        embedded = EmbeddedMongo(Path(tempfile.mkdtemp(prefix="crm-bench-migration-")))
        uri = await embedded.start()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri, tz_aware=True)
    name = f"crm_bench_migration_{uuid.uuid4().hex[:8]}"
    database = client[name]
    try:
        started = time.monotonic()
        for collection, documents in seed_database(leads).items():
            for start in range(0, len(documents), LOAD_BATCH):
                await database[collection].insert_many(documents[start : start + LOAD_BATCH])
        loaded = time.monotonic() - started
        await init_beanie(database=database, document_models=DOCUMENT_MODELS)
        first = await migrate()
        second = await migrate()
        per_thousand = first.seconds / leads * 1000
        print(f"engine: {'embedded (mongoeco, SQLite)' if embedded else uri.split('@')[-1]}")
        print(f"loaded {leads} leads with 4 children each in {loaded:.1f} s")
        print(f"migration: {first.total} documents changed in {first.seconds:.2f} s")
        print(f"  by collection: {first.changed}")
        print(f"second run (nothing to do): {second.seconds:.2f} s, {second.total} changed")
        print(f"per 1,000 leads: {per_thousand:.1f} s")
    finally:
        await client.drop_database(name)
        await client.close()
        if embedded is not None:
            await embedded.stop()
            shutil.rmtree(embedded.path.parent, ignore_errors=True)  # its temporary data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--verbose", action="store_true", help="the migration's progress lines")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    asyncio.run(run(args.leads))


if __name__ == "__main__":
    main()
