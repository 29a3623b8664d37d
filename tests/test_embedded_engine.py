"""The adapted embedded engine (models/embedded_engine.py) keeps MongoDB's semantics where it
takes its shortcuts, and its shortcuts read no whole collection: checked over the wire through
PyMongo, with the SQL the engine runs traced and explained (no timings)."""

import asyncio
import inspect
import random
import re
import sqlite3
import struct
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.son import SON
from mongoeco import AsyncMongoClient as EcoClient
from mongoeco.engines.sqlite import SQLiteEngine
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

import models.embedded_engine as adapted
from models.database import EmbeddedMongo
from models.embedded_engine import CrmSQLiteEngine, EngineVersionMismatch, check_engine_version
from services.pagination import Order, after_filter

Collection = AsyncCollection[dict[str, Any]]


class TracedEngine(CrmSQLiteEngine):
    """Records the SQL of every connection while `tracing` is on."""

    statements: list[str] = []
    tracing = False

    def _create_sqlite_connection(self) -> sqlite3.Connection:
        connection = super()._create_sqlite_connection()
        connection.set_trace_callback(self._trace)
        return connection

    @classmethod
    def _trace(cls, statement: str) -> None:
        if cls.tracing:
            cls.statements.append(statement)


class Server:
    def __init__(self, path: Path, client: AsyncMongoClient[dict[str, Any]]) -> None:
        self.path, self.client, self.count = path, client, 0

    def collection(self) -> Collection:
        self.count += 1
        return self.client["engine_test"][f"c{self.count}"]


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    data = tmp_path_factory.mktemp("engine")
    embedded = EmbeddedMongo(data, engine=TracedEngine)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        await embedded.start(), tz_aware=True
    )
    yield Server(embedded.path, client)
    await client.close()
    await embedded.stop()


# --- the version pin ---------------------------------------------------------------------


def test_the_installed_engine_is_the_pinned_one() -> None:
    check_engine_version()


def test_another_engine_version_is_refused_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapted, "version", lambda name: "4.12.0")
    with pytest.raises(EngineVersionMismatch) as refused:
        check_engine_version()
    assert "mongoeco==4.11.0" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_every_overridden_internal_exists_in_the_engine_with_its_signature() -> None:
    """Fails when mongoeco renames or re-shapes an internal the adaptation replaces."""
    for name, member in vars(CrmSQLiteEngine).items():
        if name.startswith("__") or not callable(member) or not hasattr(SQLiteEngine, name):
            continue
        ours = inspect.signature(member)
        theirs = inspect.signature(getattr(SQLiteEngine, name))
        assert list(ours.parameters) == list(theirs.parameters), name
    for name in (
        "_cache_state",
        "_storage_key",
        "_multikey_value_signature",
        "_multikey_type_score",
        "_field_contains_tagged_value_type_in_collection",
        "_translate_query_plan_with_multikey",
        "_plan_has_array_traversing_paths",
        "_lookup_collection_id",
        "_load_indexes",
    ):
        assert hasattr(SQLiteEngine, name) or name == "_cache_state", name


# --- duplicates ----------------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EQUAL_IDS = [
    (ObjectId("65f000000000000000000001"), ObjectId("65f000000000000000000001")),
    ("lead-1", "lead-1"),
    (1, 1),
    (1, 1.0),
    (1, Int64(1)),
    (Int64(7), 7.0),
    (1, Decimal128("1")),
    (NOW, NOW),
    (True, True),
    (None, None),
    ({"a": 1}, {"a": 1}),
]


@pytest.mark.parametrize(("first", "second"), EQUAL_IDS, ids=[repr(p) for p in EQUAL_IDS])
async def test_an_equal_id_of_any_bson_type_is_a_duplicate(
    server: Server, first: object, second: object
) -> None:
    collection = server.collection()
    await collection.insert_one({"_id": first})
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"_id": second})
    assert await collection.count_documents({}) == 1


async def test_different_ids_are_not_duplicates(server: Server) -> None:
    collection = server.collection()
    ids: list[object] = [ObjectId(), "1", 1, 2.5, NOW, False, {"a": 2}]
    await collection.insert_many([{"_id": value} for value in ids])
    assert await collection.count_documents({}) == len(ids)


@pytest.mark.parametrize(
    ("stored", "duplicate"),
    [(1, 1.0), (1, Int64(1)), (Int64(5), 5), (2, Decimal128("2")), (Decimal128("3.5"), 3.5)],
)
async def test_equal_numbers_of_any_type_collide_in_a_unique_index(
    server: Server, stored: object, duplicate: object
) -> None:
    collection = server.collection()
    await collection.create_index("n", unique=True, sparse=True)
    await collection.insert_many([{"n": stored}, {"n": 100}, {"other": 1}, {"other": 2}])
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"n": duplicate})
    await collection.insert_one({"n": 101})  # a new number is fine
    lead = await collection.find_one({"n": 101})
    assert lead is not None
    with pytest.raises(DuplicateKeyError):  # an update into a taken number too
        await collection.update_one({"_id": lead["_id"]}, {"$set": {"n": duplicate}})


async def test_a_partial_unique_index_only_constrains_the_documents_it_holds(
    server: Server,
) -> None:
    """contacts: `email` unique among strings only."""
    collection = server.collection()
    await collection.create_index(
        "email", unique=True, partialFilterExpression={"email": {"$type": "string"}}
    )
    await collection.insert_many([{"name": "a"}, {"name": "b"}, {"email": None}, {"email": None}])
    await collection.insert_one({"email": "jane@example.com"})
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"email": "jane@example.com"})
    await collection.insert_one({"email": "Jane@example.com"})  # another string


async def test_a_unique_index_over_arrays_compares_their_elements(server: Server) -> None:
    collection = server.collection()
    await collection.create_index("tags", unique=True)
    await collection.insert_one({"tags": ["a", "b"]})
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"tags": "b"})
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"tags": ["c", "a"]})
    await collection.insert_one({"tags": ["c"]})


async def test_insert_many_reports_duplicates_like_mongodb(server: Server) -> None:
    ordered, unordered = server.collection(), server.collection()
    for collection in (ordered, unordered):
        await collection.create_index("k", unique=True)
        await collection.insert_one({"_id": 1, "k": "taken"})
    batch: list[dict[str, Any]] = [
        {"_id": 2, "k": "x"},
        {"_id": 1, "k": "y"},
        {"_id": 3, "k": "taken"},
        {"_id": 4},
    ]

    with pytest.raises(BulkWriteError) as stopped:
        await ordered.insert_many(batch)
    assert stopped.value.details["nInserted"] == 1
    assert [e["index"] for e in stopped.value.details["writeErrors"]] == [1]
    assert stopped.value.details["writeErrors"][0]["code"] == 11000
    assert sorted(await ordered.distinct("_id")) == [1, 2]

    with pytest.raises(BulkWriteError) as went_on:
        await unordered.insert_many(batch, ordered=False)
    assert went_on.value.details["nInserted"] == 2
    assert [e["index"] for e in went_on.value.details["writeErrors"]] == [1, 2]
    assert sorted(await unordered.distinct("_id")) == [1, 2, 4]
    assert len(adapted.ENCODED) == 0  # the encodings kept for the batch are let go


# --- reads ---------------------------------------------------------------------------------

MIXED: list[object] = [
    3,
    -2.5,
    Decimal128("2.75"),
    10**12,
    "apple",
    "Zebra",
    "",
    NOW,
    NOW - timedelta(microseconds=1000),
    NOW + timedelta(days=1),
    None,
    True,
    False,
    ObjectId("65f000000000000000000009"),
]
RANK = {type(None): 0, int: 1, float: 1, Decimal128: 1, str: 2, ObjectId: 3, bool: 4, datetime: 5}


def bson_key(value: object) -> tuple[int, Any]:
    """MongoDB's sort order for the values in MIXED (missing sorts as null)."""
    if isinstance(value, Decimal128):
        return RANK[Decimal128], float(value.to_decimal())
    if isinstance(value, bool):
        return RANK[bool], value
    return RANK[type(value)], value if value is not None else 0


async def page(
    collection: Collection, direction: int, limit: int, query: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    pipeline: list[dict[str, Any]] = [
        {"$match": query or {}},
        {"$sort": {"v": direction, "_id": direction}},
        {"$limit": limit},
    ]
    return await (await collection.aggregate(pipeline)).to_list()


@pytest.mark.parametrize("with_missing", [False, True])
async def test_sorted_pages_follow_mongodb_order_across_types_nulls_and_deletes(
    server: Server, with_missing: bool
) -> None:
    collection = server.collection()
    await collection.create_index("v")
    documents = [{"_id": ObjectId(), "v": value} for value in MIXED * 2]
    if with_missing:
        documents.append({"_id": ObjectId()})
    await collection.insert_many(documents)
    deleted = documents[::5]
    await collection.delete_many({"_id": {"$in": [d["_id"] for d in deleted]}})
    kept = [d for d in documents if d not in deleted]
    for direction in (ASCENDING, DESCENDING):
        expected = sorted(
            kept,
            key=lambda d: (bson_key(d.get("v")), d["_id"]),
            reverse=direction == DESCENDING,
        )
        got = await page(collection, direction, 10)
        assert [d["_id"] for d in got] == [d["_id"] for d in expected[:10]]
        whole = await page(collection, direction, len(kept) + 5)
        assert [d["_id"] for d in whole] == [d["_id"] for d in expected]


async def test_a_flag_set_by_a_write_changes_the_next_read(server: Server) -> None:
    """The engine caches per-collection facts ("no array at v"): a write that breaks one
    must be seen by the very next query and sort."""
    collection = server.collection()
    await collection.create_index("v")
    await collection.insert_many([{"v": n} for n in range(5)])
    assert len(await page(collection, ASCENDING, 3)) == 3  # caches the facts about v
    assert await collection.count_documents({"v": {"$gt": 3}}) == 1
    array = (await collection.insert_one({"v": [1, 50]})).inserted_id
    assert await collection.count_documents({"v": {"$gt": 3}}) == 2  # 4 and [1, 50]
    # Ascending, an array sorts by its smallest element: 0, 1, [1, 50] (a later _id), 2, …
    assert [d["_id"] for d in await page(collection, ASCENDING, 3)][2] == array


async def test_id_with_more_conditions_matches_only_while_they_hold(server: Server) -> None:
    collection = server.collection()
    lead = (await collection.insert_one({"status": "NEW", "n": 1})).inserted_id
    await collection.insert_many([{"status": "NEW"} for _ in range(20)])
    updated = await collection.find_one_and_update(
        {"_id": lead, "status": "NEW"},
        {"$set": {"status": "CONTACTED"}},
        return_document=ReturnDocument.AFTER,
    )
    assert updated is not None
    assert updated["status"] == "CONTACTED"
    missed = await collection.find_one_and_update(
        {"_id": lead, "status": "NEW"}, {"$set": {"status": "JUNK"}}
    )
    assert missed is None
    assert await collection.find_one_and_update({"_id": str(lead)}, {"$set": {"x": 1}}) is None
    assert (await collection.find_one({"_id": lead}) or {})["status"] == "CONTACTED"


async def test_ids_in_a_list_are_found_by_key_like_mongodb(server: Server) -> None:
    collection = server.collection()
    oids = [ObjectId() for _ in range(3)]
    written = [{"_id": oid, "n": n} for n, oid in enumerate(oids)]
    written += [{"_id": "lead-1", "n": 3}, {"_id": 1, "n": 4}, {"_id": Int64(2), "n": 5}]
    await collection.insert_many(written)
    queries: list[tuple[dict[str, Any], list[int]]] = [
        ({"_id": {"$in": [oids[0], oids[2], ObjectId()]}}, [0, 2]),
        ({"_id": {"$in": ["lead-1", str(oids[1])]}}, [3]),  # a string is not its ObjectId
        ({"_id": {"$in": [oids[1], "lead-1"]}, "n": {"$gt": 1}}, [3]),
        ({"_id": {"$in": [1.0, 2]}}, [4, 5]),  # numbers: any type (the stock path)
        ({"$and": [{"_id": oids[2]}, {"n": 2}]}, [2]),
    ]
    for query, expected in queries:
        found = await collection.find(query).sort("n", 1).to_list()
        assert [document["n"] for document in found] == expected, query
        counted = await (await collection.aggregate([{"$match": query}])).to_list()
        assert sorted(document["n"] for document in counted) == expected, query


@pytest.mark.parametrize("spelling", [Decimal128("2.5"), Decimal128("-0"), Decimal128("1E+3")])
async def test_a_decimal_anywhere_in_a_field_is_compared_as_a_number(
    server: Server, spelling: Decimal128
) -> None:
    collection = server.collection()
    await collection.insert_many([{"n": n, "other": n} for n in (1, 2, 3, 4.5)])
    await collection.insert_one({"n": spelling, "other": 0})
    assert await collection.count_documents({"other": {"$gt": 2}}) == 2  # no decimal there
    value = float(spelling.to_decimal())
    for bound, expected in (  # plain-number bounds: only the stored decimal needs Python
        ({"$gt": value - 0.5}, sum(n > value - 0.5 for n in (1, 2, 3, 4.5)) + 1),
        ({"$lt": value + 0.5}, sum(n < value + 0.5 for n in (1, 2, 3, 4.5)) + 1),
        ({"$gt": value + 0.5}, sum(n > value + 0.5 for n in (1, 2, 3, 4.5))),
    ):
        found = await collection.find({"n": bound}).to_list()
        assert len(found) == expected, (spelling, bound)


async def test_count_documents_counts_like_find(server: Server) -> None:
    collection = server.collection()
    await collection.create_index("status")
    await collection.insert_many([{"status": s} for s in ["a", "b", "a", "c", "a"] * 3])
    for query in ({}, {"status": "a"}, {"status": {"$in": ["b", "c"]}}, {"status": "zzz"}):
        found = len(await collection.find(query).to_list())
        assert await collection.count_documents(query) == found
    assert await collection.count_documents({"status": "a"}, skip=2, limit=5) == 5
    assert await collection.count_documents({"status": "a"}, skip=8) == 1


async def test_a_whole_collection_is_counted_from_its_kept_count(tmp_path: Path) -> None:
    """Every way of writing keeps the count exact (in the writing transaction); a count the
    file holds wrongly (written by another engine) is redone at the next start."""
    embedded = EmbeddedMongo(tmp_path)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(await embedded.start())
    database = client["count_test"]
    collection = database["c"]

    async def counted() -> tuple[int, int]:
        return await collection.count_documents({}), len(await collection.find({}).to_list())

    await collection.insert_many([{"_id": n} for n in range(10)])
    with pytest.raises(BulkWriteError):
        await collection.insert_many([{"_id": 10}, {"_id": 3}, {"_id": 11}])  # stops at 3
    await collection.insert_one({"_id": 12})
    await collection.update_one({"_id": 13}, {"$set": {"a": 1}}, upsert=True)  # inserts
    await collection.update_one({"_id": 13}, {"$set": {"a": 2}}, upsert=True)  # updates
    await collection.replace_one({"_id": 14}, {"a": 3}, upsert=True)
    await collection.find_one_and_delete({"_id": 0})
    await collection.delete_many({"_id": {"$in": [1, 2, 99]}})
    assert await counted() == (11, 11)
    assert await collection.count_documents({}, skip=3, limit=5) == 5
    await collection.drop()
    assert await collection.count_documents({}) == 0
    await collection.insert_many([{"_id": n} for n in range(4)])
    await client.close()
    await embedded.stop()

    with sqlite3.connect(embedded.path) as conn:
        conn.execute("UPDATE crm_document_counts SET documents = 99")
    conn.close()
    embedded = EmbeddedMongo(tmp_path)
    client = AsyncMongoClient(await embedded.start())
    collection = client["count_test"]["c"]
    assert await counted() == (4, 4)
    await client.close()
    await embedded.stop()


# --- files from other engine versions ------------------------------------------------------


async def test_rows_an_older_engine_left_are_rebuilt_or_bypassed(tmp_path: Path) -> None:
    """A file whose index rows were not kept by this engine version (no marker) is
    re-indexed at start; an `_id` stored under another key still counts as a duplicate."""
    embedded = EmbeddedMongo(tmp_path)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(await embedded.start())
    collection = client["engine_test"]["old"]
    await collection.create_index("n", unique=True)
    await collection.insert_many([{"_id": ObjectId(), "n": n} for n in range(10)])
    await client.close()
    await embedded.stop()

    odd = ObjectId()
    with sqlite3.connect(tmp_path / "crm.sqlite3") as conn:  # what an older engine left
        conn.execute("DELETE FROM scalar_index_entries")
        conn.execute("DELETE FROM crm_engine_state")
        conn.execute(
            "INSERT INTO documents VALUES ('engine_test', 'old', ?, ?)",
            (f"legacy:{odd}", f'{{"_id":{{"$mongoeco":{{"type":"objectid","value":"{odd}"}}}}}}'),
        )
    conn.close()

    embedded = EmbeddedMongo(tmp_path)
    client = AsyncMongoClient(await embedded.start())
    collection = client["engine_test"]["old"]
    try:
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"n": 4})
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"_id": odd})
    finally:
        await client.close()
        await embedded.stop()


# --- no whole-collection scans -------------------------------------------------------------

# A plan step that reads every row of a collection: a table scan, a search on the collection
# prefix alone (db_name, coll_name) or on an index's prefix alone (collection_id, index_name),
# the keyword table read without a MATCH.
WHOLE = re.compile(
    r"^SCAN (documents|scalar_index_entries|multikey_entries)\b(?! USING)"
    r"|^SEARCH (documents|holder) USING .*\(db_name=\? AND coll_name=\?\)$"
    r"|^SCAN crm_keywords VIRTUAL TABLE INDEX \d+:(?!=?M)"
    r"|^SEARCH (scalar_index_entries|multikey_entries) USING"
    r" .*\(collection_id=\? AND index_name=\?\)$"
    r"|^SEARCH (scalar_index_entries|multikey_entries) USING .*\(collection_id=\?\)$"
)


def full_scans(path: Path, statements: list[str]) -> list[str]:
    """The statements whose plan (EXPLAIN QUERY PLAN on the same file) reads a whole collection
    or index (sorting what it read included): the cost that grows with the collection. Not: a
    LIMIT-ed walk of an index in its own order (stops after the page), and a `COUNT(*)` from a
    covering index (counts index entries, reads no document)."""
    found = []
    with sqlite3.connect(path) as conn:
        for statement in statements:
            if not re.match(r"\s*(SELECT|UPDATE|DELETE)", statement, re.IGNORECASE):
                continue
            try:
                plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}")]
            except sqlite3.OperationalError:  # temp objects of the engine's own connection
                continue
            if re.match(r"\s*SELECT COUNT\(\*\) FROM", statement) and all(
                "COVERING INDEX" in step for step in plan
            ):
                continue
            walk = " LIMIT " in statement and not any("TEMP B-TREE" in step for step in plan)
            if any(WHOLE.search(step) for step in plan) and not walk:
                found.append(statement)
    conn.close()
    return found


@pytest.fixture
def traced(server: Server) -> Iterator[list[str]]:
    TracedEngine.statements = []
    yield TracedEngine.statements
    TracedEngine.tracing = False


async def leads_like(server: Server) -> Collection:
    """A collection shaped like `leads`: the app's index kinds, 300 documents."""
    collection = server.collection()
    await collection.create_indexes(
        [
            IndexModel("lead_id", unique=True),
            IndexModel("leadNumber", unique=True, sparse=True),
            IndexModel([("createdAt", DESCENDING)]),
            IndexModel("updatedAt"),
            IndexModel("status"),
        ]
    )
    await collection.insert_many(
        [
            {
                "lead_id": f"LEAD-{n:03d}",
                "leadNumber": n,
                "status": ("NEW", "CONTACTED")[n % 2],
                "createdAt": NOW + timedelta(minutes=n),
                "updatedAt": NOW + timedelta(minutes=n),
                "activities": [{"type": "CREATED"}],
            }
            for n in range(300)
        ]
    )
    return collection


async def operations(collection: Collection, n: int) -> None:
    """One of each command the app sends per request, as the services send them."""
    await collection.insert_one(
        {"lead_id": f"LEAD-{n}", "leadNumber": n, "status": "NEW", "createdAt": NOW,
         "updatedAt": NOW, "activities": []}
    )  # fmt: skip
    some = await collection.find_one({"lead_id": "LEAD-007"})
    assert some is not None
    await collection.find_one_and_update(
        {"_id": some["_id"], "status": some["status"]},
        {"$set": {"status": "CONTACTED", "updatedAt": NOW}, "$push": {"activities": {"t": 1}}},
    )
    for field in ("createdAt", "updatedAt", "leadNumber"):
        pipeline: list[dict[str, Any]] = [
            {"$match": {}},
            {"$sort": {field: -1, "_id": -1}},
            {"$limit": 51},
        ]
        assert len(await (await collection.aggregate(pipeline)).to_list()) == 51
    await collection.count_documents({})
    await collection.count_documents({"status": {"$in": ["NEW"]}})
    # A lead's children: `$in` on lead_id, sorted by a field without an index of its own.
    keys = {"lead_id": {"$in": ["LEAD-001", "LEAD-002"]}}
    assert len(await collection.find(keys).sort("leadNumber", -1).to_list()) == 2
    assert len(await collection.find(keys).sort("activities.type", 1).to_list()) == 2
    await collection.count_documents({"lead_id": "LEAD-003"})
    # A page's leads again by `_id` (their timelines when shown, or counted).
    ids = {"_id": {"$in": [some["_id"]]}}
    assert len(await collection.find(ids).to_list()) == 1
    count = {"$project": {"n": {"$size": {"$ifNull": ["$activities", []]}}}}
    assert len(await (await collection.aggregate([{"$match": ids}, count])).to_list()) == 1
    await collection.delete_many({"lead_id": f"LEAD-{n}"})


async def test_the_app_s_commands_read_no_whole_collection(
    server: Server, traced: list[str]
) -> None:
    collection = await leads_like(server)
    await operations(collection, 10_000)  # computes the per-collection facts once
    TracedEngine.tracing = True
    await operations(collection, 10_001)
    TracedEngine.tracing = False
    assert traced, "no SQL traced"
    assert full_scans(server.path, traced) == []


async def test_the_stock_engine_would_scan(tmp_path: Path) -> None:
    """The guard above can fail: the same commands on mongoeco's own engine do scan."""

    class Stock(SQLiteEngine):
        statements: list[str] = []

        def _create_sqlite_connection(self) -> sqlite3.Connection:
            connection: sqlite3.Connection = super()._create_sqlite_connection()
            connection.set_trace_callback(Stock.statements.append)
            return connection

    embedded = EmbeddedMongo(tmp_path, engine=Stock)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        await embedded.start(), tz_aware=True
    )
    try:
        server = Server(embedded.path, client)
        collection = await leads_like(server)
        await operations(collection, 10_000)
        Stock.statements.clear()
        await operations(collection, 10_001)
        assert full_scans(embedded.path, Stock.statements)
    finally:
        await client.close()
        await embedded.stop()


# --- collection facts found through the field's expression index (§35) --------------------

# Values of `f` around the ones the facts look for: arrays (an index value "[…]"), strings
# that sort in that range, tagged scalars.
FACT_VALUES: list[Any] = [
    "a", "[", "[x]", "\\", "Z", 5, 2.5, Int64(7), Decimal128("1.5"), NOW, ObjectId(), None,
    {"a": 1}, [], [1, "x"], [[1]], True,
]  # fmt: skip
FACT_TYPES = ("int64", "decimal128", "decimal", "decimal128_public", "datetime", "objectid")


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "unindexed"])
async def test_collection_facts_are_the_stock_engine_s(tmp_path: Path, indexed: bool) -> None:
    """Whether some document holds an array, or a value of a tagged type, at a field: the
    adapted queries answer as the stock ones after each value is written, with and without
    an expression index on the field."""
    engine = CrmSQLiteEngine(str(tmp_path / "x.sqlite3"))
    await engine.connect()
    try:
        collection = EcoClient(engine=engine)["db"]["c"]
        if indexed:
            await collection.create_index([("f", ASCENDING), ("g", ASCENDING)])
        await collection.insert_one({"g": 0})
        for n, value in enumerate([*FACT_VALUES, *FACT_VALUES]):
            if n == len(FACT_VALUES):
                await collection.delete_many({})  # then each one alone
            else:
                await collection.delete_many({"f": {"$exists": True}})
            await collection.insert_one({"f": value, "g": n})
            for name, tag in [
                ("_field_is_top_level_array_in_collection", ()),
                *[("_field_contains_tagged_value_type_in_collection", (t,)) for t in FACT_TYPES],
            ]:
                answers = []
                for owner in (engine, super(CrmSQLiteEngine, engine)):  # ours, then stock
                    engine._invalidate_collection_features_cache()
                    answers.append(getattr(owner, name)("db", "c", "f", *tag))
                assert answers[0] == answers[1], (value, name, tag)
    finally:
        await engine.disconnect()


async def test_the_first_write_after_a_start_finds_the_facts_by_index(tmp_path: Path) -> None:
    """The facts a bulk insert checks for each unique field (an array there? an Int64?) are
    looked up in the field's expression index, not read from every document (the stock
    queries' `LIMIT 1` reads the whole collection when no document has one)."""

    async def started() -> tuple[EmbeddedMongo, AsyncMongoClient[dict[str, Any]]]:
        embedded = EmbeddedMongo(tmp_path, engine=TracedEngine)
        return embedded, AsyncMongoClient(await embedded.start(), tz_aware=True)

    embedded, client = await started()
    await leads_like(Server(embedded.path, client))
    await client.close()
    await embedded.stop()
    embedded, client = await started()  # no fact cached
    try:
        TracedEngine.statements, TracedEngine.tracing = [], True
        await client["engine_test"]["c1"].insert_many(
            [{"lead_id": f"LEAD-{n}", "leadNumber": n, "status": "NEW"} for n in (900, 901)]
        )
        TracedEngine.tracing = False
        facts = [
            statement
            for statement in TracedEngine.statements
            if statement.startswith("SELECT") and ("'array'" in statement or "type'" in statement)
        ]
        assert len(facts) == 3, facts  # an array at lead_id? at leadNumber? an Int64 there?
        with sqlite3.connect(embedded.path) as conn:
            for statement in facts:
                plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}")]
                assert len(plan) == 1, statement
                assert re.match(r"SEARCH documents USING INDEX \S+ \(.*<expr>", plan[0]), plan
        conn.close()
    finally:
        TracedEngine.tracing = False
        await client.close()
        await embedded.stop()


# --- the log copied into the file off the writer's thread (§36) ------------------------------


async def test_the_log_is_copied_into_the_file_off_the_writer_s_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write's commit leaves the WAL to the checkpointer (SQLite would copy it into the file
    in the commit past 1,000 pages); the checkpointer copies it when woken, and stops with the
    engine."""
    path = tmp_path / "x.sqlite3"
    held: list[adapted.Checkpointer] = []

    def hold(checkpointer: adapted.Checkpointer) -> None:
        held.append(checkpointer)

    def checkpointers() -> int:
        return [thread.name for thread in threading.enumerate()].count("crm-checkpointer")

    monkeypatch.setattr(adapted.Checkpointer, "wake", hold)
    others = checkpointers()  # other tests' engines
    engine = CrmSQLiteEngine(str(path))
    await engine.connect()
    try:
        assert checkpointers() == others + 1
        collection = EcoClient(engine=engine)["db"]["c"]
        await collection.insert_one({"_id": 0})
        size = path.stat().st_size
        await collection.insert_many([{"_id": n, "pad": "x" * 4000} for n in range(1, 2001)])
        assert held  # each write's commit wakes it
        assert path.stat().st_size == size  # 2,000+ pages in the log, none copied by the writer
        monkeypatch.undo()
        held[-1].wake()
        for _ in range(200):
            if path.stat().st_size > size:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size > size + 2000 * 4000
        assert await collection.count_documents({}) == 2001
    finally:
        await engine.disconnect()
    assert checkpointers() == others


# --- `$type: "string"` on a path through an array, in SQL -----------------------------------

THROUGH_ARRAY: list[tuple[dict[str, Any], bool]] = [  # (document, matches {"a.b": {$type: string}})
    ({"a": {"b": "x"}}, True),
    ({"a": {"b": 1}}, False),
    ({"a": {"b": ["x", 1]}}, True),  # an array holding a string
    ({"a": {"b": [["x"]]}}, False),  # but not one nested deeper
    ({"a": [{"b": "x"}]}, True),  # through the array
    ({"a": [{"b": 1}, {"b": "y"}]}, True),
    ({"a": [{"b": ["x"]}]}, True),
    ({"a": [{"b": [["x"]]}]}, False),
    ({"a": [[{"b": "x"}]]}, False),  # no descent into an array inside the array
    ({"a": ["b"]}, False),
    ({"a": "b"}, False),
    ({"a": [{"c": "x"}]}, False),
    ({"a": [{"b": NOW}]}, False),  # a date (a tagged object in storage)
    ({"a": {"b": None}}, False),
    ({"a": []}, False),
    ({}, False),
    ({"a": [{"b": {"c": "x"}}]}, False),
    ({"a": [{"b": "x"}, 5]}, True),
]


async def test_a_string_type_through_an_array_is_found_like_mongodb(
    server: Server, traced: list[str]
) -> None:
    collection = server.collection()
    await collection.insert_many([{"n": n, **doc} for n, (doc, _) in enumerate(THROUGH_ARRAY)])
    expected = [n for n, (_, matches) in enumerate(THROUGH_ARRAY) if matches]
    TracedEngine.tracing = True
    for query in (
        {"a.b": {"$type": "string"}},
        {"a.b": {"$type": 2}},
        {"$or": [{"a.b": {"$type": "string"}}, {"n": -1}]},
    ):
        found = sorted(document["n"] for document in await collection.find(query).to_list())
        assert found == expected, query
        assert await collection.count_documents(query) == len(expected), query
    TracedEngine.tracing = False
    assert any("AS element" in statement for statement in traced)  # answered in SQL


# --- a page after a keyset cursor starts at the cursor ---------------------------------------


async def test_pages_after_a_cursor_are_the_rest_of_the_order(
    server: Server, traced: list[str]
) -> None:
    collection = server.collection()
    await collection.create_indexes(
        [IndexModel([("createdAt", DESCENDING)]), IndexModel("revenue"), IndexModel("name")]
    )
    rng = random.Random(5)
    written = []
    for n in range(90):
        document: dict[str, Any] = {
            "createdAt": rng.choice([NOW + timedelta(minutes=m) for m in range(8)] + [None]),
            # Int and double ties (not Int64: mongoeco's `{f: 3}` misses a stored Int64(3)).
            "revenue": rng.choice([1, 2.5, 3.0, 3, 10**6, None]),
            "name": rng.choice(["ada", "Bob", "zoë", "", None]),
            "status": ("NEW", "CONTACTED")[n % 2],
        }
        written.append({name: value for name, value in document.items() if n % 11 or value})
    await collection.insert_many(written)
    seeks = 0
    for field in ("createdAt", "revenue", "name"):
        for direction in (DESCENDING, ASCENDING):
            for scope in ({}, {"status": "NEW"}):
                order = [(field, direction), ("_id", direction)]
                everything = await collection.find(scope).sort(order).to_list()
                paged: list[dict[str, Any]] = []
                TracedEngine.tracing = True
                while True:
                    query: dict[str, Any] = dict(scope)
                    if paged:  # the app's filter for the documents after the last one
                        cursor = Order(stored_field=field, descending=direction == DESCENDING)
                        last = paged[-1]
                        after = after_filter(cursor, last.get(field), last["_id"])
                        query = {"$and": [scope, after]}
                    page = await collection.find(query).sort(order).limit(7).to_list()
                    if not page:
                        break
                    paged += page
                TracedEngine.tracing = False
                assert paged == everything, (field, direction, scope)
                seeks += sum("storage_key) <" in sql or "storage_key) >" in sql for sql in traced)
                traced.clear()
    assert seeks > 0  # the walks did start at their cursors


# --- string elements of an indexed array field, through its index rows ----------------------

ELEMENT_DOCUMENTS: list[Any] = [
    ["common", "a", "b"],
    ["common", "a"],
    ["common", "b", "c"],
    "a",  # a scalar string: matches {keys: "a"} as MongoDB does
    ["common", ["a", "b"]],  # a nested array: its elements are not "a" or "b"
    [1, "1", "common"],
    None,
    {"a": 1},
    [],
]
ELEMENT_QUERIES: list[dict[str, Any]] = [
    {"keys": "a"},
    {"keys": {"$in": ["a", "c"]}},
    {"keys": {"$all": ["common", "a"]}},
    {"keys": {"$all": ["a", "b", "common"]}},
    {"keys": {"$all": ["a", "missing"]}},
    {"$and": [{"keys": {"$in": ["a", "c"]}}, {"keys": "common"}]},
    {"$and": [{"keys": "common"}, {"keys": {"$in": ["b", "1"]}}, {"n": {"$gte": 2}}]},
    {"$and": [{"n": {"$lt": 4}}, {"keys": {"$all": ["b", "common"]}}]},
]


@pytest.fixture(params=["keys", adapted.KEYWORD_FIELD])
def element_field(request: pytest.FixtureRequest) -> str:
    """An indexed array field: its strings in multikey rows, or in the keyword table (§33)."""
    return str(request.param)


def renamed(value: Any, field: str) -> Any:
    """`value` (documents, a query) with its field `keys` named `field`."""
    if isinstance(value, dict):
        return {
            field if key == "keys" else key: renamed(item, field) for key, item in value.items()
        }
    if isinstance(value, list):
        return [renamed(item, field) for item in value]
    return value


def holds(value: Any, wanted: str) -> bool:
    """MongoDB's `{keys: wanted}`: the value itself, or an element of it (one level)."""
    return value == wanted or (isinstance(value, list) and wanted in value)


def element_matches(document: dict[str, Any], query: dict[str, Any]) -> bool:
    if "$and" in query:
        return all(element_matches(document, part) for part in query["$and"])
    if "n" in query:
        n, bound = int(document["n"]), query["n"]
        return n >= int(bound["$gte"]) if "$gte" in bound else n < int(bound["$lt"])
    condition, value = query["keys"], document.get("keys")
    if isinstance(condition, str):
        return holds(value, condition)
    if "$in" in condition:
        return any(holds(value, wanted) for wanted in condition["$in"])
    return all(holds(value, wanted) for wanted in condition["$all"])


async def test_string_elements_match_like_mongodb(server: Server, element_field: str) -> None:
    collection = server.collection()
    await collection.create_index(element_field)
    documents = [{"_id": n, "n": n, "keys": keys} for n, keys in enumerate(ELEMENT_DOCUMENTS)]
    documents.append({"_id": len(documents), "n": len(documents)})  # no `keys` at all
    await collection.insert_many(renamed(documents, element_field))
    for query in ELEMENT_QUERIES:
        sent = renamed(query, element_field)
        found = sorted(document["_id"] for document in await collection.find(sent).to_list())
        expected = [document["_id"] for document in documents if element_matches(document, query)]
        assert found == expected, query
        assert await collection.count_documents(sent) == len(expected), query


async def test_the_rarest_element_drives_and_the_common_one_is_probed(
    server: Server, traced: list[str], element_field: str
) -> None:
    collection = server.collection()
    await collection.create_index(element_field)
    await collection.insert_many(
        [
            {element_field: ["common", f"w{n}"] + (["rare"] if n % 100 == 0 else [])}
            for n in range(1000)
        ]
    )
    await collection.find_one({element_field: "rare"})  # computes the per-collection facts once
    TracedEngine.tracing = True
    found = await collection.find({element_field: {"$all": ["common", "rare"]}}).to_list()
    TracedEngine.tracing = False

    assert len(found) == 10
    (select,) = [statement for statement in traced if "AS driving" in statement]
    driving = select[select.index("IN (SELECT driving") : select.index("AS driving")]
    if element_field == adapted.KEYWORD_FIELD:
        # One MATCH of both terms: the keyword table intersects them itself.
        match = f'\'("{adapted.keyword_term("common")}") AND ("{adapted.keyword_term("rare")}")\''
        assert match in driving, select
        assert "multikey_entries" not in select, select
    else:
        assert "'rare'" in driving, select
        assert "'common'" not in driving, select
    assert full_scans(server.path, traced) == []


async def test_a_limited_lookup_stops_at_its_last_document(
    server: Server, traced: list[str], element_field: str
) -> None:
    collection = server.collection()
    await collection.create_index(element_field)
    await collection.insert_many(
        [
            {"_id": n, "n": n, element_field: ["common", "half" if n % 2 else "other"]}
            for n in range(400)
        ]
    )
    query = {element_field: {"$all": ["common", "half"]}}
    every = await collection.find(query).to_list()
    assert len(every) == 200
    TracedEngine.tracing = True
    pages = [await collection.find(query).skip(skip).limit(7).to_list() for skip in (0, 7, 195)]
    TracedEngine.tracing = False

    # The pages of the unlimited find, in its order; the last one short. A keyword match's
    # pages come in insertion order (rowid), an unlimited find in storage key order (for
    # ObjectId `_id`s the same order; for these ints not).
    looked_up = every
    if element_field == adapted.KEYWORD_FIELD:
        looked_up = sorted(every, key=lambda document: document["_id"])
    assert pages == [looked_up[0:7], looked_up[7:14], looked_up[195:200]]
    limited = [statement for statement in traced if "AS driving" in statement]
    assert [re.findall(r"LIMIT (\d+)\)", statement) for statement in limited] == [
        ["7"],
        ["14"],
        ["202"],
    ]
    # A document holding two of an `$in`'s values counts once: paging by skip and limit goes
    # through every match exactly once.
    either = {element_field: {"$in": ["half", "other", "common"]}}
    paged = [
        document["_id"]
        for skip in range(0, 400, 30)
        for document in await collection.find(either).skip(skip).limit(30).to_list()
    ]
    assert sorted(paged) == list(range(400))
    # With an unindexed condition beside the lookup, or a sort, the limit stays outside.
    narrowed = await collection.find({**query, "n": {"$lt": 100}}).limit(7).to_list()
    assert narrowed == [document for document in every if document["n"] < 100][:7]
    newest = await collection.find(query).sort("n", DESCENDING).limit(3).to_list()
    assert [document["n"] for document in newest] == [399, 397, 395]
    # An equality on a single-field index beside the look-up (the search nested in its own
    # `$and`, as a scoped query has it) is probed inside it: the limit still goes inside.
    await collection.create_index("owner")
    await collection.update_many({"n": {"$lt": 150}}, {"$set": {"owner": "a"}})
    scoped = {
        "$and": [{"owner": "a"}, {"$and": [{element_field: "common"}, {element_field: "half"}]}]
    }
    traced.clear()
    TracedEngine.tracing = True
    owned = await collection.find(scoped).limit(7).to_list()
    TracedEngine.tracing = False
    assert [d["_id"] for d in owned] == [d["_id"] for d in looked_up if d["n"] < 150][:7]
    (lookup,) = [statement for statement in traced if "AS driving" in statement]
    assert re.findall(r"LIMIT (\d+)\)", lookup) == ["7"]


async def test_a_sorted_page_probes_its_filter_s_index_per_row(
    server: Server, traced: list[str]
) -> None:
    collection = server.collection()
    await collection.create_index("n")
    await collection.create_index("flag")
    documents = [{"_id": n, "n": n, "flag": n % 50 != 0, "kind": n % 3} for n in range(600)]
    await collection.insert_many(documents)
    for query in ({"flag": False}, {"flag": True}, {"flag": {"$in": [False, None]}, "kind": 1}):
        TracedEngine.tracing = True
        page = await collection.find(query).sort("n", DESCENDING).limit(7).to_list()
        TracedEngine.tracing = False
        expected = sorted((d for d in documents if plain_match(d, query)), key=lambda d: -d["n"])[
            :7
        ]
        assert page == expected, query
    # The filter's index is sought for each row the walk meets, value by value: never a list
    # of every matching key (most documents hold `flag: true`), never a scan of its rows.
    (walk,) = [s for s in traced if "ORDER BY scalar_index_entries" in s]
    assert "storage_key = documents.storage_key" in walk
    with sqlite3.connect(server.path) as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {walk}")]
    conn.close()
    probes = [step for step in plan if "SEARCH scalar_index_entries" in step][1:]
    assert probes, plan
    assert all("storage_key=?" in step for step in probes), plan


async def test_a_sorted_page_probes_common_elements_and_looks_up_rare_ones(
    server: Server, traced: list[str], element_field: str
) -> None:
    """§30: 1,000 documents, pages of 7: a walk probing per row meets 7 matches of a key in
    ~7,000 / matches rows, so keys held by more than sqrt(7,000) = 83 documents are walked,
    rarer ones looked up (their documents fetched by key, then sorted). The keyword table
    counts the documents holding both keys of an `$all` at once (§33); a walked match it
    counts below 4 x 83 documents is read once, its rowids kept for the walk, and a commoner
    one is probed per row (§37)."""
    keyword = element_field == adapted.KEYWORD_FIELD
    collection = server.collection()
    await collection.create_index("n")
    await collection.create_index(element_field)
    documents: list[dict[str, Any]] = [
        {"_id": n, "n": n, "keys": ["common", f"w{n % 7}"] + (["rare"] if n % 100 == 3 else [])}
        for n in range(1000)
    ]
    await collection.insert_many(renamed(documents, element_field))
    plans = {
        ("common",): "walk",
        ("w3",): "walk",  # 143 documents
        ("rare",): "lookup",  # 10 documents
        # `common` counted up to 4 x 83 rows: 332 x 143 / 1,000 = 47 expected, the lookup;
        # the keyword table counts the 143 documents holding both.
        ("common", "w3"): "walk" if keyword else "lookup",
        ("w3", "rare"): "lookup",  # 143 x 10 / 1,000: 1 expected (2 hold both)
    }
    for keys, expected_plan in plans.items():
        for direction in (DESCENDING, ASCENDING):
            query = {element_field: {"$all": list(keys)}}
            TracedEngine.statements.clear()
            TracedEngine.tracing = True
            first = await collection.find(query).sort("n", direction).limit(7).to_list()
            after = await (
                collection.find({**query, "n": {"$lt" if direction < 0 else "$gt": first[-1]["n"]}})
                .sort("n", direction)
                .limit(7)
                .to_list()
                if first
                else collection.find({"_id": None}).to_list()
            )
            TracedEngine.tracing = False
            matching = sorted(
                (d for d in documents if set(keys) <= set(d["keys"])),
                key=lambda d: d["n"] * direction,
            )
            assert first + after == renamed(matching[:14], element_field), (keys, direction)
            walks = [s for s in traced if "ORDER BY scalar_index_entries" in s]
            # Probed per row: the key's rows sought for each row walked, no `driving` lookup.
            # A lookup's few documents are fetched by key and sorted, or walked with their keys.
            rows = "crm_keywords" if keyword else "multikey_entries"
            probed = [s for s in walks if "AS driving" not in s and rows in s]
            assert bool(probed) == (expected_plan == "walk"), (keys, walks)
            if keyword and probed:
                per_row = any("crm_keywords_content" in statement for statement in probed)
                assert per_row == (keys == ("common",)), (keys, probed)
    assert full_scans(server.path, traced) == []


# --- the keyword index: the search keys' strings in one FTS5 table (§33) ------------------

KEYWORD = adapted.KEYWORD_FIELD
LONG = "x" * (adapted.KEYWORD_MAX + 1)  # no term: a look-up of it takes the stock path
ODD_STRINGS = ["", "é", "a b", 'say "hi"', "k6162", "ab", "AB", "x" * adapted.KEYWORD_MAX, LONG]


def keyword_rows(path: Path, table: str = "crm_keywords") -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT rowid, keys FROM {table} ORDER BY rowid").fetchall()
    conn.close()
    return rows


async def test_the_keyword_table_answers_like_multikey_rows_after_every_write(
    server: Server,
) -> None:
    """Each document holds the same value under `searchKeys` (the keyword table) and `keys` (a
    multikey index, checked against Python above): after every kind of write, every string
    look-up and every other operator answers the same on both."""
    collection = server.collection()
    await collection.create_index(KEYWORD)
    await collection.create_index("keys")

    def both(value: Any) -> dict[str, Any]:
        return {KEYWORD: value, "keys": deepcopy(value)}

    async def check(step: str) -> None:
        strings = [*ODD_STRINGS, "common", "rare", "new", "missing"]
        queries = [
            *({"keys": text} for text in strings),
            {"keys": {"$in": ["é", "rare", "missing"]}},
            {"keys": {"$all": ["common", "a b"]}},
            {"keys": {"$all": ["common", "common"]}},
            {"keys": {"$all": ["common", LONG]}},
            {"$and": [{"keys": "common"}, {"keys": {"$in": ["rare", "new"]}}]},
            {"keys": {"$regex": "^c"}},
            {"keys": {"$gt": "m"}},
            {"keys": {"$size": 2}},
            {"keys": {"$exists": False}},
            {"keys": {"$ne": "common"}},
            {"keys": {"$nin": ["common", "é"]}},
            {"keys": {"$elemMatch": {"$eq": "rare"}}},
            {"keys": None},
            {"keys": 7},
            {"keys": ["common", "rare"]},
            {"$or": [{"keys": "rare"}, {"keys": "é"}]},
        ]
        for query in queries:
            keyword, multikey = [
                sorted(d["_id"] for d in await collection.find(renamed(query, f)).to_list())
                for f in (KEYWORD, "keys")
            ]
            assert keyword == multikey, (step, query)
            for page in (0, 1):  # pages by skip and limit: slices of one order
                found = collection.find(renamed(query, KEYWORD)).skip(page).limit(1)
                # Insertion order, which is `_id` order here (see the limited lookup's test).
                assert [d["_id"] for d in await found.to_list()] == keyword[page : page + 1], (
                    step,
                    query,
                )

    await collection.insert_one({"_id": 1, **both(["common", "rare", *ODD_STRINGS])})
    await collection.insert_many(
        [
            {"_id": 2, **both(["common", "a b", 7])},
            {"_id": 3, **both("common")},  # a string, not an array
            {"_id": 4, **both([["common"], {"a": "common"}, None])},  # no string element
            {"_id": 5, "other": 1},
            {"_id": 6, **both([])},
            {"_id": 7, **both(["common", "é"])},
        ]
    )
    await check("inserted")
    await collection.update_one({"_id": 2}, {"$push": {KEYWORD: "new", "keys": "new"}})
    await collection.update_one({"_id": 6}, {"$set": both(["rare"])})
    await collection.update_one({"_id": 1}, {"$set": {"status": "WON"}})  # keys unchanged
    await check("updated")
    await collection.replace_one({"_id": 3}, {"_id": 3, **both(["common", "é", "new"])})
    await collection.update_one({"_id": 8}, {"$set": both(["rare", "new"])}, upsert=True)
    await collection.update_one({"_id": 8}, {"$pull": {KEYWORD: "rare", "keys": "rare"}})
    await collection.find_one_and_update({"_id": 5}, {"$set": both("rare")})
    await check("replaced and upserted")
    await collection.update_many({}, {"$unset": {KEYWORD: "", "keys": ""}}, hint="_id_")
    await collection.update_many({"_id": {"$lt": 4}}, {"$set": both(["common", "new"])})
    await check("unset and set again")
    await collection.delete_one({"_id": 1})
    await collection.delete_many({"_id": {"$gt": 6}})
    await check("deleted")


def test_the_keyword_field_is_the_leads_search_keys() -> None:
    from models.lead import LeadDocument

    assert LeadDocument.model_fields["search_keys"].alias == KEYWORD


async def test_keyword_rows_follow_the_documents_and_no_multikey_rows_are_written(
    tmp_path: Path,
) -> None:
    embedded = EmbeddedMongo(tmp_path)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(await embedded.start())
    collection = client["engine_test"]["leads"]
    other = client["engine_test"]["other"]
    try:
        await collection.create_index(KEYWORD)
        await collection.insert_many(
            [{"_id": n, KEYWORD: ["common", f"w{n}"]} for n in range(5)] + [{"_id": 5}]
        )
        await other.insert_one({"_id": 0, KEYWORD: ["common"]})  # no index: still a row
        # SQLite's JSON functions refuse a NaN: the row's terms are read in Python (the write
        # would fail otherwise).
        await collection.insert_one({"_id": 6, KEYWORD: ["nan"], "score": float("nan")})
        assert keyword_rows(embedded.path)[-1][1] == adapted.keyword_term("nan")
        await collection.delete_one({"_id": 6})
        rows = keyword_rows(embedded.path)
        assert len(rows) == 6
        assert rows[0][1] == f"{adapted.keyword_term('common')} {adapted.keyword_term('w0')}"
        assert keyword_rows(embedded.path, "crm_keywords_pending") == []  # moved at commit
        assert index_rows(embedded.path, "multikey_entries", "leads") == []
        # Inside a transaction its own writes are found; aborted, they are gone.
        async with client.start_session() as session, await session.start_transaction():
            await collection.insert_one({"_id": 7, KEYWORD: ["fresh"]}, session=session)
            found = await collection.find({KEYWORD: "fresh"}, session=session).to_list()
            assert [d["_id"] for d in found] == [7]
            await session.abort_transaction()
        assert await collection.find_one({KEYWORD: "fresh"}) is None
        assert len(keyword_rows(embedded.path)) == 6
        # A row left waiting (a write that committed by another way) is found all the same,
        # and goes to the keyword table with the next write.
        with sqlite3.connect(embedded.path) as conn:
            conn.execute(
                "DELETE FROM crm_keywords WHERE keys LIKE ?", (f"%{adapted.keyword_term('w3')}%",)
            )
            conn.execute(
                "INSERT INTO crm_keywords_pending SELECT rowid, ? FROM documents"
                " WHERE coll_name = 'leads' AND json_extract(document, '$._id') = 3",
                (f"{adapted.keyword_term('common')} {adapted.keyword_term('w3')}",),
            )
        conn.close()
        assert [d["_id"] for d in await collection.find({KEYWORD: "w3"}).to_list()] == [3]
        assert await collection.count_documents({KEYWORD: {"$all": ["common", "w3"]}}) == 1
        await other.insert_one({"_id": 1})
        assert keyword_rows(embedded.path, "crm_keywords_pending") == []
        assert len(keyword_rows(embedded.path)) == 6
        # Another collection's document holding the same key is not this collection's match.
        assert await collection.count_documents({KEYWORD: "common"}) == 5
        await collection.delete_many({"_id": {"$lt": 2}})
        await collection.update_one({"_id": 4}, {"$set": {KEYWORD: "w9"}})
        assert adapted.keyword_term("w9") in dict(keyword_rows(embedded.path)).values()
        assert [d["_id"] for d in await collection.find({KEYWORD: "w9"}).to_list()] == [4]
        assert await collection.find_one({KEYWORD: "w4"}) is None
        assert len(keyword_rows(embedded.path)) == 4
        await collection.drop()
        assert len(keyword_rows(embedded.path)) == 1
    finally:
        await client.close()
        await embedded.stop()


async def test_a_file_with_multikey_rows_for_the_keys_gets_its_keyword_rows(
    tmp_path: Path,
) -> None:
    """Written by the stock engine (every index row rebuilt at our first start), or by this
    engine before §33 (its rows kept, no keyword marker): at start the keyword table is filled
    from the documents and the index's multikey rows are dropped."""
    documents = [{"_id": n, KEYWORD: ["common", f"w{n % 3}"], "n": n} for n in range(30)]
    for writer in (SQLiteEngine, CrmSQLiteEngine):
        data = tmp_path / writer.__name__
        embedded = EmbeddedMongo(data, engine=writer)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(await embedded.start())
        await client["engine_test"]["leads"].create_index(KEYWORD)
        await client["engine_test"]["leads"].insert_many(documents)
        await client.close()
        await embedded.stop()
        path = data / "crm.sqlite3"
        with sqlite3.connect(path) as conn:
            if writer is CrmSQLiteEngine:  # as this engine left a file before §33
                conn.execute("DELETE FROM crm_engine_state WHERE key = 'keyword_rows'")
                conn.execute("DELETE FROM crm_keywords")
                conn.execute(
                    "INSERT INTO multikey_entries SELECT collection_id, ?, 'x', 'string', 3, 'w1'"
                    " FROM collections WHERE coll_name = 'leads'",
                    (f"{KEYWORD}_1",),
                )
        conn.close()
        assert index_rows(path, "multikey_entries", "leads"), writer

        embedded = EmbeddedMongo(data)
        client = AsyncMongoClient(await embedded.start())
        try:
            assert index_rows(path, "multikey_entries", "leads") == [], writer
            assert len(keyword_rows(path)) == 30, writer
            leads = client["engine_test"]["leads"]
            found = await leads.find({KEYWORD: {"$all": ["common", "w1"]}}).to_list()
            assert sorted(d["n"] for d in found) == [n for n in range(30) if n % 3 == 1], writer
        finally:
            await client.close()
            await embedded.stop()


def plain_match(document: dict[str, Any], query: dict[str, Any]) -> bool:
    """MongoDB's match of plain top-level equalities and `$in` (a missing field is null)."""
    for field, condition in query.items():
        wanted = condition["$in"] if isinstance(condition, dict) else [condition]
        if document.get(field) not in wanted:
            return False
    return True


# --- one physical index per index-row table ------------------------------------------------


def physical_indexes(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)
            )
        ]
    conn.close()
    return names


async def test_logical_indexes_share_one_physical_index_per_table(server: Server) -> None:
    """Each index row written updates one B-tree, not one per logical index of the file."""
    before = {t: physical_indexes(server.path, t) for t in adapted.SHARED_INDEXES}
    await leads_like(server)
    collection = await leads_like(server)
    await collection.create_index([("tags", ASCENDING)])
    await collection.insert_one({"lead_id": "multi", "tags": ["a", "b"]})
    for table, shared in adapted.SHARED_INDEXES.items():
        after = physical_indexes(server.path, table)
        assert after == before[table] or not before[table]
        assert shared in after
        assert [
            name for name in after if name != shared and not name.endswith("_entries_storage")
        ] == []


async def test_dropping_one_logical_index_keeps_the_others_answering(server: Server) -> None:
    collection = await leads_like(server)
    other = await leads_like(server)
    await collection.drop_index("status_1")
    await other.drop()
    assert adapted.SHARED_INDEXES["scalar_index_entries"] in physical_indexes(
        server.path, "scalar_index_entries"
    )
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"lead_id": "LEAD-001"})
    page = await collection.find({}).sort("leadNumber", -1).limit(2).to_list()
    assert [doc["leadNumber"] for doc in page] == [299, 298]
    assert await collection.count_documents({"status": "NEW"}) == 150
    await collection.create_index("status")
    assert await collection.count_documents({"status": "NEW"}) == 150


async def test_a_file_with_one_physical_index_per_logical_index_is_converted(
    tmp_path: Path,
) -> None:
    """A file written by the stock engine: its duplicate B-trees are replaced at start, and the
    indexes still answer like MongoDB (unique, sorted, counted)."""
    embedded = EmbeddedMongo(tmp_path, engine=SQLiteEngine)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(await embedded.start())
    collection = client["engine_test"]["stock"]
    await collection.create_index("n", unique=True)
    await collection.create_index("tags")
    await collection.insert_many([{"n": n, "tags": [n, n + 1]} for n in range(20)])
    await client.close()
    await embedded.stop()
    stock = physical_indexes(tmp_path / "crm.sqlite3", "scalar_index_entries")
    assert len([name for name in stock if name.startswith("scidx_")]) >= 2
    assert sorted(expression_indexes(tmp_path / "crm.sqlite3")) == ["n_1@stock", "tags_1@stock"]

    embedded = EmbeddedMongo(tmp_path)
    client = AsyncMongoClient(await embedded.start())
    collection = client["engine_test"]["stock"]
    try:
        for table, shared in adapted.SHARED_INDEXES.items():
            names = physical_indexes(tmp_path / "crm.sqlite3", table)
            assert shared in names
            assert not [name for name in names if name.startswith(("scidx_", "mkidx_"))]
        # The multikey-capable tags_1's expression index is dropped.
        assert list(expression_indexes(tmp_path / "crm.sqlite3")) == ["n_1@stock"]
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"n": 4})
        assert [d["n"] for d in await collection.find({}).sort("n", -1).limit(3).to_list()] == [
            19,
            18,
            17,
        ]
        assert await collection.count_documents({"n": {"$in": [3, 5, 99]}}) == 2
        assert await collection.count_documents({"tags": 5}) == 2
    finally:
        await client.close()
        await embedded.stop()


def test_only_the_shared_index_s_create_and_drop_are_rewritten(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite3", factory=adapted.SharedIndexConnection)
    conn.execute("CREATE TABLE scalar_index_entries (collection_id, index_name, type_score,"
                 " element_key, storage_key)")  # fmt: skip
    create = (
        'CREATE INDEX "crm_scalar_entries" ON scalar_index_entries'
        " (collection_id, index_name, type_score, element_key, storage_key)"
    )
    conn.execute(create)
    conn.execute(create)  # a second logical index: already there
    conn.execute('DROP INDEX IF EXISTS "crm_scalar_entries"')  # one logical index dropped
    conn.execute('CREATE INDEX "other" ON scalar_index_entries (storage_key)')
    with pytest.raises(sqlite3.OperationalError):
        conn.execute('CREATE INDEX "other" ON scalar_index_entries (storage_key)')
    conn.execute('DROP INDEX IF EXISTS "other"')
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")]
    assert names == ["crm_scalar_entries"]
    conn.close()


async def test_an_update_or_delete_replaces_a_document_s_multikey_rows(server: Server) -> None:
    """A document's multikey rows are found by its storage key (crm_multikey_entries_storage)
    and replaced on update, removed on delete."""
    collection = server.collection()
    await collection.create_index("tags")
    await collection.insert_many([{"_id": 1, "tags": ["a", "b"]}, {"_id": 2, "tags": ["b"]}])
    await collection.update_one({"_id": 1}, {"$set": {"tags": ["c"]}})

    async def ids(tag: str) -> list[int]:
        return sorted(doc["_id"] for doc in await collection.find({"tags": tag}).to_list())

    assert (await ids("a"), await ids("b"), await ids("c")) == ([], [2], [1])
    await collection.delete_one({"_id": 2})
    assert await ids("b") == []
    with sqlite3.connect(server.path) as conn:
        plan = [
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN DELETE FROM multikey_entries"
                " WHERE collection_id = ? AND storage_key = ?",
                (1, "x"),
            )
        ]
    conn.close()
    assert plan == [
        "SEARCH multikey_entries USING INDEX crm_multikey_entries_storage"
        " (collection_id=? AND storage_key=?)"
    ]


# --- change delivery in memory: no change outbox -------------------------------------------


def outbox_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM change_outbox").fetchone()
    conn.close()
    return int(count)


async def test_writes_record_no_change_outbox_and_the_wire_has_no_change_streams(
    server: Server,
) -> None:
    """The precondition (no wire client can open a change stream) and the effect (writes of
    every kind add no outbox row)."""
    collection = server.collection()
    with pytest.raises(OperationFailure, match=r"\$changeStream"):
        await collection.watch()
    before = outbox_rows(server.path)
    await collection.insert_one({"_id": 1, "n": 1})
    await collection.insert_many([{"_id": 2, "n": 2}, {"_id": 3, "n": 3}])
    await collection.update_one({"_id": 1}, {"$set": {"n": 10}})
    await collection.find_one_and_update({"_id": 2}, {"$inc": {"n": 1}})
    await collection.replace_one({"_id": 3}, {"n": 30})
    await collection.update_one({"_id": 4}, {"$set": {"n": 4}}, upsert=True)
    await collection.delete_one({"_id": 1})
    assert outbox_rows(server.path) == before
    assert [d["n"] for d in await collection.find({}).sort("_id", 1).to_list()] == [3, 30, 4]


async def test_an_in_process_watcher_still_receives_the_changes(tmp_path: Path) -> None:
    """mongoeco's own API on this engine: events reach the client's change hub in memory."""
    engine = CrmSQLiteEngine(str(tmp_path / "x.sqlite3"))
    await engine.connect()
    try:
        collection = EcoClient(engine=engine)["db"]["c"]
        stream = collection.watch()
        await collection.insert_one({"_id": 1, "a": 1})
        await collection.update_one({"_id": 1}, {"$set": {"a": 2}})
        await collection.delete_one({"_id": 1})
        kinds = [(await stream.try_next() or {}).get("operationType") for _ in range(3)]
        assert kinds == ["insert", "update", "delete"]
        stream.close()
    finally:
        await engine.disconnect()


# --- expression indexes on `documents`: one collection each, only where usable -------------


def expression_indexes(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT indexes.name || '@' || indexes.coll_name, sqlite_master.sql FROM indexes"
            " JOIN sqlite_master ON sqlite_master.name = indexes.physical_name"
            " AND sqlite_master.tbl_name = 'documents'"
        ).fetchall()
    conn.close()
    return dict(rows)


async def test_only_indexes_a_query_can_use_get_an_expression_index(
    server: Server, traced: list[str]
) -> None:
    """Unique and compound indexes keep their expression index (equality on an ObjectId first
    field searches it); a multikey-capable single-field index has none (no query can use
    one), and a hint naming it still answers."""
    collection = server.collection()
    owner = ObjectId()
    await collection.create_indexes(
        [
            IndexModel("code", unique=True),
            IndexModel([("owner", ASCENDING), ("at", ASCENDING)]),
            IndexModel("status"),
        ]
    )
    await collection.insert_many(
        [{"code": n, "owner": (owner, ObjectId())[n % 2], "at": NOW, "status": "A"}
         for n in range(40)]
    )  # fmt: skip
    found = expression_indexes(server.path)
    assert f"code_1@{collection.name}" in found
    assert f"owner_1_at_1@{collection.name}" in found
    assert f"status_1@{collection.name}" not in found
    TracedEngine.tracing = True
    assert await collection.count_documents({"owner": owner}) == 20
    TracedEngine.tracing = False
    assert full_scans(server.path, traced) == []
    assert any("owner" in statement for statement in traced)
    hinted = await collection.find({"status": "A", "code": {"$lt": 3}}).hint("status_1").to_list()
    assert sorted(doc["code"] for doc in hinted) == [0, 1, 2]
    assert len(await collection.find({"owner": owner}).hint("owner_1_at_1").to_list()) == 20


def test_only_the_catalog_row_of_a_multikey_index_drops_its_expression_index(
    tmp_path: Path,
) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite3", factory=adapted.SharedIndexConnection)
    columns = ", ".join(f"c{n}" for n in range(21))
    conn.execute("CREATE TABLE documents (db_name, coll_name, document)")
    conn.execute(f"CREATE TABLE indexes ({columns})")
    for name in ("idx_a", "idx_b"):
        conn.execute(f'CREATE INDEX "{name}" ON documents (db_name, coll_name, document)')
    for name, multikey in (("idx_a", 1), ("idx_b", 0)):
        row = ["crm", "c", name, name, *[None] * 14, multikey, None, None]
        conn.execute(f"INSERT INTO indexes ({columns}) VALUES ({', '.join('?' * 21)})", row)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    assert names == ["idx_b"]
    conn.close()


# --- encoding: validated once ---------------------------------------------------------------

EVERY_TYPE: dict[str, Any] = {
    "s": "x",
    "i": 7,
    "big": 2**40,
    "f": 1.5,
    "nan": float("nan"),
    "b": True,
    "none": None,
    "oid": ObjectId("65f000000000000000000001"),
    "at": NOW,
    "naive": datetime(2024, 5, 1, 12, 0, 0, 123456),
    "i64": Int64(3),
    "dec": Decimal128("1.10"),
    "bin": Binary(b"\x00\x01", 0),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "re": Regex("^a", "i"),
    "code": Code("f()", {"x": 1}),
    "ts": Timestamp(1, 2),
    "min": MinKey(),
    "max": MaxKey(),
    "ref": DBRef("c", ObjectId("65f000000000000000000002"), "db"),
    "son": SON([("z", 1), ("a", {"b": [1, (2, 3)]})]),
    "tagged": {"$mongoeco": {"type": "datetime", "value": "2024-01-01T00:00:00"}},
    "nested": {"list": [{"a": [NOW, {"b": Int64(1)}]}, (1, "t")], "empty": {}},
}


def kinds(value: Any) -> Any:
    """The type of a value and of everything inside it (a repr shows a dict subclass as a dict)."""
    if isinstance(value, dict):
        return type(value).__name__, {key: kinds(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value).__name__, [kinds(item) for item in value]
    return type(value).__name__


def test_the_once_validated_encoding_equals_the_stock_one() -> None:
    from mongoeco.core.codec import DocumentCodec

    document = {**EVERY_TYPE, "copy": dict(EVERY_TYPE)}
    assert repr(adapted.encode_document(document)) == repr(DocumentCodec.encode(document))
    assert repr(adapted.internal_document(document)) == repr(DocumentCodec.to_internal(document))
    assert kinds(adapted.internal_document(document)) == kinds(DocumentCodec.to_internal(document))
    internal = DocumentCodec.to_internal(document)
    assert repr(adapted.encode_document(internal)) == repr(DocumentCodec.encode(internal))
    # The encoding the wire keeps for the engine is the one the engine would make, for what
    # the wire decodes (plain dicts: BSON holds no SON, whose internal form is a plain dict).
    plain = {key: value for key, value in EVERY_TYPE.items() if not isinstance(value, SON)}
    wire = {**plain, "copy": dict(plain)}
    made = adapted.internal_document(wire)
    assert repr(adapted.ENCODED.encoding(made)) == repr(DocumentCodec.encode(made))
    assert adapted.ENCODED.encoding(DocumentCodec.to_internal(wire)) is None  # another one
    adapted.ENCODED.forget([made])
    assert adapted.ENCODED.encoding(made) is None
    for invalid in (
        {"a": {"b": [2**70]}},
        {"a": [{1: "x"}]},
        {"a": {"b": {1, 2}}},
        {"a": (1, -(2**63) - 1)},
        {"a": [SON([("b", 2**64)])]},
        {"a": [frozenset({1})]},
    ):
        with pytest.raises((TypeError, OverflowError)) as stock:
            DocumentCodec.encode(invalid)
        with pytest.raises(type(stock.value), match=re.escape(str(stock.value))):
            adapted.encode_document(invalid)


def test_the_wire_s_values_are_decoded_like_the_stock_bridge() -> None:
    """§35: what PyMongo's BSON decoder returns for every type, as the wire decodes it; and
    mongoeco's values as the wire encodes them for a reply."""
    from bson.codec_options import CodecOptions
    from mongoeco.core.codec import DocumentCodec
    from mongoeco.wire import bson_bridge

    document = {**EVERY_TYPE, "copy": dict(EVERY_TYPE), "list": list(EVERY_TYPE.values())}
    raw = bson.encode(document, codec_options=CodecOptions(uuid_representation=4))
    wire = bson.BSON(raw).decode()  # as decode_op_msg decodes each document
    ours, stock = adapted.decode_wire_value(wire), bson_bridge.decode_wire_value(wire)
    assert repr(ours) == repr(stock)
    assert kinds(ours) == kinds(stock)
    # And back, from what the engine returns: mongoeco's values, internal and public.
    for value in (stock, DocumentCodec.to_internal(stock), DocumentCodec.to_public(stock)):
        ours, theirs = adapted.encode_wire_value(value), bson_bridge.encode_wire_value(value)
        assert repr(ours) == repr(theirs)
        assert kinds(ours) == kinds(theirs)


def test_unusual_wire_documents_are_left_to_insert_many() -> None:
    from mongoeco.core.codec import DocumentCodec

    plain: list[dict[str, Any]] = [{"a": 1}, {"_id": 2, "a": [NOW]}]
    internal = adapted.internal_documents(plain)
    assert "_id" in plain[0]  # given one, as insert_many gives it
    assert all(DocumentCodec.is_internal(document) for document in internal)
    assert repr(internal) == repr([DocumentCodec.to_internal(document) for document in plain])
    for unusual in ([{"a": 1}, SON([("a", 1)])], [{"a": 2**70}]):
        assert adapted.internal_documents(unusual) is unusual


async def test_insert_many_stores_what_insert_one_stores(server: Server) -> None:
    collection = server.collection()
    document = {key: value for key, value in EVERY_TYPE.items() if key not in ("nan", "uuid")}
    document["uuid"] = Binary.from_uuid(EVERY_TYPE["uuid"])
    await collection.insert_many([{"_id": 1, **document}, {"_id": 2, **document}])
    await collection.insert_one({"_id": 3, **document})
    with sqlite3.connect(server.path) as conn:
        stored = [
            row[0].replace('"_id":1', '"_id":3').replace('"_id":2', '"_id":3')
            for row in conn.execute(
                "SELECT document FROM documents WHERE coll_name = ? ORDER BY storage_key",
                (collection.name,),
            )
        ]
    conn.close()
    assert len(stored) == 3
    assert len(set(stored)) == 1


# --- a rewritten document's index rows: only the changed ones replaced ---------------------


def index_rows(path: Path, table: str, coll_name: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            f"SELECT rowid, index_name, storage_key, element_type, type_score, element_key"
            f" FROM {table} WHERE collection_id ="
            " (SELECT collection_id FROM collections WHERE coll_name = ?) ORDER BY rowid",
            (coll_name,),
        ).fetchall()
    conn.close()
    return rows


async def test_an_update_replaces_only_the_index_rows_that_changed(server: Server) -> None:
    collection = server.collection()
    await collection.create_indexes([IndexModel("tags"), IndexModel("status")])
    await collection.insert_one({"_id": 1, "tags": ["a", "b", "a"], "status": "NEW", "log": []})
    await collection.insert_one({"_id": 2, "tags": ["b"], "status": "NEW", "log": []})
    multikey = index_rows(server.path, "multikey_entries", collection.name)
    scalar = index_rows(server.path, "scalar_index_entries", collection.name)
    await collection.update_one({"_id": 1}, {"$push": {"log": 1}})
    # The same rows, under the same rowids: none was deleted and written again.
    assert index_rows(server.path, "multikey_entries", collection.name) == multikey
    assert index_rows(server.path, "scalar_index_entries", collection.name) == scalar
    await collection.update_one({"_id": 1}, {"$set": {"tags": ["a", "c"], "status": "WON"}})
    await collection.insert_one({"_id": 3, "tags": ["a", "c"], "status": "WON"})

    def rows_of(table: str, _id: int) -> list[tuple[Any, ...]]:
        rows = index_rows(server.path, table, collection.name)
        return sorted(row[1:2] + row[3:] for row in rows if row[2] == f"(<class 'int'>, {_id})")

    for table in ("multikey_entries", "scalar_index_entries"):
        assert rows_of(table, 1) == rows_of(table, 3)  # as a fresh insert writes them
    assert [row[3] for row in rows_of("multikey_entries", 1)] == ["a", "c"]
    ids = [d["_id"] for d in await collection.find({"tags": "a"}).sort("_id", 1).to_list()]
    assert ids == [1, 3]
    assert [d["_id"] for d in await collection.find({"tags": "b"}).to_list()] == [2]
    assert await collection.count_documents({"status": "WON"}) == 2
    assert await collection.count_documents({"status": "NEW"}) == 1


# --- reads: top-level projections and C-encoded cursor batches ---------------------------

READ_BACK: dict[str, Any] = {
    "string": "zoë",
    "int": 7,
    "int64": Int64(2**40),
    "double": 1.5,
    "decimal": Decimal128("12.30"),
    "bool": True,
    "null": None,
    "date": NOW,
    "oid": ObjectId("65f000000000000000000009"),
    "regex": Regex("^a", "i"),
    "binary": b"\x00\x01",  # subtype 0: PyMongo reads it back as bytes
    "uuid": Binary(uuid.UUID("12345678-1234-5678-1234-567812345678").bytes, 4),
    "md5": Binary(b"0123456789abcdef", 5),
    "user": Binary(b"\x02", 0x80),
    "timestamp": Timestamp(5, 1),
    "code": Code("x = 1"),
    "min": MinKey(),
    "max": MaxKey(),
    "nested": {"a": [1, {"b": Binary(b"\x03", 0x81)}], "$notoperator": "x"},
    "array": [[1, 2], {"x": None}, Decimal128("1")],
}


async def test_find_batches_and_projections_read_back_what_was_written(server: Server) -> None:
    collection = server.collection()
    written = [{"_id": n, "n": n, **READ_BACK} for n in range(5)]
    await collection.insert_many(written)

    # A find and its getMore batches (C-encoded), and an aggregate (stock): the same values.
    found = await collection.find({}, batch_size=2).sort("n", 1).to_list()
    aggregated = await (await collection.aggregate([{"$sort": {"n": 1}}], batchSize=2)).to_list()
    assert found == written
    assert aggregated == written
    # Inclusion or exclusion of top-level fields: those / all others, in the document's
    # order, `_id` as asked.
    everything = list(written[3])
    projections: list[tuple[dict[str, Any], list[str]]] = [
        ({"uuid": 1, "string": 1}, ["_id", "string", "uuid"]),
        ({"uuid": 1, "_id": 0}, ["uuid"]),
        ({"nested.a": 1}, ["_id", "nested"]),  # a dotted path: the stock projection
        ({"missing": 1, "md5": True}, ["_id", "md5"]),
        (
            {"array": 0, "nested": 0},
            [name for name in everything if name not in ("array", "nested")],
        ),
        (
            {"_id": 0, "missing": 0, "uuid": False},
            [n for n in everything if n not in ("_id", "uuid")],
        ),
    ]
    for projection, fields in projections:
        first = await collection.find_one({"n": 3}, projection)
        assert first is not None
        assert list(first) == fields, projection
        for name in fields:
            if name != "nested":
                assert first[name] == written[3][name], (projection, name)
    assert (await collection.find_one({"n": 3}, {"nested.a": 1}) or {})["nested"] == {
        "a": READ_BACK["nested"]["a"]
    }


def test_a_document_copy_is_a_deep_copy() -> None:
    """§29: copied like `deepcopy` copies it; a change to the copy leaves the original."""
    from mongoeco.core.codec import DocumentCodec

    document = bson.decode(bson.encode({**READ_BACK, "copy": READ_BACK}))
    copied = adapted.document_copy(document)
    assert repr(copied) == repr(document)
    copied["nested"]["a"].append(2)
    copied["copy"]["array"][1]["x"] = 1
    assert repr(document) == repr(bson.decode(bson.encode({**READ_BACK, "copy": READ_BACK})))
    internal = DocumentCodec.to_internal(READ_BACK)
    assert repr(adapted.document_copy(internal)) == repr(deepcopy(internal))
    # Other containers are deep-copied as they are.
    odd: dict[str, Any] = {"son": SON([("a", [1])]), "tuple": (1, [2])}
    copied_odd = adapted.document_copy(odd)
    assert copied_odd == odd
    assert copied_odd["son"]["a"] is not odd["son"]["a"]
    assert copied_odd["tuple"][1] is not odd["tuple"][1]


async def test_an_update_s_images_are_its_own(tmp_path: Path) -> None:
    """§29: a document returned by one write and changed by its caller changes no other."""
    engine = CrmSQLiteEngine(str(tmp_path / "x.sqlite3"))
    await engine.connect()
    try:
        collection = EcoClient(engine=engine)["db"]["c"]
        await collection.insert_one({"_id": 1, **READ_BACK})
        before = await collection.find_one_and_update(
            {"_id": 1}, {"$push": {"array": 4}}, return_document=ReturnDocument.BEFORE
        )
        after = await collection.find_one_and_update(
            {"_id": 1}, {"$set": {"int": 8}}, return_document=ReturnDocument.AFTER
        )
        assert before is not None
        assert after is not None
        stored = await collection.find_one({"_id": 1})
        assert stored is not None
        assert (stored["int"], stored["array"][-1]) == (8, 4)
        before["nested"]["a"].append("changed by the caller")
        after["array"].clear()
        assert await collection.find_one({"_id": 1}) == stored
        assert after["nested"] == stored["nested"] != before["nested"]
    finally:
        await engine.disconnect()


async def test_fields_left_out_are_removed_before_a_row_is_parsed(
    server: Server, traced: list[str]
) -> None:
    collection = server.collection()
    written = [{"_id": n, "n": n, **READ_BACK, "big": Int64(2**63 - 1)} for n in range(5)]
    await collection.insert_many(written)
    left_out = {"array": 0, "nested": 0, "n": 0}

    TracedEngine.tracing = True
    found = await collection.find({}, left_out, batch_size=2).to_list()
    TracedEngine.tracing = False
    assert any("json_remove(" in statement for statement in traced)
    for document, original in zip(found, written, strict=True):
        kept = {name: value for name, value in original.items() if name not in left_out}
        assert list(document) == list(kept)  # the document's order, `_id` first
        assert document == kept
        assert all(type(document[name]) is type(value) for name, value in kept.items())
    # Sorted or filtered by a field it leaves out: by the stored value all the same.
    by_n = await collection.find({"n": {"$gte": 1}}, left_out).sort("n", DESCENDING).to_list()
    assert [document["_id"] for document in by_n] == [4, 3, 2, 1]
    assert all("n" not in document for document in by_n)


async def test_a_document_sqlite_cannot_parse_is_read_whole(tmp_path: Path) -> None:
    """Python writes NaN and Infinity, which SQLite's JSON parser refuses before 3.42: the
    fields such a document leaves out are dropped in Python. (On a file with an expression
    index SQLite refuses to store it at all: upstream, as on the stock engine.)"""
    embedded = EmbeddedMongo(tmp_path)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(await embedded.start())
    collection = client["nan_test"]["c"]
    odd = {"_id": 2, "nan": float("nan"), "infinity": float("-inf"), "gone": [1, 2]}
    infinite = {"_id": 3, "infinity": float("inf"), "gone": 1}
    named = {"_id": 4, "name": "NaNa Infinity", "gone": {"a": 1}}  # read whole: the same
    await collection.insert_many([{"_id": 1, "gone": [1]}, odd, infinite, named])
    found = sorted(await collection.find({}, {"gone": 0}).to_list(), key=lambda d: d["_id"])
    await client.close()
    await embedded.stop()
    assert found[0] == {"_id": 1}
    assert list(found[1]) == ["_id", "nan", "infinity"]
    assert found[1]["nan"] != found[1]["nan"]
    assert found[1]["infinity"] == float("-inf")
    assert found[2:] == [{"_id": 3, "infinity": float("inf")}, {"_id": 4, "name": "NaNa Infinity"}]


async def test_finds_reuse_the_engine_s_connections(tmp_path: Path) -> None:
    """A find of many documents takes a kept connection (parsed schema, warm page cache); it
    still reads what was written since, holds no read transaction once done, and the kept
    connections close with the engine."""
    engines: list[CrmSQLiteEngine] = []

    class Opening(CrmSQLiteEngine):
        opened = 0

        def __init__(self, path: str = ":memory:", **options: Any) -> None:
            super().__init__(path, **options)
            engines.append(self)

        def _connect(self) -> adapted.SharedIndexConnection:
            Opening.opened += 1
            return super()._connect()

    embedded = EmbeddedMongo(tmp_path, engine=Opening)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(await embedded.start())
    collection = client["pool_test"]["c"]
    await collection.insert_many([{"_id": n} for n in range(10)])
    await collection.find({}).to_list()
    opened = Opening.opened
    for n in range(10, 30):
        await collection.insert_one({"_id": n})
        assert len(await collection.find({}).to_list()) == n + 1
    assert Opening.opened == opened
    with sqlite3.connect(embedded.path, timeout=0) as probe:
        (busy, _, _) = probe.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert not busy
    kept = list(engines[0]._pool._idle)
    assert kept
    await client.close()
    await embedded.stop()
    assert not engines[0]._pool._idle
    for connection in kept:
        with pytest.raises(sqlite3.ProgrammingError):
            connection.execute("SELECT 1")


# --- find cursors read batch by batch ----------------------------------------------------


class CountingEngine(CrmSQLiteEngine):
    """Counts the documents it decodes."""

    decoded = 0

    def _deserialize_document(
        self, payload: str, *, preserve_bson_wrappers: bool = True
    ) -> dict[str, Any]:
        CountingEngine.decoded += 1
        document: dict[str, Any] = super()._deserialize_document(
            payload, preserve_bson_wrappers=preserve_bson_wrappers
        )
        return document


class Streaming:
    def __init__(self, embedded: EmbeddedMongo, uri: str) -> None:
        self.embedded, self.uri, self.count = embedded, uri, 0
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
        self.executor = embedded._server._executor

    async def collection(self, n: int) -> Collection:
        self.count += 1
        collection = self.client["stream_test"][f"s{self.count}"]
        await collection.create_index("k")
        await collection.insert_many([{"_id": i, "k": (i * 7) % 11, "n": i} for i in range(n)])
        return collection

    def checkpoint_blocked(self) -> bool:
        """Whether a reader's open read transaction keeps a WAL checkpoint from finishing."""
        with sqlite3.connect(self.embedded.path, timeout=0) as probe:
            (busy, _, _) = probe.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return bool(busy)

    async def no_reader_left(self) -> bool:
        for _ in range(100):
            if not self.executor._streams and not self.checkpoint_blocked():
                return True
            await asyncio.sleep(0.05)
        return False


@pytest.fixture(scope="module")
async def streaming(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Streaming]:
    embedded = EmbeddedMongo(tmp_path_factory.mktemp("stream"), engine=CountingEngine)
    streaming = Streaming(embedded, await embedded.start())
    yield streaming
    await streaming.client.close()
    await embedded.stop()


FINDS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {}),
    ({}, {"sort": [("k", ASCENDING)]}),
    ({}, {"sort": [("k", DESCENDING), ("_id", DESCENDING)]}),
    ({}, {"sort": [("_id", DESCENDING)], "skip": 3, "limit": 40}),
    ({"k": {"$gte": 4}}, {"projection": {"n": 1}, "sort": [("n", ASCENDING)]}),
    ({"k": 5}, {"projection": {"_id": 0, "k": 1}}),
    ({"n": {"$lt": 0}}, {}),
]


@pytest.mark.parametrize("batch", [1, 7, 49, 50, 200])
async def test_a_streamed_find_returns_what_the_stock_find_returns(
    streaming: Streaming, batch: int
) -> None:
    collection = await streaming.collection(49)
    for query, options in FINDS:
        stock = await collection.find(query, **options).to_list()  # no batch size: stock
        streamed = await collection.find(query, batch_size=batch, **options).to_list()
        assert streamed == stock, (query, options)
    assert await streaming.no_reader_left()


async def test_a_streamed_find_reads_one_snapshot_across_its_batches(
    streaming: Streaming,
) -> None:
    collection = await streaming.collection(300)  # more than one read of the engine's reader
    expected = await collection.find({}).sort("n", 1).to_list()
    cursor = collection.find({}, batch_size=5).sort("n", 1)
    first = [await cursor.next() for _ in range(5)]
    assert len(streaming.executor._streams) == 1
    # Writes between getMores, committed while the cursor's read transaction is open.
    await collection.delete_many({"n": {"$gte": 200}})
    await collection.update_many({}, {"$set": {"k": -1}})
    await collection.insert_many([{"_id": f"new{i}", "k": 0, "n": 10.5} for i in range(3)])
    assert first + await cursor.to_list() == expected
    assert await streaming.no_reader_left()
    assert await collection.count_documents({}) == 203


async def test_only_the_first_batch_is_read_before_it_is_returned(streaming: Streaming) -> None:
    collection = await streaming.collection(3000)
    CountingEngine.decoded = 0
    stock = await collection.find({}).to_list()
    assert CountingEngine.decoded >= 3000  # stock: every document before the first batch
    CountingEngine.decoded = 0
    cursor = collection.find({}, batch_size=100).sort("k", 1)
    await cursor.next()
    assert CountingEngine.decoded <= 300
    rest = await cursor.to_list()
    assert len(rest) == 2999
    assert 3000 <= CountingEngine.decoded <= 3300
    assert len(stock) == 3000
    assert await streaming.no_reader_left()


async def test_a_killed_cursor_closes_its_read_transaction(streaming: Streaming) -> None:
    collection = await streaming.collection(500)
    cursor = collection.find({}, batch_size=5)
    await cursor.next()
    await collection.insert_one({"_id": "after", "k": 0})  # the WAL grows past the reader
    assert streaming.checkpoint_blocked()  # the check sees an open reader
    await cursor.close()  # killCursors
    assert not streaming.executor._streams
    assert not streaming.checkpoint_blocked()


async def test_an_idle_cursor_is_closed_and_then_not_found(
    streaming: Streaming, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming.executor, "idle_seconds", 0.2)
    collection = await streaming.collection(500)
    cursor = collection.find({}, batch_size=5)
    await cursor.next()
    await collection.insert_one({"_id": "after", "k": 0})
    assert streaming.executor._streams
    await asyncio.sleep(0.5)
    assert await streaming.no_reader_left()
    with pytest.raises(OperationFailure) as refused:
        await cursor.to_list()
    assert refused.value.code == adapted.CURSOR_NOT_FOUND


def op_msg(request_id: int, command: dict[str, Any]) -> bytes:
    payload = b"\x00\x00\x00\x00\x00" + bson.encode(command)
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, 2013) + payload


async def test_a_dropped_connection_closes_its_cursors(streaming: Streaming) -> None:
    collection = await streaming.collection(500)
    host, port = streaming.uri.removeprefix("mongodb://").split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    find = {"find": collection.name, "filter": {}, "batchSize": 5, "$db": "stream_test"}
    writer.write(op_msg(1, find))
    (length,) = struct.unpack("<i", await reader.readexactly(4))
    reply = bson.decode((await reader.readexactly(length - 4))[17:])
    assert len(reply["cursor"]["firstBatch"]) == 5
    assert reply["cursor"]["id"] in streaming.executor._streams
    await collection.insert_one({"_id": "after", "k": 0})
    assert streaming.checkpoint_blocked()
    writer.close()
    await writer.wait_closed()
    assert await streaming.no_reader_left()


async def test_unusual_finds_keep_the_stock_path(streaming: Streaming) -> None:
    collection = await streaming.collection(20)
    stock = await collection.find({}).sort("n", 1).to_list()
    unusual = [
        collection.find({}, batch_size=5, comment="c").sort("n", 1),
        collection.find({}, batch_size=5, max_time_ms=60_000).sort("n", 1),
        collection.find({}, batch_size=5).sort([("k", 1), ("n", 1)]),
        collection.find({}, batch_size=5).sort([("n", 1)]).collation({"locale": "simple"}),
    ]
    for cursor in unusual:
        first = await cursor.next()
        assert not streaming.executor._streams
        rest = await cursor.to_list()
        assert sorted([first, *rest], key=lambda document: document["n"]) == stock
    assert not adapted.stream_sort({"a.b": 1})
    assert adapted.stream_sort({"k": -1, "_id": -1})
    assert not adapted.stream_sort({"k": -1, "_id": 1})


async def test_a_streamed_find_is_profiled_like_the_stock_find(streaming: Streaming) -> None:
    collection = await streaming.collection(20)
    database = streaming.client["stream_test"]
    await database.command("profile", 2)
    try:
        await collection.find({"k": 3}).to_list()
        await collection.find({"k": 3}, batch_size=2).to_list()  # one batch
        await collection.find({"k": {"$gte": 0}}).to_list()
        await collection.find({"k": {"$gte": 0}}, batch_size=2).to_list()  # several batches
    finally:
        await database.command("profile", 0)
    profiled = await database["system.profile"].find({"command.find": collection.name}).to_list()
    events = [(entry["op"], entry["command"]) for entry in profiled]
    stock = [
        (op, {**command, "batchSize": 2}) if op == "command" else (op, command)
        for op, command in events[:2]
    ]
    assert len(events) == 8
    assert events[2:4] == stock
    assert sorted(events[6:], key=repr) == sorted(
        [(op, {**command, "filter": {"k": {"$gte": 0}}}) for op, command in stock], key=repr
    )


async def test_a_streamed_find_counts_its_query_and_each_get_more(streaming: Streaming) -> None:
    """§32: serverStatus' opcounters, as the stock cursor counts them: the first batch is a
    query, each later one a getmore."""
    collection = await streaming.collection(50)

    async def counters() -> tuple[int, int]:
        status = await streaming.client.admin.command("serverStatus")
        return status["opcounters"]["query"], status["opcounters"]["getmore"]

    before = await counters()
    await collection.find_one({"_id": 3})
    one = await counters()
    found = await collection.find({}, batch_size=10).to_list()
    after = await counters()
    assert len(found) == 50
    # mongoeco counts a find's query as a stock one-batch find does (twice: the command and
    # its cursor), and a getmore for each of the four batches after the first.
    assert (after[0] - one[0], after[1] - one[1]) == (one[0] - before[0], 4)
    assert await streaming.no_reader_left()


async def test_plain_rows_are_streamed_in_pymongo_s_types(
    streaming: Streaming, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§31: a streamed row whose only typed values are top-level ObjectIds and datetimes is
    read straight into PyMongo's types; a row with any other (a decimal, a datetime in a
    nested document) is decoded as stock. Either way it reads back as the stock find's."""
    collection = streaming.client["stream_test"]["public"]
    await collection.create_index("at")
    now = datetime(2026, 12, 2, 3, 4, 5, 678000, tzinfo=UTC)
    documents: list[dict[str, Any]] = [
        {
            "_id": ObjectId(),
            "at": now - timedelta(minutes=n, microseconds=n),
            "name": f"zoë {n}",
            "score": n / 3,
            "flag": n % 2 == 0,
            "none": None,
            "tags": ["a", n],
            "nested": {"k": n},
        }
        for n in range(30)
    ]
    documents += [
        {"_id": ObjectId(), "at": now, "amount": Decimal128("1.5")},
        {"_id": ObjectId(), "at": now, "nested": {"when": now}},
    ]
    await collection.insert_many(documents)
    made: list[bool] = []
    stock_values = adapted.public_values

    def counted(document: dict[str, Any]) -> Any:
        found = stock_values(document)
        made.append(found is not None)
        return found

    monkeypatch.setattr(adapted, "public_values", counted)
    for projection in ({"score": 0}, {"nested": 0, "tags": 0}, {"_id": 0, "flag": 0}):
        stock = await collection.find({}, projection).sort("at", DESCENDING).to_list()
        streamed = await (
            collection.find({}, projection, batch_size=7).sort("at", DESCENDING).to_list()
        )
        assert streamed == stock, projection
        assert [list(document) for document in streamed] == [list(d) for d in stock]
    # Every plain row under each projection, and the nested datetime's row where it is left
    # out; the decimal's row thrice and the nested datetime's where it is kept, stock.
    assert (made.count(True), made.count(False)) == (91, 5), made
    assert adapted.public_values({"a": {"$mongoeco": {"type": "uuid", "value": "x"}}}) is None
    assert await streaming.no_reader_left()


def test_the_internals_a_streamed_find_uses_exist() -> None:
    """Fails when mongoeco renames an internal the streamed find relies on."""
    from mongoeco.api._async._database_admin_command_compiler import (
        DatabaseAdminCommandCompiler,
    )
    from mongoeco.api._async.collection import AsyncCollection as EcoCollection
    from mongoeco.api._async.cursor import AsyncCursor, _AsyncCursorIterator
    from mongoeco.api._async.database_commands import _CommandFailPointState
    from mongoeco.wire.connections import WireConnectionRegistry

    for owner, name in [
        (_AsyncCursorIterator, "pull_chunk"),
        (_AsyncCursorIterator, "close"),
        (AsyncCursor, "_as_operation"),
        (EcoCollection, "_build_cursor"),
        (EcoCollection, "_apply_codec_options_to_document"),
        (EcoCollection, "_profile_operation"),
        (DatabaseAdminCommandCompiler, "compile_find_operation"),
        (WireConnectionRegistry, "close"),
    ]:
        assert callable(getattr(owner, name, None)), name
    # §32's reader: the cursor's operation and runtime, the engine's scan reader and books.
    from mongoeco.api._async._collection_runtime import CollectionRuntimeCoordinator
    from mongoeco.engines._sqlite_reader import SQLiteScanReader

    for owner, name in [
        (CollectionRuntimeCoordinator, "ensure_operation_executable"),
        (SQLiteScanReader, "fetch"),
        (SQLiteScanReader, "close"),
        (SQLiteEngine, "_run_blocking"),
        (SQLiteEngine, "_record_runtime_opcounter"),
        (SQLiteEngine, "_record_operation_metadata"),
    ]:
        assert callable(getattr(owner, name, None)), name
    assert {"max_documents", "max_bytes"} <= set(
        inspect.signature(SQLiteScanReader.fetch).parameters
    )
    assert _CommandFailPointState()._fail_command is None
    # §35 replaces the `decode_wire_value` and `encode_wire_value` the wire's messages call.
    from mongoeco.wire import protocol

    assert "decode_wire_value" in protocol.decode_op_msg.__code__.co_names
    assert "encode_wire_value" in protocol.encode_op_msg_response.__code__.co_names
    # §29 replaces the `deepcopy` each of these modules imported.
    assert all(hasattr(module, "deepcopy") for module in adapted.DOCUMENT_COPYING_MODULES)
