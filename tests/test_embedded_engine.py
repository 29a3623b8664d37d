"""The adapted embedded engine (models/embedded_engine.py) keeps MongoDB's semantics where it
takes its shortcuts, and its shortcuts read no whole collection: checked over the wire through
PyMongo, with the SQL the engine runs traced and explained (no timings)."""

import inspect
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId
from mongoeco.engines.sqlite import SQLiteEngine
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

import models.embedded_engine as adapted
from models.database import EmbeddedMongo
from models.embedded_engine import CrmSQLiteEngine, EngineVersionMismatch, check_engine_version

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


async def test_count_documents_counts_like_find(server: Server) -> None:
    collection = server.collection()
    await collection.create_index("status")
    await collection.insert_many([{"status": s} for s in ["a", "b", "a", "c", "a"] * 3])
    for query in ({}, {"status": "a"}, {"status": {"$in": ["b", "c"]}}, {"status": "zzz"}):
        found = len(await collection.find(query).to_list())
        assert await collection.count_documents(query) == found
    assert await collection.count_documents({"status": "a"}, skip=2, limit=5) == 5
    assert await collection.count_documents({"status": "a"}, skip=8) == 1


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
# prefix alone (db_name, coll_name) or on an index's prefix alone (collection_id, index_name).
WHOLE = re.compile(
    r"^SCAN (documents|scalar_index_entries|multikey_entries)\b(?! USING)"
    r"|^SEARCH documents USING .*\(db_name=\? AND coll_name=\?\)$"
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

    embedded = EmbeddedMongo(tmp_path)
    client = AsyncMongoClient(await embedded.start())
    collection = client["engine_test"]["stock"]
    try:
        for table, shared in adapted.SHARED_INDEXES.items():
            names = physical_indexes(tmp_path / "crm.sqlite3", table)
            assert shared in names
            assert not [name for name in names if name.startswith(("scidx_", "mkidx_"))]
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
