"""The embedded engine alone: PyMongo → the wire server in this process, the app's indexes.

    uv run python bench/engine_ops.py --leads 10000 [--engine stock|adapted] [--repeat 20]
                                      [--data DIR] [--bulk 1000] [--batches 3]
                                      [--order single,demo,imported]

Seeds N seed-shaped leads (bulk `insert_many`, children included) once into DIR (reused on the
next run with the same DIR), then times the commands the app sends per operation: insert_one,
the pinned `find_one_and_update`, a sorted page of 50 in each order, `count`. Mean ms each.
Then `insert_many` of `--bulk` (1000) demo leads (the seed's shape: ~3 timeline entries and
more, created over 120 days, encoded by Beanie beforehand) into the collection, in leads/s;
then as many leads as an import creates them (`services.imports.imported_lead`: the demo
leads' fields, one timeline entry, created now), in `--batches` batches of `--bulk`.
`--order` runs those three steps in another order: `imported,demo,single` times the first
write after a start (an empty page cache, no collection facts cached yet).
`--engine stock` runs mongoeco's own `SQLiteEngine` on the same file (the "before"), with
its own physical indexes restored first (one per logical index; the adapted engine shares one
per table, and rebuilds its index rows and keyword table, at its next start);
`--engine unshared` the adapted engine without shared physical indexes, on the same restored
layout.
"""

import argparse
import asyncio
import hashlib
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from beanie import init_beanie  # noqa: E402
from beanie.odm.utils.dump import get_dict  # noqa: E402
from bson import ObjectId  # noqa: E402
from mongoeco.engines.sqlite import SQLiteEngine  # noqa: E402
from mongoeco.engines.sqlite_query import index_expressions_sql  # noqa: E402
from pymongo import AsyncMongoClient  # noqa: E402

from models import DOCUMENT_MODELS  # noqa: E402
from models.database import EmbeddedMongo  # noqa: E402
from models.embedded_engine import SHARED_COLUMNS, SHARED_INDEXES, CrmSQLiteEngine  # noqa: E402
from services.demo import add_demo_leads, demo_lead  # noqa: E402
from services.imports import imported_lead  # noqa: E402
from services.viewer import Viewer  # noqa: E402

ORDERS = ("createdAt", "updatedAt", "leadNumber", "annualRevenue", "firstName")
# The columns of a typical import file (python names of the lead catalog).
IMPORTED_FIELDS = {
    "salutation", "first_name", "last_name", "email", "mobile", "organization", "website",
    "job_title", "industry", "source", "territory", "annual_revenue", "no_of_employees",
}  # fmt: skip
IMPORTER = Viewer(id="bench", name="Bench", email=None, role="admin")


def restore_stock_indexes(path: Path) -> None:
    """mongoeco's own layout: one physical index, named by mongoeco, per logical index; an
    expression index on `documents` per ordered index, over every collection's rows."""
    if not path.exists():
        return
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT db_name, coll_name, name, scalar_physical_name, multikey_flag, physical_name,"
            " keys FROM indexes"
        ).fetchall()
        for db_name, coll_name, name, scalar, multikey, expression, keys in rows:
            if expression:  # unscoped, and kept for multikey-capable indexes too
                columns = ", ".join(
                    f"{sql}{' DESC' if direction == -1 else ''}"
                    for field, direction in json.loads(keys)
                    for sql in index_expressions_sql(field)
                )
                conn.execute(f'DROP INDEX IF EXISTS "{expression}"')
                conn.execute(
                    f'CREATE INDEX "{expression}" ON documents (db_name, coll_name, {columns})'
                )
            for table, kind, wanted in (
                (
                    "scalar_index_entries",
                    "scalar",
                    scalar == SHARED_INDEXES["scalar_index_entries"],
                ),
                ("multikey_entries", "multikey", bool(multikey)),
            ):
                if not wanted:
                    continue
                digest = hashlib.sha1(f"{db_name}:{coll_name}:{name}:{kind}".encode()).hexdigest()
                physical = f"{'scidx' if kind == 'scalar' else 'mkidx'}_{digest[:16]}"
                conn.execute(
                    f"UPDATE indexes SET {kind}_physical_name = ?"
                    " WHERE db_name = ? AND coll_name = ? AND name = ?",
                    (physical, db_name, coll_name, name),
                )
                conn.execute(f'CREATE INDEX IF NOT EXISTS "{physical}" ON {table} {SHARED_COLUMNS}')
        for shared in (*SHARED_INDEXES.values(), "crm_multikey_entries_storage"):
            conn.execute(f'DROP INDEX IF EXISTS "{shared}"')
        # What the stock engine writes bypasses the adapted engine's kept rows (counts, the
        # keyword table): the adapted engine rebuilds them at its next start.
        conn.execute("DROP TABLE IF EXISTS crm_engine_state")
    conn.close()


class UnsharedEngine(CrmSQLiteEngine):
    """The adapted engine with mongoeco's one physical index per logical index and no storage
    key index on multikey rows (the adaptation before docs/embedded-engine.md sections 10 and 11):
    `--engine unshared`."""

    _physical_scalar_index_name = SQLiteEngine._physical_scalar_index_name
    _physical_multikey_index_name = SQLiteEngine._physical_multikey_index_name

    @staticmethod
    def _share_physical_indexes(conn: sqlite3.Connection) -> None:
        pass


ENGINES: dict[str, type[SQLiteEngine]] = {
    "stock": SQLiteEngine,
    "unshared": UnsharedEngine,
    "adapted": CrmSQLiteEngine,
}


async def main(args: argparse.Namespace) -> None:
    engine = ENGINES[args.engine]
    if args.engine != "adapted":
        restore_stock_indexes(args.data / "crm.sqlite3")
    started = time.perf_counter()
    server = EmbeddedMongo(args.data, engine=engine)
    uri = await server.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    await init_beanie(database=client["crm"], document_models=DOCUMENT_MODELS)
    print(f"start + indexes: {time.perf_counter() - started:.2f} s", file=sys.stderr)
    leads = client["crm"]["leads"]
    have = await leads.count_documents({})
    if have < args.leads:
        started = time.perf_counter()
        await add_demo_leads(args.leads - have, random_seed=1)
        seconds = time.perf_counter() - started
        print(f"seeded {args.leads - have} leads in {seconds:.1f} s", file=sys.stderr)
    ids = [doc["_id"] async for doc in leads.find({}, {"_id": 1}).limit(2000)]
    rng = random.Random(1)
    counter = iter(range(time.time_ns() // 1000 % 2**31, 10**18))  # unique across runs on one DIR

    async def insert() -> None:
        n, now = next(counter), datetime.now(UTC)
        await leads.insert_one(
            {"lead_id": f"X-{n}-{ObjectId()}", "leadNumber": n % 2**31, "firstName": "Bench",
             "status": "NEW", "createdAt": now, "updatedAt": now, "annualRevenue": 1e6,
             "activities": []}
        )  # fmt: skip

    async def update() -> None:
        await leads.find_one_and_update(
            {"_id": rng.choice(ids), "createdBy": "demo"},
            {"$set": {"status": "CONTACTED"}, "$push": {"activities": {"type": "X"}}},
        )

    def page(field: str, direction: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            pipeline: list[dict[str, Any]] = [
                {"$match": {}},
                {"$sort": {field: direction, "_id": direction}},
                {"$limit": 51},
                {"$set": {"activitiesCount": {"$size": {"$ifNull": ["$activities", []]}}}},
                {"$unset": "activities"},
            ]
            await (await leads.aggregate(pipeline)).to_list()

        return run

    async def count() -> None:
        await leads.count_documents({})

    async def count_status() -> None:
        await leads.count_documents({"status": {"$in": ["CONTACTED"]}})

    ops: dict[str, Callable[[], Awaitable[None]]] = {
        "insert_one": insert,
        "find_one_and_update": update,
        "count_documents": count,
        "count_documents status": count_status,
    }
    for field in ORDERS:
        ops[f"page {field} desc"] = page(field, -1)
    first = next(counter) % 2**30 + 2**30  # lead numbers above the seed's

    async def demo() -> None:
        """`--bulk` demo leads in one `insert_many`."""
        now = datetime.now(UTC)
        documents = [
            get_dict(demo_lead(rng, first + n, now)[0], to_db=True, keep_nulls=False)
            for n in range(args.bulk)
        ]
        started = time.perf_counter()
        await leads.insert_many(documents)
        seconds = time.perf_counter() - started
        print(f"{f'insert_many {args.bulk}':<28} {args.bulk / seconds:8.0f} leads/s")

    async def imported() -> None:
        """`--batches` batches of `--bulk` leads built as an import builds them."""
        now = datetime.now(UTC)
        for batch in range(args.batches):
            base = first + args.bulk * (batch + 1)
            job = str(ObjectId())
            documents = [
                get_dict(
                    imported_lead(
                        demo_lead(rng, base + n, now)[0].model_dump(include=IMPORTED_FIELDS),
                        IMPORTER,
                        base + n,
                        job,
                        n + 2,
                        by=IMPORTER.id,
                        now=datetime.now(UTC),
                    ),
                    to_db=True,
                )
                for n in range(args.bulk)
            ]
            started = time.perf_counter()
            await leads.insert_many(documents, ordered=False)
            seconds = time.perf_counter() - started
            name = f"insert_many {args.bulk} imported"
            print(f"{name:<28} {args.bulk / seconds:8.0f} leads/s (batch {batch + 1})")

    async def single() -> None:
        """Each single-document command `--repeat` times (after one unmeasured run)."""
        for name, op in ops.items():
            await op()
            started = time.perf_counter()
            for _ in range(args.repeat):
                await op()
            print(f"{name:<28} {(time.perf_counter() - started) * 1000 / args.repeat:8.2f} ms")

    steps = {"single": single, "demo": demo, "imported": imported}
    for step in args.order.split(","):
        if step == "single" or args.bulk:
            await steps[step]()
    await client.close()
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--engine", choices=tuple(ENGINES), default="adapted")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--bulk", type=int, default=1000, help="leads per insert_many (0: none)")
    parser.add_argument("--batches", type=int, default=3, help="batches of imported leads")
    parser.add_argument(
        "--order",
        default="single,demo,imported",
        help="the steps, comma-separated (imported,demo,single: bulk inserts right after start)",
    )
    arguments = parser.parse_args()
    temporary = arguments.data is None  # kept only when named, to be reused
    arguments.data = arguments.data or Path(tempfile.mkdtemp(prefix="crm-engine-"))
    try:
        asyncio.run(main(arguments))
    finally:
        if temporary:
            shutil.rmtree(arguments.data, ignore_errors=True)
