"""mongoeco's SQLite engine, adapted so the embedded database costs the same at 50,000 leads as
at 200: each shortcut is taken only when its precondition holds, else the stock path runs.

The shortcuts use mongoeco internals, so the engine is pinned (`MONGOECO_VERSION`, checked at
start-up); tests/test_embedded_engine.py fails when an internal they rely on changes. Each change,
why it is safe and how it could go upstream: docs/embedded-engine.md.
"""

import asyncio
import dataclasses
import json
import logging
import math
import re
import sqlite3
import struct
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from copy import deepcopy
from datetime import datetime
from importlib.metadata import version
from typing import Any

import bson
import orjson
from bson import Int64, ObjectId
from bson.binary import STANDARD
from bson.codec_options import CodecOptions, TypeRegistry
from mongoeco._types._bson_objectid import ObjectId as EngineObjectId
from mongoeco.api._async._active_operations import track_active_operation
from mongoeco.api._async.database_commands import _record_command_profile_event
from mongoeco.api.operations import UpdateOperation
from mongoeco.compat import MONGODB_DIALECT_70
from mongoeco.core import projections
from mongoeco.core.aggregation import array_string_expressions, transform_stages
from mongoeco.core.bson_scalars import (
    is_bson_numeric,
    normalize_utc_bson_datetime,
    validate_bson_value,
    wrap_bson_numeric,
)
from mongoeco.core.codec import DocumentCodec, _InternalBsonArray, _InternalBsonDocument
from mongoeco.core.error_documents import error_message
from mongoeco.core.expression_context import execution_now_scope
from mongoeco.core.filtering import QueryEngine
from mongoeco.core.json_compat import json_dumps_compact, json_loads
from mongoeco.core.operation_context import ChangePublicationPolicy, OperationContext
from mongoeco.core.paths import get_document_value
from mongoeco.core.projections import _ProjectionExecutor
from mongoeco.core.query_plan import (
    AllCondition,
    AndCondition,
    EqualsCondition,
    GreaterThanCondition,
    InCondition,
    LessThanCondition,
    MatchAll,
    OrCondition,
    TypeCondition,
)
from mongoeco.engines import _sqlite_modify_ops, snapshots
from mongoeco.engines import results as engine_results
from mongoeco.engines import sqlite as engine_sqlite
from mongoeco.engines._sqlite_connection import SQLiteConnection, sqlite_read_scope
from mongoeco.engines._sqlite_reader import SQLiteScanReader, _serialized_document_size_estimate
from mongoeco.engines.results import DeleteOutcome, InsertOutcome, MergeOutcome, MutationOutcome
from mongoeco.engines.semantic_core import compile_find_semantics_from_operation
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.engines.sqlite_query import (
    index_expressions_sql,
    json_path_for_field,
    path_array_prefixes,
    type_expression_sql,
)
from mongoeco.errors import BulkWriteError, OperationFailure
from mongoeco.session import ClientSession
from mongoeco.wire import protocol as wire_protocol
from mongoeco.wire._session_identity import wire_session_key
from mongoeco.wire.bson_bridge import decode_wire_value as stock_decode_wire_value
from mongoeco.wire.bson_bridge import encode_wire_value as stock_encode_wire_value
from mongoeco.wire.connections import WireConnectionContext, WireConnectionRegistry
from mongoeco.wire.cursors import _principal_key
from mongoeco.wire.executor import WireCommandExecutor
from mongoeco.wire.protocol import OP_MSG
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer
from mongoeco.wire.requests import WireRequestContext

from config import ConfigError

log = logging.getLogger(__name__)

MONGOECO_VERSION = "4.11.0"
"""The exact mongoeco these shortcuts were written and tested against."""

# Every write to `documents`, on any of the engine's connections, reports the stored row to
# CrmSQLiteEngine._on_write: the per-collection feature flags are re-checked on that row alone.
WRITE_HOOKS = tuple(
    f"CREATE TEMP TRIGGER IF NOT EXISTS crm_on_{event.lower()} AFTER {event} ON main.documents"
    " BEGIN SELECT crm_on_write(NEW.db_name, NEW.coll_name, NEW.storage_key, NEW.document); END"
    for event in ("INSERT", "UPDATE")
)
# Each collection's number of documents, kept by the write hooks below in the writing
# transaction and counted afresh at every start: `count` of a whole collection reads one row.
COUNTS_TABLE = (
    "CREATE TABLE IF NOT EXISTS crm_document_counts (db_name TEXT NOT NULL,"
    " coll_name TEXT NOT NULL, documents INTEGER NOT NULL, PRIMARY KEY (db_name, coll_name))"
)
COUNT_ONE = (
    "INSERT INTO crm_document_counts VALUES (NEW.db_name, NEW.coll_name, 1)"
    " ON CONFLICT (db_name, coll_name) DO UPDATE SET documents = documents + 1;"
)
UNCOUNT_ONE = (
    "UPDATE crm_document_counts SET documents = documents - 1"
    " WHERE db_name = OLD.db_name AND coll_name = OLD.coll_name;"
)
# An upsert that updates fires the update hooks, not the insert one; a rename moves rows.
COUNT_HOOKS = (
    "CREATE TEMP TRIGGER IF NOT EXISTS crm_count_insert AFTER INSERT ON main.documents"
    f" BEGIN {COUNT_ONE} END",
    "CREATE TEMP TRIGGER IF NOT EXISTS crm_count_delete AFTER DELETE ON main.documents"
    f" BEGIN {UNCOUNT_ONE} END",
    "CREATE TEMP TRIGGER IF NOT EXISTS crm_count_rename AFTER UPDATE OF db_name, coll_name"
    " ON main.documents WHEN OLD.db_name IS NOT NEW.db_name OR OLD.coll_name IS NOT NEW.coll_name"
    f" BEGIN {UNCOUNT_ONE} {COUNT_ONE} END",
)
RECOUNT = (
    "DELETE FROM crm_document_counts",
    "INSERT INTO crm_document_counts SELECT db_name, coll_name, COUNT(*) FROM documents"
    " GROUP BY db_name, coll_name",
)
# The keyword index (§33): the strings of the arrays in this field, for its single-field index,
# live in one FTS5 table, one row per document written once (rowid: the document's rowid), not
# as ~80 multikey rows, each a random insert into one big B-tree. A term is `k` and the string's
# UTF-8 in hex: exact, one token whatever the string holds. A written document's row waits in
# a plain table until its write commits (CrmSQLiteEngine._commit_write), then goes to FTS5 with
# the others of that write in one statement: FTS5 in SQLite 3.40 writes a segment at every
# statement savepoint, i.e. for every document a trigger adds one by one (0.3 ms a lead).
KEYWORD_FIELD = "searchKeys"  # LeadDocument.search_keys (a test checks)
# Longer strings get no term; a look-up of one takes the stock path.
KEYWORD_MAX = 1000
KEYWORDS_TABLES = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS crm_keywords USING fts5(keys, detail=none,"
    " columnsize=0, tokenize='ascii')",
    "CREATE TABLE IF NOT EXISTS crm_keywords_pending (rowid INTEGER PRIMARY KEY, keys TEXT)",
)
KEYWORDS_MOVE = (
    "INSERT INTO crm_keywords (rowid, keys) SELECT rowid, keys FROM crm_keywords_pending",
    "DELETE FROM crm_keywords_pending",
)


def keyword_term(value: str) -> str:
    return f"k{value.encode().hex()}"


def keyword_terms(document: str) -> str | None:
    """The keyword table's row for a stored document: the terms of what `{KEYWORD_FIELD: s}`
    matches, the strings of its array or the string itself; None when it holds neither.
    Parsed in Python: SQLite's JSON functions refuse a document holding NaN (see §24)."""
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        parsed = json.loads(document)
    value = parsed.get(KEYWORD_FIELD) if isinstance(parsed, dict) else None
    if type(value) is str:
        value = [value]
    elif type(value) is not list:
        return None
    return " ".join(
        [keyword_term(item) for item in value if type(item) is str and len(item) <= KEYWORD_MAX]
    )


def _keyword_row(table: str, document: str, source: str = "") -> str:
    """The INSERT of the keyword row of `document` (a `documents` row, in `source` if given)
    into `table`."""
    return (
        f"INSERT INTO {table} (rowid, keys) SELECT id, terms FROM (SELECT"
        f" {document}.rowid AS id, crm_keyword_terms({document}.document) AS terms{source})"
        " WHERE terms IS NOT NULL;"
    )


KEYWORD_DELETE = (
    "DELETE FROM crm_keywords WHERE rowid = OLD.rowid;"
    " DELETE FROM crm_keywords_pending WHERE rowid = OLD.rowid;"
)
# The keyword rows follow every write to `documents`, in its transaction (an update rewrites
# the row only when the field changed).
KEYWORD_HOOKS = (
    "CREATE TEMP TRIGGER IF NOT EXISTS crm_keywords_insert AFTER INSERT ON main.documents"
    f" BEGIN {_keyword_row('crm_keywords_pending', 'NEW')} END",
    "CREATE TEMP TRIGGER IF NOT EXISTS crm_keywords_update AFTER UPDATE OF document"
    " ON main.documents WHEN crm_keyword_terms(OLD.document)"
    " IS NOT crm_keyword_terms(NEW.document)"
    f" BEGIN {KEYWORD_DELETE} {_keyword_row('crm_keywords_pending', 'NEW')} END",
    "CREATE TEMP TRIGGER IF NOT EXISTS crm_keywords_delete AFTER DELETE ON main.documents"
    f" BEGIN {KEYWORD_DELETE} END",
)
KEYWORDS_MARKER, KEYWORDS_VERSION = "keyword_rows", "1"
# An element condition: an index over an array field, and groups of strings a matching
# document holds one of each of.
Element = tuple[dict[str, Any], tuple[tuple[str, ...], ...]]


# Written by a clean start: the scalar index rows were rebuilt by this engine version, which
# keeps them complete on every write; later starts need not rebuild them.
MARKER_TABLE = "CREATE TABLE IF NOT EXISTS crm_engine_state (key TEXT PRIMARY KEY, value TEXT)"
ROWS_MARKER = "scalar_rows_built_by"
TAG = f'."{DocumentCodec._MARKER}".{DocumentCodec._TYPE}'
# Per feature kind: a predicate on one row's `document` that turns an "absent" flag on.
PRESENCE: dict[str, str] = {
    "top_level_array": "json_type(document, {path}) = 'array'",
    "contains_real_numeric": "json_type(document, {path}) = 'real'",
}
MISMATCH: dict[str, str] = {
    "number": "json_type(document, {path}) NOT IN ('integer', 'real')",
    "string": "json_type(document, {path}) != 'text'",
    "bool": "json_type(document, {path}) NOT IN ('true', 'false')",
}
ELEMENT_ALLOWED = {
    "number": ("'integer', 'real', 'array'", "json_each.type NOT IN ('integer', 'real')"),
    "string": ("'text', 'array'", "json_each.type != 'text'"),
    "bool": ("'true', 'false', 'array'", "json_each.type NOT IN ('true', 'false')"),
}
# A value that gets no scalar index row, or whose row does not sort like MongoDB (bytes, uuid,
# undefined: kept on the stock path): missing, array, untagged object, other tagged types.
UNSORTABLE = (
    "json_type(document, {path}) IS NULL OR json_type(document, {path}) = 'array'"
    " OR (json_type(document, {path}) = 'object' AND COALESCE(json_extract(document, {tag}), '')"
    " NOT IN ('decimal128_public', 'decimal128', 'datetime', 'objectid'))"
)
# At most this many matches of an indexed equality: sorted after fetching them by key, rather
# than by walking the sort field's index (a lead's emails, not all NEW leads).
FEW = 100
# An element lookup's groups are ordered by their index rows counted up to this many: the
# smallest drives (see _element_lookup).
ESTIMATE_ROWS = 500
# A sorted walk's element groups are counted up to this many times the rows the walk may
# meet (see _walk_meets_elements).
WALK_COUNT = 4
# The tagged types of a Decimal128 value (mongoeco's three spellings).
DECIMAL_TAGS = ("decimal", "decimal128", "decimal128_public")
# At most this many plan-choosing counts are kept between writes.
PLAN_COUNTS = 1024
COUNT_GROUP = {"$group": {"_id": 1, "n": {"$sum": 1}}}
# Aggregate options a `count` command has no use for; any other option goes along.
AGGREGATE_ONLY = frozenset({"aggregate", "pipeline", "cursor", "allowDiskUse"})
# A find's SQL as every read plan starts it; a field name a JSON path may name unquoted.
SELECT_DOCUMENT = re.compile(r"\s*SELECT\s+(?:documents\.)?document\s")
PLAIN_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SORT_SELECTS = {
    "document": "documents.document",
    "storage_key, document": "documents.storage_key, documents.document",
}
UNIFORM = {
    "number": "json_type(document, {path}) IN ('integer', 'real')",
    "string": "json_type(document, {path}) = 'text'",
    "bool": "json_type(document, {path}) IN ('true', 'false')",
}


# The one physical index over each shared index-row table: mongoeco creates one identical
# (collection_id, index_name, type_score, element_key, storage_key) B-tree per logical index,
# all of them updated by every index row written (see "Shared physical indexes" in the docs).
SHARED_INDEXES = {
    "scalar_index_entries": "crm_scalar_entries",
    "multikey_entries": "crm_multikey_entries",
}
# mongoeco deletes a document's multikey rows by (collection_id, storage_key) at every update
# and delete, with no index to find them: every multikey row of the collection is read.
MULTIKEY_STORAGE_INDEX = (
    "CREATE INDEX IF NOT EXISTS crm_multikey_entries_storage"
    " ON multikey_entries (collection_id, storage_key)"
)
ROW_COLUMNS = "collection_id, index_name, storage_key, element_type, type_score, element_key"
SHARED_FIELDS = ["collection_id", "index_name", "type_score", "element_key", "storage_key"]
SHARED_COLUMNS = f"({', '.join(SHARED_FIELDS)})"
SHARED_CREATE = {
    f'CREATE INDEX "{name}" ': f'CREATE INDEX IF NOT EXISTS "{name}" '
    for name in SHARED_INDEXES.values()
}
# mongoeco's catalog row of a new index (`_sqlite_index_admin.create_index`): the position of
# `multikey_flag` among its parameters.
CATALOG_INSERT = "INSERT INTO indexes ("
MULTIKEY_FLAG = 18
# Connections kept open between finds (see ConnectionPool): more than the reads that run at once.
POOLED_CONNECTIONS = 8
SHARED_DROP = frozenset(f'DROP INDEX IF EXISTS "{name}"' for name in SHARED_INDEXES.values())


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class SharedIndexConnection(SQLiteConnection):
    """mongoeco's connection; a logical index's create/drop of a shared physical index
    creates it once / keeps it (its rows are deleted by the same drop); a multikey-capable
    index gets no expression index on `documents`."""

    # Where `close()` puts the connection, for the next user (the engine's own connections).
    pool: "ConnectionPool | None" = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql.startswith(("CREATE INDEX ", "DROP INDEX ")):
            if sql in SHARED_DROP:
                sql = "SELECT 1 WHERE 0"
            else:
                for prefix, replacement in SHARED_CREATE.items():
                    if sql.startswith(prefix):
                        sql = replacement + sql[len(prefix) :]
        cursor = super().execute(sql, parameters)
        if sql.lstrip().startswith(CATALOG_INSERT) and parameters[MULTIKEY_FLAG] and parameters[3]:
            # A multikey-capable index: its expression index, just built, can serve no query.
            super().execute(f"DROP INDEX IF EXISTS {quote(parameters[3])}")
        return cursor

    def close(self) -> None:
        if self.pool is None or not self.pool.keep(self):
            super().close()


class ConnectionPool:
    """Connections closed by their user, kept for the next one. mongoeco opens a connection
    for every find of more than one document and closes it after: each find parsed the schema,
    installed the write hooks, read the index catalog and started with an empty page cache
    (3 of a search's 8 ms at 50,000 leads). A kept connection has all of that at hand."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._idle: list[SharedIndexConnection] = []
        self._lock = threading.Lock()
        self._open = False

    def open(self) -> None:
        with self._lock:
            self._open = True

    def take(self) -> SharedIndexConnection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def keep(self, connection: SharedIndexConnection) -> bool:
        """Whether `connection` was kept (its transaction, if any, rolled back, as closing
        would): not once the pool is closed or full."""
        with self._lock:
            if not self._open or len(self._idle) >= self._size:
                return False
        try:
            connection.rollback()
        except sqlite3.Error:
            return False
        with self._lock:
            if not self._open or len(self._idle) >= self._size:
                return False
            self._idle.append(connection)
            return True

    def close(self) -> None:
        """Close every kept connection; from now on a closed connection is closed."""
        with self._lock:
            self._open = False
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


# WAL pages at which a writer copies the log into the database itself, in its commit (SQLite's
# default: 1,000, which a batch of 1,000 leads passes eight to twenty times over, for 70-130 ms
# of its commit). The Checkpointer copies them first, off the writer's thread (§36).
WRITER_CHECKPOINT_PAGES = 50_000
# The least time between two background checkpoints (each syncs the log and the file).
CHECKPOINT_INTERVAL = 0.5


class Checkpointer:
    """Copies the WAL's committed pages into the database file on a thread and connection of
    its own, when woken after a write: a passive checkpoint, which waits for no reader and no
    writer (what SQLite's automatic checkpoint does, in the writer's commit)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="crm-checkpointer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._wanted.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, check_same_thread=False)
        try:
            while self._wanted.wait() and not self._stopping.is_set():
                self._wanted.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as error:  # a writer copies the log at its threshold
                    log.warning("background checkpoint failed: %s", error)
                self._stopping.wait(CHECKPOINT_INTERVAL)
        finally:
            connection.close()


class EngineVersionMismatch(ConfigError):
    """The installed mongoeco is not the one the adaptation was written for."""


def check_engine_version() -> None:
    installed = version("mongoeco")
    if installed != MONGOECO_VERSION:
        raise EngineVersionMismatch(
            f"the embedded database needs mongoeco=={MONGOECO_VERSION} (installed: {installed});"
            " run `uv sync`"
        )


def _literal(field: str) -> str:
    return "'" + json_path_for_field(field).replace("'", "''") + "'"


def _non_ascii(value: object) -> bool:
    return isinstance(value, str) and not value.isascii()


def _tag_literal(field: str) -> str:
    return "'" + (json_path_for_field(field) + TAG).replace("'", "''") + "'"


# Page cache per engine connection, in KiB (SQLite's default: 2,000): an indexed array adds
# a row per element to one shared index; with the default, each of those random inserts
# mostly re-reads its B-tree pages from the OS.
CACHE_SIZE = -65536

# --- encoding: each document validated once, not once per nesting level ----------------------

PLAIN_DOCUMENTS = (dict, _InternalBsonDocument)
PLAIN_ARRAYS = (list, tuple, _InternalBsonArray)
# Scalars DocumentCodec.encode returns as they are, once validate_bson_value accepted them.
PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


def encode_validated(data: Any) -> Any:
    """`DocumentCodec.encode(data)` for a value validate_bson_value has accepted as a whole.
    Exact builtin containers and scalars only; any other type goes to the stock encoder."""
    kind = type(data)
    if kind in PLAIN_DOCUMENTS:
        encoded = {key: encode_validated(value) for key, value in data.items()}
        if DocumentCodec._is_tagged_value(encoded):
            return DocumentCodec._tagged_value("dict", encoded)
        return encoded
    if kind in PLAIN_ARRAYS:
        return [encode_validated(value) for value in data]
    if kind in PLAIN_SCALARS:
        return data
    if kind is datetime:  # the stock encoding of a date, less its dozen type checks
        date = normalize_utc_bson_datetime(data)
        return DocumentCodec._tagged_value("datetime", date.isoformat())
    return DocumentCodec.encode(data)


# Immutable values: a copy shares them, as `deepcopy` shares a str or an int (see
# document_copy); validate_bson_value accepts any of them but an int out of int64's range.
SHARED_VALUES = frozenset(
    {str, int, float, bool, type(None), bytes, datetime, ObjectId, EngineObjectId}
)


def validate_document(value: Any) -> None:
    """`validate_bson_value(value)`, with exact builtin containers and common scalars checked
    inline, in its order: anything else (and a key that is no exact str) goes to it."""
    pending = [value]
    while pending:
        current = pending.pop()
        kind = type(current)
        if kind is int:
            wrap_bson_numeric(current)  # raises as the stock check does out of int64's range
        elif kind in SHARED_VALUES:
            continue
        elif kind in PLAIN_DOCUMENTS and all(type(key) is str for key in current):
            pending.extend(current.values())
        elif kind in PLAIN_ARRAYS:
            pending.extend(current)
        else:
            validate_bson_value(current)


def encode_document(document: Any) -> Any:
    """`DocumentCodec.encode(document)`: the stock encoder validates each nested document
    again (its whole subtree) at every level; this validates the document once, first, as
    the stock encoder's first step does, so the same error is raised for the same input."""
    if type(document) not in PLAIN_DOCUMENTS:
        return DocumentCodec.encode(document)
    validate_document(document)
    return encode_validated(document)


# --- copies: a document copied as data ------------------------------------------------------

# Where the engine copies whole documents on every write: the update's working copy, the
# before and after images (copied again by each result's __post_init__); and on reads: each
# document a cursor returns (its read snapshot), find's projection, the aggregation stages
# of lists ($set, $unset, $project) and of the timeline's update ($concatArrays).
DOCUMENT_COPYING_MODULES = (
    _sqlite_modify_ops,
    engine_results,
    engine_sqlite,
    snapshots,
    projections,
    transform_stages,
    array_string_expressions,
)


def document_copy(value: Any) -> Any:
    """`copy.deepcopy(value)` for BSON data, ~4x faster: exact dicts and lists are copied,
    immutable scalars shared, any other value deep-copied. A BSON document is a tree (no
    cycles, nothing shared), so deepcopy's memo has nothing to keep."""
    kind = type(value)
    if kind is dict:
        return {key: document_copy(item) for key, item in value.items()}
    if kind is list:
        return [document_copy(item) for item in value]
    if kind in SHARED_VALUES:
        return value
    return deepcopy(value)


class EncodedDocuments:
    """The encoding of each internal document the wire made for a bulk insert, kept until the
    insert has stored it: the engine stores exactly that encoding, so the document is not
    validated and encoded a second time (§14). Kept by identity: an internal document is
    immutable, so a document changed since is another object, encoded afresh."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[Any, Any]] = {}

    def keep(self, document: Any, encoded: Any) -> None:
        self._kept[id(document)] = (document, encoded)

    def encoding(self, document: Any) -> Any | None:
        kept = self._kept.get(id(document))
        return kept[1] if kept is not None and kept[0] is document else None

    def forget(self, documents: list[Any]) -> None:
        for document in documents:
            self._kept.pop(id(document), None)

    def __len__(self) -> int:
        return len(self._kept)


ENCODED = EncodedDocuments()


def internal_document(document: dict[str, Any]) -> Any:
    """`DocumentCodec.to_internal(document)` with `encode_document` and `internal_value`;
    its encoding kept in ENCODED for the engine."""
    encoded = encode_document(document)
    internal = internal_value(encoded)
    ENCODED.keep(internal, encoded)
    return internal


def internal_value(encoded: Any) -> Any:
    """`DocumentCodec.mark_internal(DocumentCodec.decode(encoded, preserve_bson_wrappers=True))`
    in one walk, not two: an encoding's untagged dicts, lists and JSON scalars decode to
    themselves; each tagged value (and any other scalar) goes to the stock pair."""
    kind = type(encoded)
    if kind is dict:
        if not DocumentCodec._is_tagged_value(encoded):
            return _InternalBsonDocument(
                {key: internal_value(item) for key, item in encoded.items()}
            )
        tagged = encoded[DocumentCodec._MARKER]
        if tagged[DocumentCodec._TYPE] == "datetime":  # its stock decoding, internal as it is
            return datetime.fromisoformat(tagged[DocumentCodec._VALUE])
    if kind is list:
        return _InternalBsonArray([internal_value(item) for item in encoded])
    if kind in PLAIN_SCALARS:
        return encoded
    return DocumentCodec.mark_internal(DocumentCodec.decode(encoded, preserve_bson_wrappers=True))


# The wire's own conversion of each value PyMongo decoded, for types that need none.
WIRE_PLAIN_SCALARS = PLAIN_SCALARS | {datetime}


def plain_fast_path(stock: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`stock`, one of the wire's value conversions (bson_bridge: PyMongo's BSON types to
    mongoeco's values, or back), with exact dicts, lists and plain scalars taken without its
    chain of a dozen `isinstance` checks per value, which returns them unchanged (containers
    copied); any other value goes to it."""

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind in WIRE_PLAIN_SCALARS:
            return value
        if kind is dict:
            return {key: convert(item) for key, item in value.items()}
        if kind is list:
            return [convert(item) for item in value]
        return stock(value)

    return convert


# What the wire decodes, and what it encodes for the replies the C encoder does not write (an
# aggregate's batches: every lead list page).
decode_wire_value = plain_fast_path(stock_decode_wire_value)
encode_wire_value = plain_fast_path(stock_encode_wire_value)


def _unrecorded(context: OperationContext | None) -> OperationContext | None:
    """`context` with publication off: the engine writes no change-outbox row for it."""
    if context is None or context.publication is ChangePublicationPolicy.DISABLED:
        return context
    return dataclasses.replace(context, publication=ChangePublicationPolicy.DISABLED)


class CrmSQLiteEngine(SQLiteEngine):
    """`SQLiteEngine` without the whole-collection scans of the write and read paths."""

    # Change events go from the write straight to the client's in-memory change hub (as with
    # mongoeco's memory engine), not through a change outbox in SQLite read back after every
    # write: no client of this engine has a durable (journaled) hub to resume from.
    capabilities = dataclasses.replace(SQLiteEngine.capabilities, change_delivery="none")

    def __init__(self, path: str = ":memory:", **options: Any) -> None:
        super().__init__(path, **options)
        for module in DOCUMENT_COPYING_MODULES:  # each imported `deepcopy` from copy
            module.deepcopy = document_copy  # type: ignore[attr-defined]
        self._canonical_id_keys: set[tuple[str, str]] = set()
        probe = self._serialize_document({"_id": ObjectId()})
        self._object_id_class: type = type(self._deserialize_document(probe)["_id"])
        prefix = self._storage_key(self._object_id_class(ObjectId()))[: -len("'))") - 24]
        # Storage keys of ObjectId `_id`s sort like the ObjectIds: one prefix, then 24 hex digits.
        self._id_not_object_id = "substr(storage_key, 1, {}) != '{}'".format(
            len(prefix), prefix.replace("'", "''")
        )
        # Evaluates flag predicates on one written row, apart from the engine's connections.
        self._scratch = sqlite3.connect(":memory:", check_same_thread=False)
        self._scratch.create_function("crm_non_ascii", 1, _non_ascii, deterministic=True)
        self._flags_lock = threading.Lock()
        # Counts that only choose a plan (never what it returns), kept until the next write.
        self._plan_counts: dict[tuple[object, ...], int] = {}
        self._pool = ConnectionPool(POOLED_CONNECTIONS)
        # The keyword tables exist (made at start, before any write).
        self._keywords_ready = False
        self._checkpointer = Checkpointer(path) if path != ":memory:" else None

    def _serialize_document(self, document: dict[str, Any]) -> str:
        if self._codec is not DocumentCodec:
            serialized: str = super()._serialize_document(document)
            return serialized
        encoded = ENCODED.encoding(document)
        if encoded is None:
            encoded = encode_document(document)
        return json_dumps_compact(encoded, sort_keys=False)

    # --- writes: no change-outbox rows (delivery is in memory, see `capabilities`) ----------

    async def insert_document(
        self,
        db_name: str,
        coll_name: str,
        document: dict[str, Any],
        overwrite: bool = True,
        *,
        context: ClientSession | None = None,
        bypass_document_validation: bool = False,
        on_commit: Callable[[InsertOutcome], None] | None = None,
        operation_context: OperationContext | None = None,
    ) -> InsertOutcome:
        outcome: InsertOutcome = await super().insert_document(
            db_name,
            coll_name,
            document,
            overwrite,
            context=context,
            bypass_document_validation=bypass_document_validation,
            on_commit=on_commit,
            operation_context=_unrecorded(operation_context),
        )
        return outcome

    async def insert_documents(
        self,
        db_name: str,
        coll_name: str,
        documents: list[dict[str, Any]],
        *,
        context: ClientSession | None = None,
        bypass_document_validation: bool = False,
        on_commit: Callable[[InsertOutcome], None] | None = None,
        operation_context: OperationContext | None = None,
    ) -> tuple[InsertOutcome, ...]:
        outcomes: tuple[InsertOutcome, ...] = await super().insert_documents(
            db_name,
            coll_name,
            documents,
            context=context,
            bypass_document_validation=bypass_document_validation,
            on_commit=on_commit,
            operation_context=_unrecorded(operation_context),
        )
        return outcomes

    async def merge_document(
        self,
        db_name: str,
        coll_name: str,
        document: dict[str, Any],
        *,
        when_matched: str,
        when_not_matched: str,
        context: ClientSession | None = None,
        on_commit: Callable[[MergeOutcome], None] | None = None,
        operation_context: OperationContext | None = None,
    ) -> MergeOutcome:
        outcome: MergeOutcome = await super().merge_document(
            db_name,
            coll_name,
            document,
            when_matched=when_matched,
            when_not_matched=when_not_matched,
            context=context,
            on_commit=on_commit,
            operation_context=_unrecorded(operation_context),
        )
        return outcome

    async def update_with_operation(
        self,
        db_name: str,
        coll_name: str,
        operation: UpdateOperation,
        upsert: bool = False,
        upsert_seed: dict[str, Any] | None = None,
        *,
        selector_filter: dict[str, Any] | None = None,
        dialect: Any = None,
        context: ClientSession | None = None,
        bypass_document_validation: bool = False,
        replacement_document: dict[str, Any] | None = None,
        on_commit: Callable[[MutationOutcome], None] | None = None,
        operation_context: OperationContext | None = None,
    ) -> MutationOutcome:
        unrecorded = _unrecorded(operation_context)
        if operation.context is operation_context and unrecorded is not operation_context:
            # Bound to the context it comes with: bound to its unrecorded copy instead.
            operation = operation.with_overrides(context=unrecorded)
        outcome: MutationOutcome = await super().update_with_operation(
            db_name,
            coll_name,
            operation,
            upsert,
            upsert_seed,
            selector_filter=selector_filter,
            dialect=dialect,
            context=context,
            bypass_document_validation=bypass_document_validation,
            replacement_document=replacement_document,
            on_commit=on_commit,
            operation_context=unrecorded,
        )
        return outcome

    async def delete_with_operation(
        self,
        db_name: str,
        coll_name: str,
        operation: UpdateOperation,
        *,
        selector_filter: dict[str, Any] | None = None,
        dialect: Any = None,
        context: ClientSession | None = None,
        on_commit: Callable[[DeleteOutcome], None] | None = None,
        operation_context: OperationContext | None = None,
    ) -> DeleteOutcome:
        outcome: DeleteOutcome = await super().delete_with_operation(
            db_name,
            coll_name,
            operation,
            selector_filter=selector_filter,
            dialect=dialect,
            context=context,
            on_commit=on_commit,
            operation_context=_unrecorded(operation_context),
        )
        return outcome

    # --- feature flags: kept across writes, re-checked on each written row -------------------

    def _create_sqlite_connection(self) -> sqlite3.Connection:
        kept = self._pool.take()
        if kept is not None:
            return kept
        connection = self._connect()
        connection.create_function("crm_on_write", 4, self._on_write)
        connection.create_function("crm_keyword_terms", 1, keyword_terms, deterministic=True)
        self._install_write_hooks(connection)
        connection.pool = self._pool
        return connection

    def _connect_sync(self) -> None:
        self._pool.open()
        super()._connect_sync()
        if self._checkpointer is not None and self._connection_count == 1:
            self._checkpointer.start()

    def _disconnect_sync(self) -> None:
        if self._checkpointer is not None and self._connection_count == 1:
            self._checkpointer.stop()
        super()._disconnect_sync()
        if self._connection_count == 0:
            self._pool.close()

    def _abort_failed_connect_sync(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        super()._abort_failed_connect_sync()
        self._pool.close()

    def _connect(self) -> SharedIndexConnection:
        """The stock `_create_sqlite_connection`, with SharedIndexConnection."""
        connection = sqlite3.connect(
            self._path, check_same_thread=False, factory=SharedIndexConnection
        )
        try:
            if self._path != ":memory:":
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute(f"PRAGMA cache_size={CACHE_SIZE}")
                connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
                # Before the TEMP triggers (a change of temp_store deletes them). See §35.
                connection.execute("PRAGMA temp_store=MEMORY")
        except BaseException:
            connection.close()
            raise
        return connection

    # --- expression indexes on `documents`: none for a multikey-capable index -------------

    @staticmethod
    def _drop_unusable_expression_indexes(conn: sqlite3.Connection) -> None:
        """A file written by the stock engine: the expression index of each multikey-capable
        index dropped (see SharedIndexConnection for new indexes)."""
        for (name,) in conn.execute(
            "SELECT indexes.physical_name FROM indexes JOIN sqlite_master"
            " ON sqlite_master.type = 'index' AND sqlite_master.tbl_name = 'documents'"
            " AND sqlite_master.name = indexes.physical_name WHERE indexes.multikey_flag"
        ).fetchall():
            conn.execute(f"DROP INDEX {quote(name)}")

    def _resolve_hint_index(
        self,
        db_name: str,
        coll_name: str,
        hint: Any,
        *,
        indexes: Any = None,
        plan: Any = None,
        dialect: Any = MONGODB_DIALECT_70,
        collation: Any = None,
    ) -> Any:
        """The hinted index; a multikey-capable one without its physical name (it has no
        expression index): the hinted query reads `documents` without `INDEXED BY`, the same
        documents."""
        index = super()._resolve_hint_index(
            db_name,
            coll_name,
            hint,
            indexes=indexes,
            plan=plan,
            dialect=dialect,
            collation=collation,
        )
        if index is not None and index.get("multikey"):
            return dataclasses.replace(index, physical_name=None)
        return index

    # --- one physical index per shared index-row table, not one per logical index ----------

    def _physical_scalar_index_name(self, db_name: str, coll_name: str, index_name: str) -> str:
        return SHARED_INDEXES["scalar_index_entries"]

    def _physical_multikey_index_name(self, db_name: str, coll_name: str, index_name: str) -> str:
        return SHARED_INDEXES["multikey_entries"]

    def _ensure_scalar_physical_indexes_sync(
        self, conn: sqlite3.Connection, indexes: list[Any]
    ) -> None:
        """The stock check once per physical index, not once per logical index (each a
        `CREATE INDEX IF NOT EXISTS`, for every document written): they share one."""
        distinct = {
            str(index.get("scalar_physical_name")): index
            for index in indexes
            if self._supports_scalar_index(index)
        }
        super()._ensure_scalar_physical_indexes_sync(conn, list(distinct.values()))

    def _validate_compound_multikey_shape(self, document: dict[str, Any], index: Any) -> None:
        """Stock, less its walk of each path where no field of the index is dotted or holds an
        array: then no two of them can hold one."""
        if any("." in field or isinstance(document.get(field), list) for field in index["fields"]):
            super()._validate_compound_multikey_shape(document, index)

    @staticmethod
    def _share_physical_indexes(conn: sqlite3.Connection) -> None:
        """A file written by the stock engine (or an earlier version of this one): its logical
        indexes renamed to the shared physical index, which replaces their identical ones; and
        the multikey rows' storage-key index."""
        conn.execute(MULTIKEY_STORAGE_INDEX)
        for table, column in (
            ("scalar_index_entries", "scalar_physical_name"),
            ("multikey_entries", "multikey_physical_name"),
        ):
            shared = SHARED_INDEXES[table]
            conn.execute(
                f"UPDATE indexes SET {column} = ? WHERE {column} IS NOT NULL AND {column} != ''"
                f" AND {column} != ?",
                (shared, shared),
            )
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{shared}" ON {table} {SHARED_COLUMNS}')
            for _, name, unique, _, partial in conn.execute(
                f"PRAGMA index_list({table})"
            ).fetchall():
                quoted = '"' + name.replace('"', '""') + '"'
                columns = [row[2] for row in conn.execute(f"PRAGMA index_info({quoted})")]
                if name != shared and not unique and not partial and columns == SHARED_FIELDS:
                    conn.execute(f"DROP INDEX {quoted}")

    @staticmethod
    def _install_write_hooks(connection: sqlite3.Connection) -> None:
        """On a new file the first connection comes before the tables: hooked again below."""
        if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'documents'").fetchone():
            connection.execute(COUNTS_TABLE)
            for table in KEYWORDS_TABLES:
                connection.execute(table)
            for statement in (*WRITE_HOOKS, *COUNT_HOOKS, *KEYWORD_HOOKS):
                connection.execute(statement)

    def _invalidate_collection_features_cache(
        self, db_name: str | None = None, coll_name: str | None = None
    ) -> None:
        # Written rows were applied by _on_write; a delete only turns flags off, and a flag
        # left on merely keeps the stock (general) path. Only a full reset clears.
        if db_name is None or coll_name is None:
            super()._invalidate_collection_features_cache()

    def _on_write(self, db_name: str, coll_name: str, storage_key: str, document: str) -> None:
        """Counts one stored row into the cached flags of its collection (never raises: an
        exception would fail the write; a flag it cannot update is dropped, to be recomputed)."""
        self._plan_counts.clear()
        cache = self._cache_state.collection_features_cache
        with self._flags_lock:
            keys = [key for key in cache if key[0] == db_name and key[1] == coll_name]
            try:
                checks = [(key, self._recheck_expression(key, cache[key])) for key in keys]
                for key, expression in checks:
                    if expression is None:
                        cache.pop(key, None)
                live = [(key, expr) for key, expr in checks if expr not in (None, "")]
                if not live:
                    return
                row = self._scratch.execute(
                    "SELECT "
                    + ", ".join(f"COALESCE(({expr}), 0)" for _, expr in live)
                    + " FROM (SELECT ? AS document, ? AS storage_key)",
                    (document, storage_key),
                ).fetchone()
                for (key, _), hit in zip(live, row, strict=True):
                    if hit:
                        # "All one type" turns off; every other flag ("some row has …") on.
                        cache[key] = not key[2].startswith("uniform_scalar_sort_type:")
            except Exception:  # noqa: BLE001 - see the docstring
                for key in keys:
                    cache.pop(key, None)

    def _recheck_expression(self, key: tuple[str, str, str], cached: bool | str) -> str | None:
        """SQL on one row (`document`, `storage_key`) that is true when the row changes the
        flag `key`; "" when no row can change it; None for a flag this adaptation does not
        know (dropped: the stock code recomputes it)."""
        kind, _, rest = key[2].partition(":")
        if kind == "uniform_scalar_sort_type":
            if not isinstance(cached, str) or cached not in UNIFORM:
                return "" if cached is False else None
            return f"NOT COALESCE({UNIFORM[cached].format(path=_literal(rest))}, 0)"
        if cached is True:
            return ""  # already on: no write turns it off
        field, _, value_type = rest.rpartition(":")
        if kind in PRESENCE:
            return PRESENCE[kind].format(path=_literal(rest))
        if kind == "contains_non_ascii_text":
            return f"crm_non_ascii(json_extract(document, {_literal(rest)}))"
        if kind == "crm_unsortable":
            return UNSORTABLE.format(path=_literal(rest), tag=_tag_literal(rest))
        if kind == "crm_id_not_object_id":
            return self._id_not_object_id
        if kind == "traverses_array":
            return (
                " OR ".join(
                    f"json_type(document, {_literal(prefix)}) = 'array'"
                    for prefix in path_array_prefixes(rest)
                )
                or ""
            )
        if kind == "traverses_dbref":
            parts = rest.split(".")
            return (
                " OR ".join(
                    f"json_extract(document, {_tag_literal('.'.join(parts[:n]))}) = 'dbref'"
                    for n in range(1, len(parts))
                )
                or ""
            )
        if kind == "tagged_type":
            return (
                f"json_extract(document, {_tag_literal(field)}) = '{value_type.replace("'", "''")}'"
            )
        if kind == "comparison_mismatch" and value_type in MISMATCH:
            path = _literal(field)
            return f"json_type(document, {path}) IS NOT NULL AND " + MISMATCH[value_type].format(
                path=path
            )
        if kind == "scalar_or_array_comparison_mismatch" and value_type in ELEMENT_ALLOWED:
            path = _literal(field)
            allowed, element = ELEMENT_ALLOWED[value_type]
            return (
                f"(json_type(document, {path}) IS NOT NULL"
                f" AND json_type(document, {path}) NOT IN ({allowed}))"
                f" OR (json_type(document, {path}) = 'array' AND EXISTS"
                f" (SELECT 1 FROM json_each(document, {path}) WHERE {element}))"
            )
        return None

    # --- the keyword index: its strings in the keyword table, not in multikey rows (§33) ----

    def _commit_write(self, conn: sqlite3.Connection, context: ClientSession | None) -> None:
        """The keyword rows the write left waiting go to the keyword table first, in one
        statement (see KEYWORDS_TABLES), inside the write's own transaction."""
        if (
            self._keywords_ready
            and conn.execute("SELECT 1 FROM crm_keywords_pending LIMIT 1").fetchone()
        ):
            for statement in KEYWORDS_MOVE:
                conn.execute(statement)
        super()._commit_write(conn, context)
        if self._checkpointer is not None:
            self._checkpointer.wake()

    @staticmethod
    def _keyword_index(index: Any) -> bool:
        """An index whose array strings the keyword table holds: ordered (ascending or
        descending) on KEYWORD_FIELD alone, multikey-capable, over every document, by binary
        comparison."""
        return bool(
            index["fields"] == [KEYWORD_FIELD]
            and SQLiteEngine._supports_scalar_index(index)
            and index.get("multikey")
            and not index.get("partial_filter_expression")
            and index.get("collation") is None
            and index.get("expire_after_seconds") is None
        )

    def _build_multikey_rows_for_document(
        self, storage_key: str, document: dict[str, Any], indexes: list[Any]
    ) -> list[tuple[str, str, int, str]]:
        rows: list[tuple[str, str, int, str]] = super()._build_multikey_rows_for_document(
            storage_key, document, [index for index in indexes if not self._keyword_index(index)]
        )
        return rows

    def _find_multikey_index(self, db_name: str, coll_name: str, field: str) -> Any:
        """None for a keyword index: it has no multikey rows (a condition our element
        lookups do not answer takes the stock JSON path)."""
        index = super()._find_multikey_index(db_name, coll_name, field)
        return None if index is None or self._keyword_index(index) else index

    # --- a rewritten document's index rows: only the changed ones replaced -----------------

    def _rebuild_multikey_entries_for_document(
        self,
        conn: sqlite3.Connection,
        db_name: str,
        coll_name: str,
        storage_key: str,
        document: dict[str, Any],
        indexes: list[Any],
    ) -> None:
        if not self._changed_rows_rebuilt(
            conn, db_name, coll_name, storage_key, document, indexes, multikey=True
        ):
            super()._rebuild_multikey_entries_for_document(
                conn, db_name, coll_name, storage_key, document, indexes
            )

    def _rebuild_scalar_entries_for_document(
        self,
        conn: sqlite3.Connection,
        db_name: str,
        coll_name: str,
        storage_key: str,
        document: dict[str, Any],
        indexes: list[Any],
    ) -> None:
        if not self._changed_rows_rebuilt(
            conn, db_name, coll_name, storage_key, document, indexes, multikey=False
        ):
            super()._rebuild_scalar_entries_for_document(
                conn, db_name, coll_name, storage_key, document, indexes
            )
            return
        # As the stock rebuild: the document's TTL rows replaced (deleted, then written).
        self._replace_ttl_entries_for_document(
            conn, db_name, coll_name, storage_key, document, indexes
        )

    def _changed_rows_rebuilt(
        self,
        conn: sqlite3.Connection,
        db_name: str,
        coll_name: str,
        storage_key: str,
        document: dict[str, Any],
        indexes: list[Any],
        *,
        multikey: bool,
    ) -> bool:
        """The document's multikey (or scalar) rows rebuilt by `_replace_changed_rows`; False
        when its collection has no id yet (then the stock rebuild runs)."""
        collection_id = self._lookup_collection_id(conn, db_name, coll_name, create=True)
        if collection_id is None:
            return False
        if multikey:
            rows = self._build_multikey_rows_for_document(storage_key, document, indexes)
            if rows:
                self._ensure_multikey_physical_indexes_sync(conn, indexes)
        else:
            rows = self._build_scalar_rows_for_document(storage_key, document, indexes)
            if rows:
                self._ensure_scalar_physical_indexes_sync(conn, indexes)
        table = "multikey_entries" if multikey else "scalar_index_entries"
        self._replace_changed_rows(conn, table, collection_id, storage_key, rows)
        return True

    @staticmethod
    def _replace_changed_rows(
        conn: sqlite3.Connection,
        table: str,
        collection_id: int,
        storage_key: str,
        rows: list[tuple[str, str, int, str]],
    ) -> None:
        """The document's rows in `table` made equal (as a multiset) to `rows`, as the stock
        delete-all-then-insert leaves them, touching only the rows that differ: an update
        that leaves an indexed array alone rewrites none of its element rows."""
        wanted = Counter(
            (collection_id, index_name, storage_key, element_type, type_score, element_key)
            for index_name, element_type, type_score, element_key in rows
        )
        stale = []
        for rowid, *stored in conn.execute(
            f"SELECT rowid, {ROW_COLUMNS} FROM {table} WHERE collection_id = ? AND storage_key = ?",
            (collection_id, storage_key),
        ):
            key = tuple(stored)
            if wanted[key] > 0:
                wanted[key] -= 1
            else:
                stale.append((rowid,))
        if stale:
            conn.executemany(f"DELETE FROM {table} WHERE rowid = ?", stale)
        added = list(wanted.elements())
        if added:
            conn.executemany(
                f"INSERT OR IGNORE INTO {table} ({ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", added
            )

    # --- unique indexes: keyed lookups instead of decoding every document -------------------

    def _validate_document_against_unique_indexes(
        self,
        db_name: str,
        coll_name: str,
        document: dict[str, Any],
        *,
        exclude_storage_key: str | None = None,
        skip_id_check: bool = False,
        scan_payload_id: bool = False,
    ) -> None:
        if scan_payload_id and self._keyed_id(db_name, coll_name, document.get("_id")):
            # Only an equal ObjectId (string) is a duplicate, and it is stored under the same
            # storage key, which the stock keyed lookup already checks.
            scan_payload_id = False
        super()._validate_document_against_unique_indexes(
            db_name,
            coll_name,
            document,
            exclude_storage_key=exclude_storage_key,
            skip_id_check=skip_id_check,
            scan_payload_id=scan_payload_id,
        )

    def _keyed_id(self, db_name: str, coll_name: str, value: object) -> bool:
        """Whether a keyed lookup finds every stored `_id` equal to `value`: it is a string or
        an ObjectId of the class the engine decodes to (the storage key holds the class), and
        every such `_id` of the collection is stored under that key (rows written by another
        engine version or in-process API might not be; checked once per collection)."""
        if type(value) not in (self._object_id_class, str):
            return False
        if (db_name, coll_name) in self._canonical_id_keys:
            return True
        conn = self._require_connection()
        rows = conn.execute(
            "SELECT storage_key, json_type(document, '$._id'), json_extract(document, '$._id'),"
            f" json_extract(document, '$._id{TAG}'),"
            f" json_extract(document, '$._id.\"{DocumentCodec._MARKER}\".value')"
            " FROM documents WHERE db_name = ? AND coll_name = ?",
            (db_name, coll_name),
        )
        for storage_key, json_type, value, tag, tagged_value in rows:
            if json_type == "text":
                expected = self._storage_key(value)
            elif tag == "objectid":
                expected = self._storage_key(self._object_id_class(tagged_value))
            else:
                continue
            if storage_key != expected:
                return False
        self._canonical_id_keys.add((db_name, coll_name))
        return True

    def _unique_index_conflict_via_scalar_entries(
        self,
        conn: sqlite3.Connection,
        collection_id: int | None,
        index: dict[str, Any],
        document: dict[str, Any],
        *,
        exclude_storage_key: str | None,
    ) -> bool | None:
        stock: bool | None = super()._unique_index_conflict_via_scalar_entries(
            conn, collection_id, index, document, exclude_storage_key=exclude_storage_key
        )
        if stock is not None or collection_id is None or not index.get("scalar_physical_name"):
            return stock
        if not self._supports_scalar_index(index):
            return None
        found, value = get_document_value(document, index["fields"][0])
        if not found or not is_bson_numeric(value):
            return None
        try:
            # Equal numbers of any BSON type (1, 1.0, Int64(1), Decimal128("1")) share one key.
            signature = self._multikey_value_signature(value)
        except NotImplementedError:  # NaN, infinity: the stock scan decides
            return None
        if signature is None:
            return None
        element_type, element_key = signature
        namespace = conn.execute(
            "SELECT db_name, coll_name FROM collections WHERE collection_id = ?", (collection_id,)
        ).fetchone()
        if namespace is None or self._field_contains_tagged_value_type_in_collection(
            namespace[0], namespace[1], index["fields"][0], "int64"
        ):
            return None  # Int64 values get no index row: only the stock scan sees them
        # Every other number has its row: rebuilt at start-up, or kept by this engine version.
        sql = (
            "SELECT 1 FROM scalar_index_entries INDEXED BY"
            f" {self._quote_identifier(str(index['scalar_physical_name']))}"
            " WHERE collection_id = ? AND index_name = ? AND type_score = ? AND element_key = ?"
        )
        params: list[object] = [
            collection_id,
            str(index["name"]),
            self._multikey_type_score(element_type),
            element_key,
        ]
        if exclude_storage_key is not None:
            sql += " AND storage_key != ?"
            params.append(exclude_storage_key)
        return conn.execute(sql + " LIMIT 1", params).fetchone() is not None

    # --- `_id` inside `$and`: one keyed lookup, then the whole filter on that document -------

    def _select_first_document_for_plan(
        self,
        db_name: str,
        coll_name: str,
        plan: Any,
        *,
        hint: Any = None,
        context: Any = None,
    ) -> tuple[str, dict[str, Any]] | None:
        id_values = [
            clause.value
            for clause in getattr(plan, "clauses", ())
            if isinstance(clause, EqualsCondition) and clause.field == "_id"
        ]
        if (
            hint is None
            and isinstance(plan, AndCondition)
            and len(id_values) == 1
            and self._keyed_id(db_name, coll_name, id_values[0])
        ):
            conn = self._require_connection(context)
            with self._bind_connection(conn), sqlite_read_scope(conn):
                row = conn.execute(
                    "SELECT storage_key, document FROM documents"
                    " WHERE db_name = ? AND coll_name = ? AND storage_key = ?",
                    (db_name, coll_name, self._storage_key(id_values[0])),
                ).fetchone()
            if row is None:
                return None
            document: dict[str, Any] = self._deserialize_document(row[1])
            return (row[0], document) if QueryEngine.match_plan(document, plan) else None
        selected: tuple[str, dict[str, Any]] | None = super()._select_first_document_for_plan(
            db_name, coll_name, plan, hint=hint, context=context
        )
        return selected

    # --- start-up: index rows are rebuilt once per file, not at every start --------------------

    def _backfill_scalar_indexes_sync(self, conn: sqlite3.Connection) -> None:
        self._install_write_hooks(conn)  # the tables exist now
        # Whatever wrote the file before (another engine, a crash between versions), the
        # counts start from the documents themselves.
        for statement in RECOUNT:
            conn.execute(statement)
        self._share_physical_indexes(conn)
        self._drop_unusable_expression_indexes(conn)
        conn.execute(MARKER_TABLE)
        marker = conn.execute(
            "SELECT value FROM crm_engine_state WHERE key = ?", (ROWS_MARKER,)
        ).fetchone()
        unnamed = conn.execute(
            "SELECT 1 FROM indexes WHERE json_array_length(fields) = 1"
            " AND (scalar_physical_name IS NULL OR scalar_physical_name = '') LIMIT 1"
        ).fetchone()
        keywords = conn.execute(
            "SELECT value FROM crm_engine_state WHERE key = ?", (KEYWORDS_MARKER,)
        ).fetchone()
        self._keywords_ready = True
        if marker is not None and marker[0] == MONGOECO_VERSION and unnamed is None:
            if keywords is None or keywords[0] != KEYWORDS_VERSION:
                self._build_keyword_rows(conn)
            return  # every write since the rebuild kept the rows complete (same engine)
        super()._backfill_scalar_indexes_sync(conn)
        self._build_keyword_rows(conn)
        conn.execute(
            "INSERT OR REPLACE INTO crm_engine_state VALUES (?, ?)", (ROWS_MARKER, MONGOECO_VERSION)
        )

    def _build_keyword_rows(self, conn: sqlite3.Connection) -> None:
        """The keyword table filled from the documents, and the multikey rows that an earlier
        engine wrote for a keyword index dropped (§33)."""
        if conn.execute("SELECT 1 FROM documents LIMIT 1").fetchone():
            log.info("building the search keys' table from the stored documents (once per file)")
        conn.execute("DELETE FROM crm_keywords")
        conn.execute("DELETE FROM crm_keywords_pending")
        conn.execute(_keyword_row("crm_keywords", "documents", " FROM documents"))
        for db_name, coll_name in conn.execute(
            "SELECT DISTINCT db_name, coll_name FROM indexes"
        ).fetchall():
            collection_id = self._lookup_collection_id(conn, db_name, coll_name)
            for index in self._load_indexes(db_name, coll_name):
                if collection_id is not None and self._keyword_index(index):
                    conn.execute(
                        "DELETE FROM multikey_entries WHERE collection_id = ? AND index_name = ?",
                        (collection_id, index["name"]),
                    )
        conn.execute(
            "INSERT OR REPLACE INTO crm_engine_state VALUES (?, ?)",
            (KEYWORDS_MARKER, KEYWORDS_VERSION),
        )

    # --- counts by one field's values: count its index rows ------------------------------

    def _count_matching_documents_sync(
        self, db_name: str, coll_name: str, semantics: Any, context: Any
    ) -> int:
        with self._lock:
            conn = self._require_connection(context)
            with self._bind_connection(conn), sqlite_read_scope(conn):
                counted = self._counted_from_rows(conn, db_name, coll_name, semantics)
        if counted is None:
            stock: int = super()._count_matching_documents_sync(
                db_name, coll_name, semantics, context
            )
            return stock
        count = max(0, counted - (semantics.skip or 0))
        return count if semantics.limit is None else min(count, int(semantics.limit))

    def _kept_count(
        self, db_name: str, coll_name: str, conn: sqlite3.Connection | None = None
    ) -> int:
        """The collection's documents, from the count its write hooks keep (§27)."""
        row = (
            (conn or self._require_connection())
            .execute(
                "SELECT documents FROM crm_document_counts WHERE db_name = ? AND coll_name = ?",
                (db_name, coll_name),
            )
            .fetchone()
        )
        return 0 if row is None else int(row[0])

    def _counted_from_rows(
        self, conn: sqlite3.Connection, db_name: str, coll_name: str, semantics: Any
    ) -> int | None:
        """The documents a count matches, read from the kept count of the collection (no
        condition) or from one field's index rows (an equality or `$in` of plain values); None
        for any other count, and in a collection whose documents expire (a read purges the
        expired ones first; rows would still count them)."""
        plan = semantics.query_plan
        if semantics.hint is not None:
            return None
        if isinstance(plan, MatchAll):
            if self._expires(db_name, coll_name):
                return None
            return self._kept_count(db_name, coll_name, conn)
        if semantics.collation is not None or self._dialect_requires_python_fallback(
            semantics.dialect
        ):
            return None
        found = self._value_rows(db_name, coll_name, plan)
        if found is None:
            return None
        rows, params, keys = found
        matches = " OR ".join("(type_score = ? AND element_key = ?)" for _ in keys)
        (matched,) = conn.execute(
            f"SELECT COUNT(*) {rows} AND ({matches})",
            [*params, *(part for key in keys for part in key)],
        ).fetchone()
        return int(matched)

    def _scalar_signature(self, value: object) -> tuple[str, str] | None:
        """The index row key of a plain value (None: a value rows cannot answer for)."""
        if isinstance(value, dict | list) or type(value).__name__ == "Regex":
            return None
        try:
            return self._multikey_value_signature(value)
        except NotImplementedError:
            return None

    # --- sorted pages: walk one field's index rows in order instead of sorting everything ----

    def _flag(self, db_name: str, coll_name: str, kind: str, predicate: str) -> bool:
        """A feature flag (this adaptation's, or a stock one found by another predicate), cached
        and kept current like the stock ones."""
        cache = self._collection_features_cache
        key = (db_name, coll_name, kind)
        if key not in cache:
            row = (
                self._require_connection()
                .execute(
                    "SELECT 1 FROM documents WHERE db_name = ? AND coll_name = ?"
                    f" AND ({predicate}) LIMIT 1",
                    (db_name, coll_name),
                )
                .fetchone()
            )
            cache[key] = row is not None
        return bool(cache[key])

    # Flags the writes ask about each unique field (and plans about each filtered field), at
    # the first write after a start: the stock queries test `json_extract(document, path)`,
    # which no index holds, so each reads every document of the collection (~0.3 s at 50,000
    # leads). These test the expressions of the field's index on `documents`, where it has one
    # (any ordered index that is not multikey-capable: see SharedIndexConnection), so SQLite
    # seeks them; with no such index they read every document, as the stock queries do.

    def _field_is_top_level_array_in_collection(
        self, db_name: str, coll_name: str, field: str
    ) -> bool:
        """The stock flag. An array at `field` is the index's value `json_extract(document,
        path)`: its JSON text, which starts with "[", under an empty type tag. Only the rows in
        that range are read, and tested with the stock predicate."""
        tagged, value = index_expressions_sql(field)
        return self._flag(
            db_name,
            coll_name,
            f"top_level_array:{field}",
            f"{tagged} = '' AND {value} >= '[' AND {value} < '\\'"
            f" AND {PRESENCE['top_level_array'].format(path=_literal(field))}",
        )

    def _field_contains_tagged_value_type_in_collection(
        self, db_name: str, coll_name: str, field: str, value_type: str
    ) -> bool:
        """The stock flag, by the index's type-tag expression. The three decimal types, which
        every plan asks about together for each of its fields, are looked for in one query
        (and one more per type found)."""
        cache = self._collection_features_cache
        key = (db_name, coll_name, f"tagged_type:{field}:{value_type}")
        remaining = [
            tag
            for tag in (DECIMAL_TAGS if value_type in DECIMAL_TAGS else (value_type,))
            if (db_name, coll_name, f"tagged_type:{field}:{tag}") not in cache
        ]
        tagged, _ = index_expressions_sql(field)
        while value_type in remaining:
            marks = ", ".join("?" for _ in remaining)
            row = (
                self._require_connection()
                .execute(
                    f"SELECT {tagged} FROM documents WHERE db_name = ? AND coll_name = ?"
                    f" AND {tagged} IN ({marks}) LIMIT 1",
                    (db_name, coll_name, *remaining),
                )
                .fetchone()
            )
            for tag in remaining if row is None else [row[0]]:
                cache[(db_name, coll_name, f"tagged_type:{field}:{tag}")] = row is not None
            remaining = [] if row is None else [tag for tag in remaining if tag != row[0]]
        return bool(cache[key])

    def _expires(self, db_name: str, coll_name: str) -> bool:
        """Whether the collection has a TTL index (a read purges its expired documents)."""
        return any(
            index.get("expire_after_seconds") is not None
            for index in self._load_indexes(db_name, coll_name)
        )

    def _field_index(self, db_name: str, coll_name: str, field: str) -> dict[str, Any] | None:
        """A single-field index holding exactly one row, in MongoDB's order, per document."""
        if field == "_id" or "." in field:
            return None
        if self._expires(db_name, coll_name):
            return None  # TTL: the stock path purges expired documents first
        indexes = self._load_indexes(db_name, coll_name)
        index = next(
            (
                index
                for index in indexes
                if index["fields"] == [field]
                and index.get("scalar_physical_name")
                and not index.get("partial_filter_expression")
                and index.get("collation") is None
                and not index.get("hidden")
            ),
            None,
        )
        # Sparse is fine too: the flag says every document has a sortable value there.
        if index is None or self._flag(
            db_name,
            coll_name,
            f"crm_unsortable:{field}",
            UNSORTABLE.format(path=_literal(field), tag=_tag_literal(field)),
        ):
            return None
        found: dict[str, Any] = index
        return found

    def _sort_index(
        self, db_name: str, coll_name: str, plan: Any, sort: Any, hint: Any
    ) -> dict[str, Any] | None:
        """The single-field index whose rows, in (type, value, storage key) order, are the
        documents in `sort` order, when there is one: `sort` is one field, optionally then
        `_id` in the same direction; every document has one sortable row in that index."""
        if hint is not None or not sort or len(sort) > 2:
            return None
        field, direction = sort[0]
        if direction not in (1, -1) or field == "_id" or "." in field:
            return None
        if len(sort) == 2 and tuple(sort[1]) != ("_id", direction):
            return None
        index = self._field_index(db_name, coll_name, field)
        if index is None:
            return None
        if len(sort) == 2 and self._flag(
            db_name, coll_name, "crm_id_not_object_id", self._id_not_object_id
        ):
            return None
        if self._plan_has_array_traversing_paths(db_name, coll_name, plan):
            return None
        if self._few_matches(db_name, coll_name, plan):
            return None  # fetching the few matches by key and sorting them reads less
        found: dict[str, Any] = index
        return found

    def _few_matches(self, db_name: str, coll_name: str, plan: Any) -> bool:
        narrowed = self._narrowing(db_name, coll_name, plan)
        if narrowed is None:
            return False
        where_sql, params = narrowed
        return (
            self._counted(
                "SELECT COUNT(*) FROM (SELECT 1 FROM documents WHERE db_name = ?"
                f" AND coll_name = ? AND ({where_sql}) LIMIT {FEW + 1})",
                [db_name, coll_name, *params],
            )
            <= FEW
        )

    def _counted(self, sql: str, params: list[object]) -> int:
        """A count that only chooses a plan: run once per statement between writes (a write
        clears them, see _on_write; a count made stale by a delete costs speed, not results)."""
        key = (sql, *params)
        count = self._plan_counts.get(key)
        if count is None:
            if len(self._plan_counts) >= PLAN_COUNTS:
                self._plan_counts.clear()
            (found,) = self._require_connection().execute(sql, params).fetchone()
            count = self._plan_counts[key] = int(found)
        return count

    def _sort_requires_python(self, db_name: str, coll_name: str, plan: Any, sort: Any) -> bool:
        if self._sort_index(db_name, coll_name, plan, sort, None) is not None:
            return False
        narrowed = self._narrowing(db_name, coll_name, plan)
        if narrowed is None or not sort:
            result: bool = super()._sort_requires_python(db_name, coll_name, plan, sort)
            return result
        if self._few_matches(db_name, coll_name, plan):
            return True  # sorting the few matches in Python costs less than checking them
        # The stock checks, the per-row one on the rows one indexed condition admits (a
        # superset of the matches: a "yes" only costs the Python sort).
        if self._plan_has_array_traversing_paths(db_name, coll_name, plan):
            return True
        where_sql, params = narrowed
        for field, _direction in sort:
            if (
                self._field_traverses_array_in_collection(db_name, coll_name, field)
                or self._field_contains_tagged_bytes_in_collection(db_name, coll_name, field)
                or self._field_contains_tagged_undefined_in_collection(db_name, coll_name, field)
            ):
                return True
            path = _literal(field)
            row = (
                self._require_connection()
                .execute(
                    f"SELECT 1 FROM documents WHERE db_name = ? AND coll_name = ? AND ({where_sql})"
                    f" AND (json_type(document, {path}) = 'array' OR (json_type(document, {path})"
                    f" = 'object' AND {type_expression_sql(field)} IN"
                    " ('', 'int64', 'decimal', 'decimal128', 'decimal128_public'))) LIMIT 1",
                    (db_name, coll_name, *params),
                )
                .fetchone()
            )
            if row is not None:
                return True
        return False

    # --- equality and `$in` on a field with an index as above: its rows, by key -----------

    def _translate_query_plan_with_multikey(
        self, db_name: str, coll_name: str, plan: Any
    ) -> tuple[str, list[object]]:
        fragment = (
            self._id_lookup(db_name, coll_name, plan)
            or self._index_lookup(db_name, coll_name, plan)
            or self._element_lookup(db_name, coll_name, plan)
            or _string_type_through_array(plan)
        )
        if fragment is None:
            stock: tuple[str, list[object]] = super()._translate_query_plan_with_multikey(
                db_name, coll_name, plan
            )
            return stock
        return fragment

    def _plan_has_array_traversing_paths(self, db_name: str, coll_name: str, plan: Any) -> bool:
        """The stock check, less the `$type` conditions _string_type_through_array translates
        (their path may go through an array: the translation follows it as MongoDB does)."""
        traverses: bool = super()._plan_has_array_traversing_paths(
            db_name, coll_name, _without_string_types(plan)
        )
        return traverses

    def _id_lookup(
        self, db_name: str, coll_name: str, plan: Any
    ) -> tuple[str, list[object]] | None:
        """`{_id: v}` / `{_id: {$in: […]}}` with keyed values (see _keyed_id) as their storage
        keys (stock: `json_extract` of every row's `_id` for `$in`, and for `_id` beside other
        conditions)."""
        values = _compared_values(plan)
        if (
            values is None
            or plan.field != "_id"
            or not values
            or not all(self._keyed_id(db_name, coll_name, value) for value in values)
        ):
            return None
        marks = ", ".join("?" for _ in values)
        return f"documents.storage_key IN ({marks})", [self._storage_key(v) for v in values]

    def _value_rows(
        self, db_name: str, coll_name: str, plan: Any
    ) -> tuple[str, list[object], list[tuple[int, str]]] | None:
        """`{field: v}` / `{field: {$in: […]}}` of plain values on a field whose index holds one
        row per document (see _field_index): the `FROM … WHERE` of that index's rows and its
        parameters, and each value's (type score, element key)."""
        values = _compared_values(plan)
        if not values:
            return None
        signatures = [self._scalar_signature(value) for value in values]
        if None in signatures:
            return None
        index = self._field_index(db_name, coll_name, plan.field)
        collection_id = self._lookup_collection_id(self._require_connection(), db_name, coll_name)
        if index is None or collection_id is None:
            return None
        rows = (
            f"FROM scalar_index_entries INDEXED BY"
            f" {self._quote_identifier(str(index['scalar_physical_name']))}"
            " WHERE collection_id = ? AND index_name = ?"
        )
        keys = [
            (self._multikey_type_score(element_type), element_key)
            for element_type, element_key in (s for s in signatures if s is not None)
        ]
        return rows, [collection_id, index["name"]], keys

    def _index_lookup(
        self, db_name: str, coll_name: str, plan: Any, *, probe: str | None = None
    ) -> tuple[str, list[object]] | None:
        """`{field: v}` / `{field: {$in: […]}}` (see _value_rows) as the storage keys of the
        matching index rows; with `probe` (a storage key column), as one look-up of the index
        per row (the rows an index walk meets, or an element look-up's candidates)."""
        found = self._value_rows(db_name, coll_name, plan)
        if found is None:
            return None
        rows, params, keys = found
        if probe is not None:
            # One exact seek per value (an OR of values inside one probe would read the
            # whole index range per row).
            probes = " OR ".join(
                f"EXISTS (SELECT 1 {rows} AND type_score = ? AND element_key = ?"
                f" AND storage_key = {probe})"
                for _ in keys
            )
            return probes, [part for key in keys for part in (*params, *key)]
        matches = " OR ".join("(type_score = ? AND element_key = ?)" for _ in keys)
        return (
            f"documents.storage_key IN (SELECT storage_key {rows} AND ({matches}))",
            [*params, *(part for key in keys for part in key)],
        )

    def _walk_filter(
        self, db_name: str, coll_name: str, plan: Any, wanted: int | None
    ) -> tuple[str, list[object]]:
        """`plan` as the condition on each row an index walk meets (a sorted page of `wanted`
        documents): an indexed equality or `$in` of its top-level `$and` probes its index per
        row, where the `IN` list of _index_lookup would be built whole first (50,000 keys for
        `convertedToDeal: false` at 50,000 leads, to show 50). Element conditions are walked
        too when their matches are common (_walk_meets_elements; each as _walk_element
        decides), else they keep their joint lookup (§17)."""
        parts = [
            (part, self._element_groups(db_name, coll_name, part)) for part in _conjuncts(plan)
        ]
        groups = [group for _, found in parts if found is not None for group in found]
        collection_id = self._lookup_collection_id(self._require_connection(), db_name, coll_name)
        size = self._kept_count(db_name, coll_name) if groups else 0
        bound = math.isqrt(size * wanted) if size and wanted is not None else 0
        if groups and (
            collection_id is None
            or not self._walk_meets_elements(collection_id, groups, size, bound)
        ):
            return self._translate_query_plan_with_multikey(db_name, coll_name, plan)
        fragments: list[str] = []
        params: list[object] = []
        for part, found in parts:
            if found is not None and collection_id is not None:
                for index, group in found:
                    sql, part_params = self._walk_element(
                        collection_id, index, group, WALK_COUNT * bound
                    )
                    fragments.append(f"({sql})")
                    params += part_params
                continue
            sql, part_params = self._index_lookup(
                db_name, coll_name, part, probe="documents.storage_key"
            ) or self._translate_query_plan_with_multikey(db_name, coll_name, part)
            fragments.append(f"({sql})")
            params += part_params
        return " AND ".join(fragments) or "1 = 1", params

    def _walk_meets_elements(
        self, collection_id: int, groups: list[Element], size: int, bound: int
    ) -> bool:
        """Whether a sorted walk that meets the element `groups` row by row reads fewer rows
        than their joint lookup: with `matches` spread over `size` documents it meets `wanted`
        of them in about size * wanted / matches rows, where the lookup reads at least
        `matches` rows, so it walks when matches > sqrt(size * wanted) (`bound`; 0: no walk).
        Matches are estimated as if the groups were independent (size * the product of rows /
        size), each group's rows counted up to WALK_COUNT times that bound: the estimate errs
        low, toward the lookup, the plan of every rarer match."""
        if not bound:
            return False
        estimate = float(size)
        for index, group in groups:
            estimate *= self._rows_up_to(collection_id, index, group, WALK_COUNT * bound) / size
        return estimate >= bound

    def _walk_element(
        self,
        collection_id: int,
        index: dict[str, Any],
        groups: tuple[tuple[str, ...], ...],
        cap: int,
    ) -> tuple[str, list[object]]:
        """An element condition on each row a sorted walk meets. A keyword match counted below
        `cap` documents (as _walk_meets_elements counts it) is read once: SQLite keeps its
        rowids for the statement and each row is looked up among them (~1 µs, where reading
        the row's terms costs ~15). Past that, and on another index, each row is probed
        (_element_probe): reading every match once would cost more than the few rows the
        walk meets (at 50,000 leads, 45,000 matches of `w:example` take ~5 ms to read, the
        57 rows probed well under one)."""
        if self._keyword_index(index) and self._rows_up_to(collection_id, index, groups, cap) < cap:
            selects, params = self._element_rows(collection_id, index, groups, scoped=False)
            return f"documents.rowid IN ({' UNION ALL '.join(selects)})", params
        return self._element_probe(collection_id, index, groups, "documents.storage_key")

    def _element_groups(self, db_name: str, coll_name: str, plan: Any) -> list[Element] | None:
        """`{field: s}`, `{field: {$in: [s…]}}`, `{field: {$all: [s…]}}` with strings `s` on an
        indexed field that holds arrays (the search keys): the index, and the groups of strings
        a match holds one of each of (one group for `$in`, one per string for `$all`): one
        element condition per group, or one for them all on a keyword index (§33)."""
        if isinstance(plan, AllCondition):
            groups: list[tuple[Any, ...]] = [(value,) for value in plan.values]
        elif (compared := _compared_values(plan)) is not None:
            groups = [compared]
        else:
            return None
        values = [value for group in groups for value in group]
        if not values or not all(type(value) is str for value in values) or "." in plan.field:
            return None
        index = next(
            (
                index
                for index in self._load_indexes(db_name, coll_name)
                if index["fields"] == [plan.field]
                and index.get("multikey")
                and index.get("scalar_physical_name")
                and not index.get("partial_filter_expression")
                and index.get("collation") is None
                and not index.get("hidden")
                and index.get("expire_after_seconds") is None
            ),
            None,
        )
        if index is None:
            return None
        if self._keyword_index(index):
            if any(len(value) > KEYWORD_MAX for value in values):
                return None
            return [(index, tuple(groups))]
        return [(index, (group,)) for group in groups]

    def _element_rows(
        self,
        collection_id: int,
        index: dict[str, Any],
        groups: tuple[tuple[str, ...], ...],
        where: str = "",
        *,
        scoped: bool = True,
    ) -> tuple[list[str], list[object]]:
        """The storage keys of the documents holding one of each group in the index, as
        SELECTs: an array's strings (its multikey rows) and the value itself (its scalar rows),
        or the keyword table's matches (_keyword_rows), which hold both."""
        if self._keyword_index(index):
            return self._keyword_rows(collection_id, groups, where, scoped=scoped)
        group = groups[0]
        selects = [
            f"SELECT storage_key FROM {table} INDEXED BY {self._quote_identifier(str(name))}"
            " WHERE collection_id = ? AND index_name = ? AND type_score = ?"
            f" AND element_key IN ({', '.join('?' for _ in group)}){where}"
            for table, name in (
                ("multikey_entries", index["multikey_physical_name"]),
                ("scalar_index_entries", index["scalar_physical_name"]),
            )
        ]
        params: list[object] = [
            collection_id,
            index["name"],
            self._multikey_type_score("string"),
            *group,
        ]
        return selects, params * 2

    @staticmethod
    def _keyword_rows(
        collection_id: int, groups: tuple[tuple[str, ...], ...], where: str, *, scoped: bool
    ) -> tuple[list[str], list[object]]:
        """_element_rows of a keyword index: one MATCH of the keyword table (each group's
        strings ORed, the groups ANDed) and the rows still waiting for their write's commit
        (one connection's, mid-write), each joined to its document; a probe (`where`) reads
        the one document's terms instead. Unscoped, the matched rowids of every collection
        (for an estimate)."""
        match = " AND ".join(
            "(" + " OR ".join(f'"{keyword_term(value)}"' for value in group) + ")"
            for group in groups
        )
        terms = [f" {keyword_term(value)} " for group in groups for value in group]

        def holds(column: str) -> str:
            """The same condition on a row's terms read in place (`column`)."""
            return " AND ".join(
                "(" + " OR ".join(f"instr(' ' || {column} || ' ', ?)" for _ in group) + ")"
                for group in groups
            )

        waiting = ("crm_keywords_pending AS waiting", "waiting.rowid", holds("waiting.keys"), terms)
        if not scoped:
            return [
                "SELECT rowid FROM crm_keywords WHERE crm_keywords MATCH ?",
                f"SELECT rowid FROM crm_keywords_pending AS waiting WHERE {waiting[2]}",
            ], [match, *terms]
        if where:
            # A probe reads the one document's row: its terms (FTS5's own content table)
            # searched in place. A MATCH would open every segment of the index for each row.
            sources = [("crm_keywords_content AS kept", "kept.id", holds("kept.c0"), terms)]
        else:
            sources = [("crm_keywords", "crm_keywords.rowid", "crm_keywords MATCH ?", [match])]
        sources.append(waiting)
        selects: list[str] = []
        params: list[object] = []
        for table, rowid, condition, condition_params in sources:
            # CROSS JOIN fixes the order: the one document first (by its key) for a probe, the
            # matches first for a lookup (SQLite's own choice scans the collection).
            tables = (
                f"documents AS holder CROSS JOIN {table}"
                if where
                else f"{table} CROSS JOIN documents AS holder"
            )
            selects.append(
                f"SELECT holder.storage_key AS storage_key FROM {tables} WHERE {condition}"
                f" AND {rowid} = holder.rowid"
                " AND holder.db_name = (SELECT db_name FROM collections WHERE collection_id = ?)"
                " AND holder.coll_name = (SELECT coll_name FROM collections"
                f" WHERE collection_id = ?){where}"
            )
            params += [*condition_params, collection_id, collection_id]
        return selects, params

    def _element_probe(
        self,
        collection_id: int,
        index: dict[str, Any],
        groups: tuple[tuple[str, ...], ...],
        key: str,
    ) -> tuple[str, list[object]]:
        """Whether the document whose storage key is `key` holds one of each group: one seek
        of the index per row (its rows are ordered by value, then storage key; a keyword
        match by the document's rowid)."""
        selects, params = self._element_rows(
            collection_id, index, groups, where=f" AND storage_key = {key}"
        )
        return " OR ".join(f"EXISTS ({select})" for select in selects), params

    def _element_lookup(
        self, db_name: str, coll_name: str, plan: Any, *, first: int | None = None
    ) -> tuple[str, list[object]] | None:
        """An element condition (see _element_groups), or an `$and` holding some, as the rows
        of their index instead of stock's per-document EXISTS beside a JSON comparison (a full
        scan). A keyword match drives (it intersects its groups itself, §33), else the group
        with the fewest rows: its documents are fetched by key and each other group is one
        probe of the index per document, so a common word (`w:com`) is never read whole. An
        equality on a field with a single-field index beside them, in any nested `$and`, is
        probed the same way. With `first`, the lookup is the whole plan and stops at its
        first `first` documents (None when the plan has other conditions): in rowid order when
        a keyword match drives, else in storage key order."""
        groups: list[Element] = []
        others: list[Any] = []
        for clause in _conjuncts(plan):
            found = self._element_groups(db_name, coll_name, clause)
            if found is None:
                others.append(clause)
            else:
                groups += found
        collection_id = self._lookup_collection_id(self._require_connection(), db_name, coll_name)
        if not groups or collection_id is None:
            return None
        indexed: list[tuple[str, list[object]]] = []
        rest: list[Any] = []
        for clause in others:
            probe = self._index_lookup(db_name, coll_name, clause, probe="driving.storage_key")
            if probe is None:
                rest.append(clause)
            else:
                indexed.append(probe)
        if first is not None and rest:
            return None
        if len(groups) > 1:
            groups.sort(
                key=lambda group: (
                    not self._keyword_index(group[0]),
                    self._rows_up_to(collection_id, *group),
                )
            )
        (driving, *probed) = groups
        selects, params = self._element_rows(collection_id, *driving)
        probes: list[str] = []
        for group in probed:
            probe_sql, group_params = self._element_probe(
                collection_id, *group, "driving.storage_key"
            )
            probes.append(probe_sql)
            params += group_params
        for probe_sql, probe_params in indexed:
            probes.append(probe_sql)
            params += probe_params
        # Intersected on index rows alone: a document is read only once it matches them all.
        intersected = "".join(f" AND ({probe})" for probe in probes)
        if first is None:
            driving_keys = f"SELECT driving.storage_key FROM ({' UNION '.join(selects)})"
        else:
            # SQLite builds an IN list whole before the query's own LIMIT: the limit goes
            # inside, and the keys stream in index order (a UNION would sort them all first).
            driving_keys = (
                f"SELECT DISTINCT driving.storage_key FROM ({' UNION ALL '.join(selects)})"
            )
        within = "" if first is None else f" LIMIT {int(first)}"
        fragments = [
            f"documents.storage_key IN ({driving_keys} AS driving WHERE 1{intersected}{within})"
        ]
        for clause in rest:
            sql, clause_params = self._translate_query_plan_with_multikey(
                db_name, coll_name, clause
            )
            fragments.append(sql)
            params += clause_params
        return " AND ".join(f"({fragment})" for fragment in fragments), params

    def _build_select_sql(
        self,
        db_name: str,
        coll_name: str,
        plan: Any,
        *,
        select_clause: str,
        sort: Any = None,
        skip: int = 0,
        limit: int | None = None,
        hint: Any = None,
        dialect: Any = MONGODB_DIALECT_70,
    ) -> tuple[str, list[object]]:
        """An unsorted, limited find that is an element lookup alone (a search's look-up)
        stops probing at its last document, not at the last document of its rarest key. When
        a keyword match drives, its documents come in rowid order, the order its lookup stops
        in, so that pages by skip and limit are slices of one order (for ObjectId `_id`s the
        order of an unlimited find too: their storage keys sort as they were made)."""
        lookup = (
            self._element_lookup(db_name, coll_name, plan, first=skip + limit)
            if sort is None and hint is None and limit is not None
            else None
        )
        if lookup is None:
            options = {"sort": sort, "skip": skip, "limit": limit, "hint": hint}
            stock: tuple[str, list[object]] = super()._build_select_sql(
                db_name, coll_name, plan, select_clause=select_clause, dialect=dialect, **options
            )
            return stock
        where, params = lookup
        keyword = self._keyword_driven(db_name, coll_name, plan)
        order = " ORDER BY documents.rowid" if keyword else ""
        return (
            f"SELECT {select_clause} FROM documents WHERE db_name = ? AND coll_name = ?"
            f" AND ({where}){order} LIMIT ? OFFSET ?",
            [db_name, coll_name, *params, limit, skip],
        )

    def _keyword_driven(self, db_name: str, coll_name: str, plan: Any) -> bool:
        """Whether a keyword match drives the element lookup of `plan` (see _element_lookup)."""
        return any(
            self._keyword_index(index)
            for clause in _conjuncts(plan)
            for index, _ in self._element_groups(db_name, coll_name, clause) or ()
        )

    def _rows_up_to(
        self,
        collection_id: int,
        index: dict[str, Any],
        groups: tuple[tuple[str, ...], ...],
        cap: int = ESTIMATE_ROWS,
    ) -> int:
        """How many index rows hold one of each group, counted up to `cap` (an estimate for
        choosing a plan: a keyword match counts every collection's documents)."""
        selects, params = self._element_rows(collection_id, index, groups, scoped=False)
        return self._counted(
            f"SELECT COUNT(*) FROM ({' UNION ALL '.join(selects)} LIMIT {int(cap)})", params
        )

    def _narrowing(
        self, db_name: str, coll_name: str, plan: Any
    ) -> tuple[str, list[object]] | None:
        """An index lookup that every match of `plan` satisfies: the whole plan when it has an
        element condition (see _element_lookup), else the plan or an `$and` part."""
        whole = self._element_lookup(db_name, coll_name, plan)
        if whole is not None:
            return whole
        parts = plan.clauses if isinstance(plan, AndCondition) else (plan,)
        for part in parts:
            found = self._id_lookup(db_name, coll_name, part) or self._index_lookup(
                db_name, coll_name, part
            )
            if found is not None:
                return found
        return None

    def _build_scalar_sort_select_sql(
        self,
        db_name: str,
        coll_name: str,
        plan: Any,
        *,
        select_clause: str,
        sort: Any,
        skip: int,
        limit: int | None,
        hint: Any,
    ) -> tuple[str, list[object]] | None:
        index = self._sort_index(db_name, coll_name, plan, sort, hint)
        conn = self._require_connection()
        collection_id = self._lookup_collection_id(conn, db_name, coll_name)
        if index is None or collection_id is None or select_clause not in SORT_SELECTS:
            stock: tuple[str, list[object]] | None = super()._build_scalar_sort_select_sql(
                db_name,
                coll_name,
                plan,
                select_clause=select_clause,
                sort=sort,
                skip=skip,
                limit=limit,
                hint=hint,
            )
            return stock
        order = "ASC" if sort[0][1] == 1 else "DESC"
        wanted = None if limit is None else skip + limit
        where_sql, where_params = self._walk_filter(db_name, coll_name, plan, wanted)
        position = self._cursor_position(db_name, coll_name, plan, sort)
        # A page after a keyset cursor starts the walk at the cursor's row, not at the top.
        after = (
            ""
            if position is None
            else " AND (scalar_index_entries.type_score, scalar_index_entries.element_key,"
            f" scalar_index_entries.storage_key) {'>' if order == 'ASC' else '<'} (?, ?, ?)"
        )
        sql = (
            f"SELECT {SORT_SELECTS[select_clause]} FROM scalar_index_entries INDEXED BY"
            f" {self._quote_identifier(str(index['scalar_physical_name']))}"
            " JOIN documents ON documents.db_name = ? AND documents.coll_name = ?"
            " AND documents.storage_key = scalar_index_entries.storage_key"
            " WHERE scalar_index_entries.collection_id = ? AND scalar_index_entries.index_name = ?"
            f"{after} AND ({where_sql}) ORDER BY scalar_index_entries.type_score {order},"
            f" scalar_index_entries.element_key {order}, scalar_index_entries.storage_key {order}"
        )
        params: list[object] = [
            db_name,
            coll_name,
            collection_id,
            index["name"],
            *(position or ()),
            *where_params,
        ]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        elif skip:
            sql += " LIMIT -1"
        if skip:
            sql += " OFFSET ?"
            params.append(skip)
        return sql, params

    # --- reads: decoding and plain projections without per-document overhead ---------------

    def _cursor_position(
        self, db_name: str, coll_name: str, plan: Any, sort: Any
    ) -> tuple[int, str, str] | None:
        """The index position (type score, key, storage key) of a keyset cursor in `plan`,
        when `plan` requires one (an `$and` part) in the shape of a page after `(v, id)` in
        `sort` = [(f, d), (_id, d)]: `{$or: [{f: {$lt: v}}, {f: v, _id: {$lt: id}}]}`
        descending (`$gt` ascending), optionally `{f: null}` too (nulls sort last descending).
        Every match of such an `$or` lies strictly beyond that position in the walk's order:
        `$lt`/`$gt` compare within v's type (one type score; keys ordered as values), the tie
        is broken by the storage key (ordered as the ObjectId `_id`s the sort index requires
        here), and null has the lowest type score. None for any other plan."""
        if len(sort) != 2:
            return None
        field, direction = sort[0]
        beyond = LessThanCondition if direction == -1 else GreaterThanCondition
        for part in _conjuncts(plan):
            if not isinstance(part, OrCondition):
                continue
            ranges = [c for c in part.clauses if isinstance(c, beyond) and c.field == field]
            ties = [c for c in part.clauses if isinstance(c, AndCondition)]
            nulls = [
                c
                for c in part.clauses
                if isinstance(c, EqualsCondition) and c.field == field and c.value is None
            ]
            if len(ranges) != 1 or len(ties) != 1 or len(part.clauses) != 2 + len(nulls):
                continue
            if direction == 1 and nulls:
                continue
            value = ranges[0].value
            tie = ties[0].clauses
            equal = next((c for c in tie if isinstance(c, EqualsCondition)), None)
            last = next((c for c in tie if isinstance(c, beyond)), None)
            if (
                len(tie) != 2
                or equal is None
                or last is None
                or equal.field != field
                or last.field != "_id"
                or type(equal.value) is not type(value)
                or equal.value != value
                or not self._keyed_id(db_name, coll_name, last.value)
            ):
                continue
            signature = self._scalar_signature(value)
            if signature is None:
                continue
            element_type, element_key = signature
            return (
                self._multikey_type_score(element_type),
                element_key,
                self._storage_key(last.value),
            )
        return None

    def _decode_codec_payload(self, payload: Any, *, preserve_bson_wrappers: bool) -> Any:
        """The stock one asks inspect.signature(decode) for every document read."""
        if self._codec is not DocumentCodec:
            decoded: Any = super()._decode_codec_payload(
                payload, preserve_bson_wrappers=preserve_bson_wrappers
            )
            return decoded
        return DocumentCodec.decode(payload, preserve_bson_wrappers=preserve_bson_wrappers)

    def _compile_read_execution_plan(
        self,
        db_name: str,
        coll_name: str,
        semantics: Any,
        *,
        select_clause: str = "document",
        hint: Any = None,
    ) -> Any:
        """A find that leaves out top-level fields (`{activities: 0, searchKeys: 0}`) gets its
        rows without them from SQLite, which removes them in C: Python parses a lead's 900
        bytes instead of its 3,200 (38 -> 9 µs a row)."""
        plan = super()._compile_read_execution_plan(
            db_name, coll_name, semantics, select_clause=select_clause, hint=hint
        )
        removed = _removed_fields(semantics.projection, semantics.dialect)
        if (
            removed is None
            or self._codec is not DocumentCodec
            or not plan.use_sql
            or plan.sql is None
            # Rows filtered in Python need every field; rows sorted in Python, their sort keys.
            or plan.apply_python_residual
            or (plan.apply_python_sort and not removed.isdisjoint(_sorted_fields(semantics.sort)))
        ):
            return plan
        selected = SELECT_DOCUMENT.match(plan.sql)
        if selected is None:
            return plan
        paths = ", ".join(f"'$.{name}'" for name in sorted(removed))
        # SQLite's JSON parser (before 3.42) refuses the NaN and Infinity that Python's json
        # writes: a row holding either word (in a string too) is read whole, and the
        # projection drops the fields in Python. GLOB finds them in a fraction of the time
        # json_valid takes to parse the row once more.
        select = (
            "SELECT CASE WHEN documents.document NOT GLOB '*NaN*'"
            " AND documents.document NOT GLOB '*Infinity*'"
            f" THEN json_remove(documents.document, {paths}) ELSE documents.document END "
        )
        return dataclasses.replace(plan, sql=select + plan.sql[selected.end() :])

    def _project_sql_scan_rows(self, rows: Any, semantics: Any, reader: Any) -> Any:
        """A projection naming top-level fields only: the kept fields are taken from the
        parsed row and only they are decoded (stock: decode the whole document, deep-copy it or
        the kept values, then measure the result's size value by value)."""
        fields = _top_level_projection(semantics.projection, semantics.dialect)
        if fields is None or self._codec is not DocumentCodec:
            return super()._project_sql_scan_rows(rows, semantics, reader)
        inclusion, include_id, names = fields

        def kept(name: str) -> bool:
            return include_id if name == "_id" else (name in names) is inclusion

        public = isinstance(reader, PublicScanReader)

        def project(payload: str) -> Any:
            document = parsed(payload)
            if inclusion and include_id and "_id" in document:
                document = {"_id": document["_id"], **document}  # MongoDB puts `_id` first
            # Document order, as MongoDB's projections.
            projected = {name: value for name, value in document.items() if kept(name)}
            if DocumentCodec._MARKER in payload:
                found = public_values(projected) if public else None
                projected = found or DocumentCodec.decode(projected, preserve_bson_wrappers=True)
            # The whole row's estimate: more than the kept part needs, as the stock reader's.
            return reader.attach_size_hint(projected, _serialized_document_size_estimate(payload))

        return (project(payload) for (payload,) in rows)


def _string_type_through_array(plan: Any) -> tuple[str, list[object]] | None:
    """`{"a.b": {$type: "string"}}` (two named parts) in SQL, with MongoDB's path rule: `a.b`
    a string, or an array holding one; or `a` an array whose object elements have such a `b`
    (no descent into arrays nested in `a`). Stock leaves a path through an array to Python,
    which decodes every document (the start-up migration's check of timeline timestamps)."""
    if not isinstance(plan, TypeCondition) or not plan.values:
        return None
    if not all(spec in (2, "string") for spec in plan.values):
        return None
    parts = plan.field.split(".")
    if len(parts) != 2 or any(not part or part.isdigit() or part.startswith("$") for part in parts):
        return None
    outer, whole = _literal(parts[0]), _literal(plan.field)
    inner = "'" + ("$." + json.dumps(parts[1])).replace("'", "''") + "'"

    def holds_string(value: str, path: str) -> str:
        return (
            f"json_type({value}, {path}) = 'text' OR (json_type({value}, {path}) = 'array'"
            f" AND EXISTS (SELECT 1 FROM json_each({value}, {path}) AS item"
            " WHERE item.type = 'text'))"
        )

    return (
        f"{holds_string('document', whole)} OR (json_type(document, {outer}) = 'array'"
        f" AND EXISTS (SELECT 1 FROM json_each(document, {outer}) AS element"
        f" WHERE element.type = 'object' AND ({holds_string('element.value', inner)})))",
        [],
    )


def _without_string_types(plan: Any) -> Any:
    """`plan` with the conditions _string_type_through_array translates taken out."""
    if _string_type_through_array(plan) is not None:
        return MatchAll()
    if isinstance(plan, AndCondition | OrCondition):
        return type(plan)(clauses=tuple(_without_string_types(clause) for clause in plan.clauses))
    return plan


def _conjuncts(plan: Any) -> list[Any]:
    """The parts a plan requires, nested `$and`s flattened."""
    if isinstance(plan, AndCondition):
        return [part for clause in plan.clauses for part in _conjuncts(clause)]
    return [plan]


def _compared_values(plan: Any) -> tuple[Any, ...] | None:
    """The values `{field: v}` or `{field: {$in: […]}}` compares the field with, else None."""
    if isinstance(plan, EqualsCondition):
        return (plan.value,)
    if isinstance(plan, InCondition):
        return tuple(plan.values)
    return None


def parsed(payload: str) -> Any:
    """A stored document's JSON, parsed by orjson (a lead: 6 µs, Python's json 15). orjson
    reads an integer past 64 bits as a float, but none is stored: BSON's integers are 64-bit
    and the engine refuses others. What orjson refuses goes to Python's json, as stock."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json_loads(payload)


class PublicDocument(dict[str, Any]):
    """A found document already in PyMongo's types (§31): the wire sends it as it is."""


class PublicScanReader(SQLiteScanReader):
    """A streamed find's reader (RowReader): its plain rows are read as PublicDocuments."""


def public_values(document: dict[str, Any]) -> PublicDocument | None:
    """`document` (a parsed row) with its tagged values in PyMongo's types, when they are all
    top-level ObjectIds and datetimes (a lead's `_id` and timestamps): decoded as
    DocumentCodec.decode does, made public as to_pymongo does. None for anything else."""
    public = PublicDocument(document)
    for name, value in document.items():
        if type(value) is dict and DocumentCodec._MARKER in value:
            tag = value[DocumentCodec._MARKER]
            if type(tag) is not dict or len(tag) != 2 or type(tag.get("value")) is not str:
                return None
            if tag.get("type") == "objectid":
                public[name] = ObjectId(tag["value"])
            elif tag.get("type") == "datetime":
                public[name] = datetime.fromisoformat(tag["value"])
            else:
                return None
        elif type(value) in (dict, list) and _holds_tag(value):
            return None
    return public


def _holds_tag(value: Any) -> bool:
    if type(value) is dict:
        return DocumentCodec._MARKER in value or any(_holds_tag(item) for item in value.values())
    return type(value) is list and any(_holds_tag(item) for item in value)


def _sorted_fields(sort: Any) -> set[str]:
    """The top-level fields a sort (`[(path, direction), …]`) reads."""
    return {str(path).split(".", 1)[0] for path, _ in sort or ()}


def _removed_fields(projection: Any, dialect: Any) -> frozenset[str] | None:
    """The fields an exclusion projection of plain top-level names leaves out, else None."""
    fields = _top_level_projection(projection, dialect)
    if fields is None or fields[0] or not all(map(PLAIN_FIELD.match, fields[2])):
        return None
    return fields[2]


def _top_level_projection(
    projection: Any, dialect: Any
) -> tuple[bool, bool, frozenset[str]] | None:
    """(an inclusion, `_id` kept, the other fields named) of `{field: 1, …}` or `{field: 0, …}`
    on top-level fields, else None."""
    if not projection:
        return None
    parsed = _ProjectionExecutor(projection, dialect=dialect)._parsed  # type: ignore[no-untyped-call]
    if parsed is None or parsed.operator_fields:
        return None
    inclusion = bool(parsed.is_inclusion)
    names = [
        name
        for name, value in parsed.regular_fields.items()
        if name != "_id" and bool(value) is inclusion
    ]
    if not names or any("." in name or name.startswith("$") for name in names):
        return None
    return inclusion, bool(parsed.include_id), frozenset(names)


# --- count_documents: the `count` command instead of an aggregation over every document ------


def count_command(body: dict[str, Any]) -> dict[str, Any] | None:
    """The `count` command equal to `body` when it is `count_documents`' aggregation
    (`$match`, optional `$skip`/`$limit`, `$group` counting into `n`), else None."""
    pipeline = body.get("pipeline")
    if (
        next(iter(body), None) != "aggregate"
        or not isinstance(body["aggregate"], str)
        or not isinstance(pipeline, list)
        or not 2 <= len(pipeline) <= 4
        or pipeline[-1] != COUNT_GROUP
        or "explain" in body
        or "let" in body
    ):
        return None
    match, *window = pipeline[:-1]
    if list(match) != ["$match"] or not isinstance(match["$match"], dict):
        return None
    count: dict[str, Any] = {"count": body["aggregate"], "query": match["$match"]}
    for stage, option in zip(
        window, ("$skip", "$limit")[-len(window) :] if window else (), strict=True
    ):
        if list(stage) != [option] or type(stage[option]) is not int:
            return None
        count[option[1:]] = stage[option]
    count.update((key, value) for key, value in body.items() if key not in AGGREGATE_ONLY)
    return count


# --- find cursors read batch by batch (stock: the whole result read, then sliced) -----------


@dataclasses.dataclass(slots=True)
class FindStream:
    """An open `find` cursor: the engine cursor's iterator, reading from its own SQLite read
    transaction, and the next document, read ahead to tell the last batch."""

    namespace: str
    cursor: Any
    iterator: Any
    publish: Callable[[Any], Any]
    head: list[Any]
    now: Any
    session_key: str | None
    principal_key: tuple[tuple[str, str], ...]
    connection_id: int
    read_ns: int
    timer: asyncio.TimerHandle | None = None
    busy: bool = False
    killed: bool = False


class RowReader:
    """A streamed find's documents, read from the engine's own reader (SQLiteScanReader: its
    connection and snapshot, its plan) one worker job per batch (§32). The stock cursor
    reads 64 documents per job, copies each into its read snapshot and makes it public in a
    second walk; here a batch is one job and its rows come public (§31) or internal, made
    public by the caller (`published`)."""

    def __init__(self, cursor: Any, engine: Any) -> None:
        collection = cursor._collection
        operation = cursor._as_operation()
        collection._runtime.ensure_operation_executable(operation)
        # As the cursor's own read source (`engine_scan_with_operation`) compiles it.
        semantics = compile_find_semantics_from_operation(
            operation, dialect=collection._mongodb_dialect
        )
        if operation.context is None:
            raise TypeError("find operation is missing OperationContext")
        self.engine = engine
        self.session = operation.context.session  # the session the stock read source uses
        self.reader = PublicScanReader(
            engine,
            collection._db_name,
            collection._collection_name,
            semantics,
            context=self.session,
        )
        self.started = False
        self.exhausted = False

    async def pull_chunk(self, wanted: int) -> list[Any]:
        """Up to `wanted` more documents; fewer only at the end."""
        semantics = self.reader.semantics
        self.engine._record_runtime_opcounter("getmore" if self.started else "query")
        if not self.started:
            self.started = True
            self.engine._record_operation_metadata(
                self.session,
                operation="scan_collection",
                comment=semantics.comment,
                max_time_ms=semantics.max_time_ms,
                hint=semantics.hint,
            )
        documents: list[Any] = []
        while len(documents) < wanted and not self.exhausted:
            # No byte bound: the stock scan's (1 MiB of estimates at 64 bytes per byte of
            # JSON, ~20 leads) only paces its jobs, while the cursor gathers the whole batch.
            batch = await self.engine._run_blocking(
                self.reader.fetch, wanted - len(documents), sys.maxsize
            )
            documents += batch.documents
            self.exhausted = batch.exhausted
            if batch.error is not None:
                raise batch.error
        return documents

    async def close(self) -> None:
        self.reader.stop_event.set()
        if not self.reader.close_completed.is_set():
            await self.engine._run_blocking(self.reader.close)


def published(documents: list[Any], publish: Callable[[Any], Any]) -> list[Any]:
    """A streamed batch in PyMongo's types: each internal document made public as the stock
    cursor makes it (`publish`), a PublicDocument as it is."""
    return [doc if type(doc) is PublicDocument else publish(doc) for doc in documents]


# Above the stock store's ids (counted from 1), within int32: the wire decodes an int64 id
# into a wrapper its getMore validation refuses. A getMore on an id in this range that is not
# open (closed idle or with its connection) is refused, not answered with an empty batch.
STREAM_IDS = 1 << 30
CURSOR_NOT_FOUND = 43
# An open cursor holds a read transaction (WAL checkpoints cannot pass it): closed after this
# long without a getMore (MongoDB's default cursor timeout, 10 minutes).
STREAM_IDLE_SECONDS = 600.0
# The `find` fields a stream takes; any other (tailable, awaitData, singleBatch, maxTimeMS,
# comment, collation, let, readConcern, noCursorTimeout, transaction fields…) runs stock.
STREAM_FIND_FIELDS = frozenset(
    {"find", "filter", "projection", "sort", "batchSize", "skip", "limit", "hint"}
    | {"lsid", "$db", "$clusterTime", "$readPreference"}
)


def stream_sort(sort: Any) -> bool:
    """No sort, or the shapes the engine reads in order from SQL: `_id`, or one field then
    optionally `_id` in the same direction (section 6); others may be sorted in Python."""
    if sort is None or sort == {}:
        return True
    if not isinstance(sort, dict) or not 1 <= len(sort) <= 2:
        return False
    (field, direction), *rest = sort.items()
    if direction not in (1, -1) or not isinstance(field, str) or "." in field:
        return False
    return not rest or (field != "_id" and rest[0] == ("_id", direction))


def streamable_find(context: WireRequestContext) -> bool:
    """A `find` asking for batches, with plain fields only, outside a transaction."""
    body = context.command_document
    size = body.get("batchSize")
    session = context.session
    return (
        type(size) is int
        and size > 0
        and body.keys() <= STREAM_FIND_FIELDS
        and all(
            type(body.get(field, 0)) is int and body.get(field, 0) >= 0
            for field in ("skip", "limit")
        )
        and stream_sort(body.get("sort"))
        and not (session is not None and session.in_transaction)
    )


async def profile_query(cursor: Any, read_ns: int, error: BaseException | None = None) -> None:
    """The `query` event the stock find's `to_list` records once it has read the result
    (here: when the cursor closes, with the time spent reading)."""
    operation = cursor._as_operation()
    collection = cursor._collection
    await collection._profile_operation(
        op="query",
        command={"find": collection._collection_name, "filter": operation.filter_spec},
        duration_ns=read_ns,
        operation=operation,
        **({} if error is None else {"errmsg": error_message(error)}),  # type: ignore[no-untyped-call]
    )


def stream_ids(body: dict[str, Any]) -> bool:
    """A `killCursors` naming a stream (well-formed: any other goes to the stock store)."""
    cursors = body.get("cursors")
    return (
        isinstance(body.get("killCursors"), str)
        and isinstance(cursors, list)
        and all(type(cursor_id) is int for cursor_id in cursors)
        and any(cursor_id >= STREAM_IDS for cursor_id in cursors)
    )


class CrmWireExecutor(WireCommandExecutor):
    idle_seconds = STREAM_IDLE_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._streams: dict[int, FindStream] = {}
        self._next_stream = STREAM_IDS
        self._closing: set[asyncio.Task[None]] = set()

    async def execute_prepared(self, context: WireRequestContext) -> dict[str, Any]:
        if bulk_insert(context.raw_body):
            return await self._insert_many(context)
        body = context.command_document
        if context.command_name == "find" and streamable_find(context):
            streamed = await self._stream_find(context)
            if streamed is not None:
                return streamed
        elif context.command_name == "getMore" and type(body.get("getMore")) is int:
            if body["getMore"] >= STREAM_IDS:
                return await self._stream_more(context)
        elif context.command_name == "killCursors" and stream_ids(body):
            return await self._kill_streams(context)
        count = count_command(context.raw_body)
        if count is None:
            reply: dict[str, Any] = await super().execute_prepared(context)
            return reply
        result: dict[str, Any] = await self.execute_command(
            count, connection=context.connection, db_name=context.db_name
        )
        if not result.get("ok"):
            return result
        n = result["n"]
        return {
            "cursor": {
                "firstBatch": [{"_id": 1, "n": n}] if n else [],
                "id": Int64(0),
                "ns": f"{context.db_name}.{count['count']}",
            },
            "ok": 1.0,
        }

    async def _stream_find(self, context: WireRequestContext) -> dict[str, Any] | None:
        """The stock find's first batch (compiled, tracked and profiled alike), the rest left
        to the engine cursor; None (the stock path) when a fail point is set or anything fails
        before the reply: the stock find then raises its own error with its own bookkeeping."""
        body = context.command_document
        size: int = body["batchSize"]
        database = self._client.get_database(context.db_name)
        engine = database._admin._engine
        execution = context.execution_context
        if execution is None or getattr(
            getattr(engine, "_command_failpoint_state", None), "_fail_command", None
        ):
            return None
        started = time.perf_counter_ns()
        now = execution.now
        try:
            self._auth.require_authenticated(context.connection, context.command_name)
            with (
                execution_now_scope(now),
                track_active_operation(
                    engine,
                    command_name="find",
                    operation_type="admin",
                    namespace=f"{context.db_name}.$cmd",
                    session=context.session,
                    metadata={"db": context.db_name},
                ),
            ):
                name, operation = database._admin._command_compiler.compile_find_operation(
                    body, collection_field="find"
                )
                operation = operation.with_overrides(let=execution.with_bindings(operation.let))
                collection = database.get_collection(name)
                # The cursor compiles and checks the find; RowReader reads it (§32).
                cursor = collection._build_cursor(operation, session=context.session)
                publish = collection._apply_codec_options_to_document
                iterator = RowReader(cursor, engine)
                try:
                    batch = published(await iterator.pull_chunk(size + 1), publish)
                except BaseException:
                    await iterator.close()
                    raise
        except Exception:  # noqa: BLE001 - see the docstring
            return None
        read_ns = time.perf_counter_ns() - started
        namespace = f"{context.db_name}.{name}"
        cursor_id = 0
        if len(batch) > size:
            cursor_id = self._next_stream
            self._next_stream += 1
            lsid = context.raw_body.get("lsid")
            self._streams[cursor_id] = FindStream(
                namespace,
                cursor,
                iterator,
                publish,
                batch[size:],
                now,
                wire_session_key(lsid) if lsid is not None else None,
                _principal_key(context.connection),
                context.connection.connection_id,
                read_ns,
            )
            self._idle(cursor_id)
            batch = batch[:size]
        else:
            await iterator.close()
            await profile_query(cursor, read_ns)
        _record_command_profile_event(
            engine,
            context.db_name,
            op="command",
            command=dict(body),
            duration_micros=max(1, (time.perf_counter_ns() - started) // 1000),
        )
        return {"cursor": {"id": cursor_id, "ns": namespace, "firstBatch": batch}, "ok": 1.0}

    async def _stream_more(self, context: WireRequestContext) -> dict[str, Any]:
        """The stock getMore's checks and reply, the batch read from the stream."""
        self._auth.require_authenticated(context.connection, context.command_name)
        body = context.command_document
        cursor_id: int = body["getMore"]
        collection = body.get("collection", "")
        if not isinstance(collection, str):
            raise TypeError("collection must be a string")
        size = body.get("batchSize")
        if size is not None and (type(size) is not int or size < 0):
            raise TypeError("batchSize must be a non-negative integer")
        stream = self._streams.get(cursor_id)
        if stream is None or stream.busy:
            raise OperationFailure(f"cursor id {cursor_id} not found", code=CURSOR_NOT_FOUND)
        if stream.namespace != f"{context.db_name}.{collection}":
            raise OperationFailure("getMore cursor namespace does not match the command")
        lsid = context.raw_body.get("lsid")
        if stream.session_key != (wire_session_key(lsid) if lsid is not None else None):
            raise OperationFailure("getMore cursor session does not match the creating command")
        if stream.principal_key != _principal_key(context.connection):
            raise OperationFailure("getMore cursor user does not match the creating command")
        wanted = size or sys.maxsize  # stock: no batch size, all that is left
        if stream.timer is not None:
            stream.timer.cancel()
        stream.busy = True
        engine = self._client.get_database(context.db_name)._admin._engine
        started = time.perf_counter_ns()
        try:
            with (
                execution_now_scope(stream.now),
                track_active_operation(
                    engine,
                    command_name="getMore",
                    operation_type="admin",
                    namespace=f"{context.db_name}.$cmd",
                    session=context.session,
                    cursor_id=cursor_id,
                    metadata={"db": context.db_name},
                ),
            ):
                batch = stream.head + published(
                    await stream.iterator.pull_chunk(wanted + 1 - len(stream.head)),
                    stream.publish,
                )
        except BaseException as error:
            stream.busy = False
            stream.read_ns += time.perf_counter_ns() - started
            await self._close(cursor_id, error)
            raise
        stream.busy = False
        stream.read_ns += time.perf_counter_ns() - started
        if len(batch) > wanted and not stream.killed:
            stream.head = batch[wanted:]
            self._idle(cursor_id)
        else:
            await self._close(cursor_id)
            cursor_id = 0
        return {
            "cursor": {"id": cursor_id, "ns": stream.namespace, "nextBatch": batch[:wanted]},
            "ok": 1.0,
        }

    async def _kill_streams(self, context: WireRequestContext) -> dict[str, Any]:
        """The stock killCursors, streams closed here (same checks), other ids by the store."""
        self._auth.require_authenticated(context.connection, context.command_name)
        body = context.command_document
        namespace = f"{context.db_name}.{body['killCursors']}"
        lsid = context.raw_body.get("lsid")
        session_key = wire_session_key(lsid) if lsid is not None else None
        principal = _principal_key(context.connection)
        others = [cursor_id for cursor_id in body["cursors"] if cursor_id < STREAM_IDS]
        stock = self._cursor_store.kill_cursors(
            {**body, "cursors": others},
            db_name=context.db_name,
            lsid=lsid,
            connection=context.connection,
        )
        killed = set(stock["cursorsKilled"])
        for cursor_id in body["cursors"]:
            stream = self._streams.get(cursor_id)
            if (
                cursor_id >= STREAM_IDS
                and stream is not None
                and stream.namespace == namespace
                and stream.principal_key == principal
                and (session_key is None or stream.session_key == session_key)
            ):
                await self._close(cursor_id)
                killed.add(cursor_id)
        unknown = [cursor_id for cursor_id in body["cursors"] if cursor_id not in killed]
        return {
            "cursorsKilled": [cursor_id for cursor_id in body["cursors"] if cursor_id in killed],
            "cursorsUnknown": unknown,
            "cursorsAlive": [],
            "cursorsNotFound": unknown,
            "ok": 1.0,
        }

    def _idle(self, cursor_id: int) -> None:
        """Close the stream if no getMore comes within `idle_seconds`."""
        self._streams[cursor_id].timer = asyncio.get_running_loop().call_later(
            self.idle_seconds, self._discard, cursor_id
        )

    def _discard(self, cursor_id: int) -> None:
        """Close the stream now (a getMore reading it closes it when its read ends)."""
        stream = self._streams.get(cursor_id)
        if stream is None:
            return
        if stream.busy:
            stream.killed = True
            return
        task = asyncio.get_running_loop().create_task(self._close(cursor_id))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, cursor_id: int, error: BaseException | None = None) -> None:
        stream = self._streams.pop(cursor_id, None)
        if stream is None:
            return
        if stream.timer is not None:
            stream.timer.cancel()
        try:
            await stream.iterator.close()
        finally:
            await profile_query(stream.cursor, stream.read_ns, error)

    def connection_closed(self, connection_id: int) -> None:
        """The streams a dropped connection opened are closed with it."""
        for cursor_id, stream in list(self._streams.items()):
            if stream.connection_id == connection_id:
                self._discard(cursor_id)

    async def close_streams(self) -> None:
        for cursor_id in list(self._streams):
            self._discard(cursor_id)
        await asyncio.gather(*self._closing)

    async def _insert_many(self, context: WireRequestContext) -> dict[str, Any]:
        """The engine's batch insert (one transaction per batch, ordered and unordered errors
        as MongoDB reports them) where the stock `insert` command inserts one by one."""
        body = context.command_document
        collection = self._client[context.db_name][body["insert"]]
        documents = internal_documents(body["documents"])
        try:
            result = await collection.insert_many(
                documents,
                ordered=body.get("ordered", True) is not False,
                bypass_document_validation=bool(body.get("bypassDocumentValidation", False)),
                session=context.session,
            )
        except BulkWriteError as error:
            details: dict[str, Any] = error.details  # type: ignore[attr-defined]
            errors = [
                {key: value for key, value in entry.items() if key != "op"}
                for entry in details.get("writeErrors", [])
            ]
            return {"n": details.get("nInserted", 0), "writeErrors": errors, "ok": 1.0}
        finally:
            ENCODED.forget(documents)
        return {"n": len(result.inserted_ids), "ok": 1.0}


def internal_documents(documents: list[Any]) -> list[Any]:
    """The wire's documents as `insert_many` turns them into the engine's (an `_id` where
    missing, then `to_internal`), done here with `internal_document`; `insert_many` takes
    internal documents as they are (its copies of them are the same objects). Anything
    unusual (a non-dict, an invalid value) is left to `insert_many`, for its own error."""
    if any(type(document) is not dict for document in documents):
        return documents
    internal: list[Any] = []
    try:
        for document in documents:
            if "_id" not in document:
                document["_id"] = DocumentCodec.to_pymongo(EngineObjectId())
            internal.append(internal_document(document))
    except Exception:  # noqa: BLE001 - see the docstring
        ENCODED.forget(internal)
        return documents
    return internal


def bulk_insert(body: dict[str, Any]) -> bool:
    """An acknowledged `insert` of several documents outside a multi-document transaction."""
    concern = body.get("writeConcern")
    return (
        next(iter(body), None) == "insert"
        and isinstance(body.get("documents"), list)
        and len(body["documents"]) > 1
        and "autocommit" not in body
        and not (isinstance(concern, dict) and concern.get("w") == 0)
    )


class ClosingConnectionRegistry(WireConnectionRegistry):
    """mongoeco's registry of connections, telling the executor when one closes."""

    def __init__(self, closed: Callable[[int], None]) -> None:
        super().__init__()
        self._closed = closed

    def close(self, context: WireConnectionContext) -> None:
        super().close(context)
        self._closed(context.connection_id)


class CrmProxyServer(AsyncMongoEcoProxyServer):
    """mongoeco's wire server, answering `count_documents` with the engine's count."""

    def __init__(self, *, engine: SQLiteEngine, host: str, port: int) -> None:
        super().__init__(engine=engine, host=host, port=port)
        wire_protocol.decode_wire_value = decode_wire_value  # type: ignore[attr-defined,assignment]
        wire_protocol.encode_wire_value = encode_wire_value  # type: ignore[attr-defined,assignment]
        # Open cursors a `find` started, oldest first; bounded: a cursor forgotten (closed by
        # its client early) or evicted only takes the stock encoding for its next batches.
        self._find_cursors: OrderedDict[int, None] = OrderedDict()
        self._executor: CrmWireExecutor = CrmWireExecutor(
            self._client,
            self._cursor_store,
            self._session_store,
            surface=self._surface,
            auth=self._auth,
        )
        self._connections = ClosingConnectionRegistry(self._executor.connection_closed)

    async def close(self) -> None:
        await self._executor.close_streams()
        await super().close()

    def _render_wire_result(self, header: Any, request_id: int, state: Any) -> bytes | None:
        """Replies of `find`, and of `getMore` on a cursor a `find` opened, encoded by bson's
        C encoder in one call (stock: a Python copy of the reply through encode_wire_value,
        value by value, then BSON.encode). Other cursors (aggregate) keep the stock path."""
        if (
            state.disposition == "suppress"
            or header.op_code != OP_MSG
            or not self._from_find(state)
        ):
            stock: bytes | None = super()._render_wire_result(header, request_id, state)  # type: ignore[no-untyped-call]
            return stock
        state.phase = "encode"
        payload = b"\x00\x00\x00\x00\x00" + bson.encode(state.result, codec_options=WIRE_CODEC)
        response = struct.pack("<iiii", 16 + len(payload), request_id, header.request_id, OP_MSG)
        state.response = "ready"
        return response + payload

    def _from_find(self, state: Any) -> bool:
        """Whether the reply is a `find` batch (remembering the cursor it opens) or the next
        batch of such a cursor (forgetting it when it is exhausted)."""
        cursor = state.result.get("cursor") if isinstance(state.result, dict) else None
        if not isinstance(cursor, dict) or state.context is None:
            return False
        if state.command_name == "find":
            if cursor.get("id"):
                self._find_cursors[cursor["id"]] = None
                if len(self._find_cursors) > MAX_FIND_CURSORS:
                    self._find_cursors.popitem(last=False)
            return True
        if state.command_name != "getMore":
            return False
        asked = state.context.command_document.get("getMore")
        if asked not in self._find_cursors:
            return False
        if not cursor.get("id"):
            del self._find_cursors[asked]
        return True


# The C encoder writes PyMongo's own types natively, byte for byte as encode_wire_value's output
# would be written; every other value (mongoeco's wrappers) goes through encode_wire_value. The
# one value it would write differently, mongoeco's Binary (a bytes subclass: its subtype would
# be lost), does not reach a find/getMore batch: documents are materialized as PyMongo's types.
WIRE_CODEC: CodecOptions[Any] = CodecOptions(
    uuid_representation=STANDARD,
    type_registry=TypeRegistry(fallback_encoder=stock_encode_wire_value),
)
MAX_FIND_CURSORS = 10_000
