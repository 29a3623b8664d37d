"""Start-up migration: what this server adds to the seed's documents, backfilled in batches.

Idempotent and resumable: every step selects only the documents it has not done yet, so a
run that stops half-way (a crash, a deploy) is finished by the next one. Safe with several
instances starting at once: a lease document in `migrations` lets one instance migrate while
the others wait for it (a holder that dies loses its lease after LEASE_SECONDS, and another
instance takes over). Progress is logged per batch. Runs at start (server lifespan) and as
`crm migrate`.

Steps (each a no-op once done), all of a document's in one pipeline update per batch:
- `leadNumber` on leads (`dealNumber` on deals), from the number in `lead_id` / `deal_id`:
  `LEAD_ID` ordering and the id sequence need it;
- timestamps stored as ISO strings (the seed wrote `"2025-01-20T10:00:00"`, UTC without an
  offset) become BSON datetimes, so date filters and orders compare like with like;
- the `lead` / `deal` counters move past the highest number in use (`$max`), so the next
  lead after LEAD-012 is LEAD-013 at the first try;
- normalized keys (services/normalize.py) on leads stored without them, or under older key
  rules (`keysVersion`): search, duplicates and import matching find them like any other.
"""

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from models.base import CrmDocument, stored_fields, utc_now
from models.call import CallDocument
from models.counter import Counter
from models.deal import DealDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from services import normalize

log = logging.getLogger("crm.migration")

BATCH_SIZE = 500
LEASE_SECONDS = 60
WAIT_SECONDS = 0.5
LOCK_ID = "seed-compatibility"
LOCKS = "migrations"

# Collection → its timestamp fields (stored names) that the seed may have stored as strings.
TIMESTAMPS: dict[type[CrmDocument], tuple[str, ...]] = {
    LeadDocument: ("createdAt", "updatedAt"),
    EmailDocument: ("timestamp",),
    CallDocument: ("timestamp",),
    TaskDocument: ("createdAt", "updatedAt", "dueDate"),
    NoteDocument: ("createdAt",),
    DealDocument: ("createdAt",),
}
# The collections the migration visits, in this order (leads first: ids and ordering).
MIGRATED: tuple[type[CrmDocument], ...] = (
    LeadDocument,
    DealDocument,
    EmailDocument,
    CallDocument,
    TaskDocument,
    NoteDocument,
)
# Human ids: the counter, the stored id field, the number field this server adds.
NUMBERED: tuple[tuple[type[CrmDocument], str, str, str], ...] = (
    (LeadDocument, "lead", "lead_id", "leadNumber"),
    (DealDocument, "deal", "deal_id", "dealNumber"),
)


@dataclass
class Report:
    """What one run did, step by step (documents changed)."""

    changed: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    waited: bool = False

    @property
    def total(self) -> int:
        return sum(self.changed.values())


class Lease:
    """The right to migrate, held in one document, renewed after every batch."""

    def __init__(self, locks: AsyncCollection[dict[str, Any]], owner: str) -> None:
        self.locks = locks
        self.owner = owner

    async def take(self) -> bool:
        now = utc_now()
        try:
            await self.locks.find_one_and_update(
                {"_id": LOCK_ID, "$or": [{"owner": None}, {"leaseUntil": {"$lt": now}}]},
                {
                    "$set": {
                        "owner": self.owner,
                        "leaseUntil": now + timedelta(seconds=LEASE_SECONDS),
                    }
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # held by another instance, and not expired
        return True

    async def renew(self) -> None:
        until = utc_now() + timedelta(seconds=LEASE_SECONDS)
        await self.locks.update_one(
            {"_id": LOCK_ID, "owner": self.owner}, {"$set": {"leaseUntil": until}}
        )

    async def release(self, report: Report) -> None:
        await self.locks.update_one(
            {"_id": LOCK_ID, "owner": self.owner},
            {
                "$set": {
                    "owner": None,
                    "leaseUntil": None,
                    "lastRunAt": utc_now(),
                    "lastRunBy": self.owner,
                    "lastRunChanged": report.total,
                }
            },
        )


@dataclass(frozen=True)
class Work:
    """What a collection needs: the documents to visit (`query`), a cheaper superset that is
    empty when `query` is (`probe`), and the pipeline update doing every step on each."""

    query: dict[str, Any]
    probe: dict[str, Any]
    update: list[dict[str, Any]]


async def _batches(
    collection: AsyncCollection[dict[str, Any]],
    work: Work,
    lease: Lease,
    step: str,
    report: Report,
) -> None:
    """Apply the pipeline `work.update` to the documents matching `work.query`, a batch of
    `_id`s at a time (one update command per batch: the database computes each new value
    itself, so a concurrent write is never overwritten with a stale one)."""
    query, update = work.query, work.update
    if await collection.find_one(work.probe, {"_id": 1}) is None:
        return  # nothing to do: the usual start, answered without the query's slower parts
    total = await collection.count_documents(dict(query))
    if total == 0:
        return
    log.info("migration %s: %d documents to do", step, total)
    done, last_id = 0, None
    while True:
        batch_query = dict(query) if last_id is None else {**query, "_id": {"$gt": last_id}}
        ids = [
            raw["_id"]
            for raw in await collection.find(batch_query, {"_id": 1})
            .sort("_id", 1)
            .limit(BATCH_SIZE)
            .to_list()
        ]
        if not ids:
            break
        last_id = ids[-1]
        in_batch = {**query, "_id": {"$gte": ids[0], "$lte": last_id}}
        try:
            done += (await collection.update_many(in_batch, update)).modified_count
        except DuplicateKeyError:
            # Two ids with one number (LEAD-7 and LEAD-007): do the batch one by one.
            for key in ids:
                try:
                    one = await collection.update_one({**query, "_id": key}, update)
                    done += one.modified_count
                except DuplicateKeyError:
                    reason = f"{collection.name} _id={key}: its number is taken by another document"
                    report.skipped.append(reason)
                    log.warning("migration skipped %s", reason)
        await lease.renew()
        log.info("migration %s: %d of %d", step, min(done, total), total)
    report.changed[step] = report.changed.get(step, 0) + done


def id_pattern(id_field: str) -> str:
    """This server's human ids: `LEAD-` and up to 9 digits (numbers stay 32-bit ints, the
    type the id sequence writes, so both compare and sort alike on every engine)."""
    return f"^{id_field.split('_')[0].upper()}-[0-9]{{1,9}}$"


def unnumbered(id_field: str, number_field: str) -> dict[str, Any]:
    """Documents without their number whose id is in this server's format; other ids are left
    alone (`crm doctor` counts them)."""
    return {number_field: {"$exists": False}, id_field: {"$regex": id_pattern(id_field)}}


def _kept_unless(condition: Mapping[str, Any], name: str, value: object) -> dict[str, Any]:
    """`value` where `condition` holds, else the field as it is (absent stays absent)."""
    unchanged = {"$cond": [condition, value, f"${name}"]}
    return {"$cond": [{"$eq": [{"$type": f"${name}"}, "missing"]}, "$$REMOVE", unchanged]}


def _parsed_date(value: str) -> dict[str, Any]:
    """The stored string as a date (no offset: UTC); a string that is no date stays as it is."""
    return {"$dateFromString": {"dateString": value, "onError": value}}


def _is_string(value: str) -> dict[str, Any]:
    return {"$eq": [{"$type": value}, "string"]}


def _date_field(name: str) -> dict[str, Any]:
    return _kept_unless(_is_string(f"${name}"), name, _parsed_date(f"${name}"))


def _number_field(id_field: str, number_field: str) -> dict[str, Any]:
    prefix = id_field.split("_")[0].upper()
    in_format = {
        "$regexMatch": {
            "input": {"$ifNull": [f"${id_field}", ""]},
            "regex": id_pattern(id_field),
        }
    }
    number = {"$toInt": {"$substrCP": [f"${id_field}", len(prefix) + 1, 20]}}
    missing = {"$eq": [{"$type": f"${number_field}"}, "missing"]}
    return {"$cond": [{"$and": [missing, in_format]}, number, f"${number_field}"]}


ACTIVITY_DATES = {
    "$cond": [
        {"$isArray": "$activities"},
        {
            "$map": {
                "input": "$activities",
                "as": "entry",
                "in": {
                    "$cond": [
                        _is_string("$$entry.timestamp"),
                        {
                            "$mergeObjects": [
                                "$$entry",
                                {"timestamp": _parsed_date("$$entry.timestamp")},
                            ]
                        },
                        "$$entry",
                    ]
                },
            }
        },
        "$activities",
    ]
}


def plan(model: type[CrmDocument]) -> Work | None:
    """What `model`'s collection needs; every step on a document in one write (a document is
    rewritten once, not once a step)."""
    needs: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    sets: dict[str, Any] = {}
    for numbered, _sequence, id_field, number_field in NUMBERED:
        if numbered is model:
            needs.append(unnumbered(id_field, number_field))
            # Without the id's format (a regular expression the embedded engine tests in
            # Python, document by document).
            probes.append({number_field: {"$exists": False}})
            sets[number_field] = _number_field(id_field, number_field)
    stored_as_text: list[dict[str, Any]] = []
    for name in TIMESTAMPS.get(model, ()):
        stored_as_text.append({name: {"$type": "string"}})
        sets[name] = _date_field(name)
    if model is LeadDocument:
        stored_as_text.append({"activities.timestamp": {"$type": "string"}})
        sets["activities"] = _kept_unless({"$literal": True}, "activities", ACTIVITY_DATES)
    needs += stored_as_text
    probes += stored_as_text
    if not needs:
        return None
    return Work(query={"$or": needs}, probe={"$or": probes}, update=[{"$set": sets}])


async def _highest_number(model: type[CrmDocument], number_field: str) -> int | None:
    """The highest number in use (a stray non-number some engines sort among them skipped)."""
    cursor = (
        model.get_pymongo_collection()
        .find({number_field: {"$gte": 0}}, {number_field: 1})
        .sort(number_field, -1)
        .limit(20)
    )
    async for raw in cursor:
        value = raw.get(number_field)
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
    return None


async def _counter_past_highest(
    model: type[CrmDocument], sequence: str, number_field: str, report: Report
) -> None:
    highest = await _highest_number(model, number_field)
    if highest is None:
        return
    before = await Counter.get_pymongo_collection().find_one_and_update(
        {"_id": sequence},
        {"$max": {"seq": highest}},
        upsert=True,
        return_document=ReturnDocument.BEFORE,
    )
    if before is None or int(before.get("seq", 0)) < highest:
        log.info("migration: counter %r moved to %d", sequence, highest)
        report.changed[f"counters.{sequence}"] = 1


KEY_SOURCES = {
    name: LeadDocument.model_fields[name].alias or name for name in normalize.KEY_SOURCES
}
# Leads whose keys are missing (None matches a missing field) or from older rules.
STALE_KEYS = {"keysVersion": {"$in": [None, *range(1, normalize.KEYS_VERSION)]}}


async def _backfill_keys(lease: Lease, report: Report) -> None:
    """Compute keys in batches. Each write is pinned to the fields its keys came from, so a
    lead changed meanwhile (whose writer stored fresh keys) is left as that writer left it."""
    collection = LeadDocument.get_pymongo_collection()
    projection = dict.fromkeys(KEY_SOURCES.values(), 1)
    done, seen = 0, set[Any]()
    while True:
        batch = await collection.find(STALE_KEYS, projection).limit(BATCH_SIZE).to_list()
        fresh = [raw for raw in batch if raw["_id"] not in seen]
        if not fresh:
            break  # nothing left, or only leads whose every write missed: counted as skipped
        seen.update(raw["_id"] for raw in fresh)
        writes = []
        for raw in fresh:
            values = {name: raw.get(stored) for name, stored in KEY_SOURCES.items()}
            # `$eq`: a stored value is matched as it is, even one that looks like an operator.
            sources = {stored: {"$eq": raw.get(stored)} for stored in KEY_SOURCES.values()}
            keys = stored_fields(LeadDocument, normalize.lead_keys(values))
            writes.append(UpdateOne({"_id": raw["_id"], **sources}, {"$set": keys}))
        done += (await collection.bulk_write(writes, ordered=False)).modified_count
        await lease.renew()
        log.info("migration lead keys: %d done", done)
    if done:
        report.changed["leads.keys"] = done


async def migrate(*, owner: str | None = None) -> Report:
    """Run every step under the lease (waiting for another instance that holds it)."""
    started = time.monotonic()
    owner = owner or f"{socket.gethostname()}:{os.getpid()}"
    lease = Lease(LeadDocument.get_pymongo_collection().database[LOCKS], owner)
    report = Report()
    while not await lease.take():
        if not report.waited:
            log.info("migration: another instance is migrating; waiting for it")
        report.waited = True
        await asyncio.sleep(WAIT_SECONDS)
    try:
        for model in MIGRATED:
            if (work := plan(model)) is not None:
                collection = model.get_pymongo_collection()
                await _batches(collection, work, lease, collection.name, report)
        for model, sequence, _id_field, number_field in NUMBERED:
            await _counter_past_highest(model, sequence, number_field, report)
        await _backfill_keys(lease, report)
    finally:
        report.seconds = time.monotonic() - started
        await lease.release(report)
    log.info(
        "migration done: %d documents changed in %.2f s%s",
        report.total,
        report.seconds,
        f" ({len(report.skipped)} skipped; see `crm doctor`)" if report.skipped else "",
        extra={"changed": report.changed, "migration_owner": owner},
    )
    return report
