"""Import jobs: CSV and XLSX files in, one report line per bad row, and undo.

How a job runs:

1. `start_import` stores the uploaded file's bytes in MongoDB (`import_files`, in chunks)
   and a QUEUED job document, and wakes this instance's `ImportRunner`.
2. A runner (a background task of every server instance, started by the app's lifespan)
   claims the job with a lease (`owner`, `leaseUntil`, renewed while it runs), copies the
   file to a temporary file, and `import_files.inspect`s all of it: format, encoding, rows,
   limits. A file it refuses fails the job before any lead is written.
3. Rows are read in batches (`batch_size`). Each row is mapped (by header, or `mapping`),
   matched (mode and `matchOn`, keys from services/normalize.py), validated by
   `services.validation.clean` with the lead rules — the code path of createLead and
   updateLead — and then each batch is written at once: new leads with one `insert_many`
   (their ids from one `$inc` of the counter), updates with one `bulk_write`, each lead
   with its timeline entry naming the job and row (services/timeline.py). A row that fails
   is recorded with its errors (row, column, field, code, message, value); the rest go on.
4. After each batch the job's checkpoint (`processedRows`) and counters move in one update.

Resume without doubled rows: a job whose instance died is claimed again when its lease runs
out (at once after a clean shutdown, which releases it) and continues at its checkpoint. The
batch that was being written when it died runs again, and finds its own traces: leads the job
created carry (`importJobId`, `importRow`) under a unique index, and updated and failed rows
are in the `import_rows` ledger under a unique (job, row) index, recorded before the lead
is updated. Those rows are counted as they were, never written twice.

`dryRun` runs all of it but the writes to leads (it keeps what the run would have written
in memory, so later rows match earlier ones as in a real run) and reports the same counts.

`revert_import` deletes the leads the job created and restores the fields it updated to
their old values, read from the job's timeline entries; if any of those leads was changed
since by someone else, nothing is written and the CONFLICT lists them.
"""

import asyncio
import base64
import binascii
import contextlib
import csv
import io
import logging
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from beanie import PydanticObjectId
from beanie.odm.utils.dump import get_dict
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import DeleteOne, ReturnDocument
from pymongo.errors import BulkWriteError, ConnectionFailure, ExecutionTimeout, PyMongoError
from strawberry.utils.str_converters import to_camel_case

from config import ImportLimits
from models.activity import Activity
from models.base import utc_now
from models.database import background_work
from models.fields import LeadFields, LeadStatus, Number, specs, stored_name
from models.import_job import (
    CHUNK_BYTES,
    LEAD_JOB_FIELD,
    LEAD_KEY_FIELD,
    LEAD_ROW_FIELD,
    TERMINAL,
    ColumnMapping,
    ImportDuplicateDocument,
    ImportFileChunk,
    ImportJobDocument,
    ImportMatch,
    ImportMode,
    ImportRowDocument,
    ImportStatus,
    RowError,
)
from models.lead import LeadDocument
from services import changes, normalize, policy, search, sequence, timeline
from services.errors import BadUserInput, Conflict, ErrorCode, FieldError, NotFound, not_found
from services.events import hub
from services.import_files import FileRejected, TableInfo, escape, inspect, read_rows
from services.leads import LEAD_RULES, MAX_WRITE_ATTEMPTS, with_keys
from services.normalize import email_key, phone_key
from services.policy import Action
from services.validation import clean
from services.viewer import Viewer

log = logging.getLogger("crm.imports")

# README "Teams": import and export go with delete (admin and manager).
IMPORT_ACTION = Action.DELETE
DEFAULT_MATCH = (ImportMatch.LEAD_ID, ImportMatch.EMAIL)
# Jobs started here wake a runner at once; the poll only finds jobs whose runner died.
POLL_SECONDS = 15.0
MAX_REPORTED_CONFLICTS = 100
DUPLICATE_KEY = 11000

# Row error codes (besides the API's BAD_USER_INPUT, NOT_FOUND and CONFLICT).
AMBIGUOUS_MATCH = "AMBIGUOUS_MATCH"


# --- the uploaded file ----------------------------------------------------------------------


class Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


async def store_file(job_id: PydanticObjectId, upload: Readable, max_bytes: int) -> int:
    """The upload's bytes into `import_files`; returns its size (BAD_USER_INPUT over the limit)."""
    collection = ImportFileChunk.get_pymongo_collection()
    size = n = 0
    pending: list[dict[str, Any]] = []
    while chunk := await upload.read(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise BadUserInput(
                [FieldError("file", f"is larger than {max_bytes} bytes (CRM_MAX_UPLOAD_BYTES)")]
            )
        pending.append({"jobId": job_id, "n": n, "data": chunk})
        n += 1
        if len(pending) >= 16:
            await collection.insert_many(pending)
            pending = []
    if pending:
        await collection.insert_many(pending)
    return size


async def copy_file(job_id: PydanticObjectId, path: Path) -> None:
    """The stored upload, written to `path` chunk by chunk (memory flat in its size)."""
    # A few chunks per round trip: the driver's default batch would hold up to 16 MB.
    cursor = (
        ImportFileChunk.get_pymongo_collection().find({"jobId": job_id}, batch_size=4).sort("n", 1)
    )
    with path.open("wb") as file:
        async for chunk in cursor:
            file.write(chunk["data"])


@contextlib.asynccontextmanager
async def local_copy(job: ImportJobDocument) -> AsyncIterator[Path]:
    with tempfile.TemporaryDirectory(prefix="crm-import-") as folder:
        path = Path(folder) / "upload"
        assert job.id is not None
        await copy_file(job.id, path)
        yield path


# --- columns --------------------------------------------------------------------------------


def _label_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@cache
def _column_fields() -> dict[str, str]:
    """Normalized column label → lead field: GraphQL names, stored names, catalog aliases."""
    names: dict[str, str] = {}
    for name, spec in specs(LeadFields).items():
        labels = (to_camel_case(name), stored_name(LeadFields, name), name, *spec.import_aliases)
        for label in labels:
            names.setdefault(_label_key(label), name)
    return names


# Columns an export writes that are not lead fields: ignored quietly on import.
EXPORT_ONLY_COLUMNS = frozenset({"id", "fullname", "activitiescount", "dealid"})


def field_of_label(label: str) -> str | None:
    """The lead field (Python name) a column label or mapping target names, if any."""
    return _column_fields().get(_label_key(label))


def importable(name: str) -> bool:
    return name in LEAD_RULES or name == "lead_id"


def check_mapping(mapping: list[ColumnMapping]) -> list[ColumnMapping]:
    """A client's `mapping`, each target a lead field it may import (else BAD_USER_INPUT)."""
    problems: list[FieldError] = []
    checked: list[ColumnMapping] = []
    for number, item in enumerate(mapping):
        name = field_of_label(item.field)
        if name is None or not importable(name):
            problems.append(
                FieldError(f"mapping.{number}.field", f"{item.field!r} is not an importable field")
            )
            continue
        checked.append(ColumnMapping(column=item.column.strip(), field=name))
    if problems:
        raise BadUserInput(problems)
    return checked


@dataclass(frozen=True)
class Column:
    index: int
    label: str
    field: str


def resolve_columns(
    header: list[str], mapping: list[ColumnMapping]
) -> tuple[list[Column], list[str]]:
    """The columns that fill lead fields, and the columns no field takes (reported once)."""
    explicit = {item.column.lower(): item.field for item in mapping}
    present = {label.lower() for label in header}
    missing = [item.column for item in mapping if item.column.lower() not in present]
    if missing:
        raise FileRejected(f"The mapping names columns the file does not have: {missing}")
    columns: list[Column] = []
    unknown: list[str] = []
    used: set[str] = set()
    for index, label in enumerate(header):
        if not label:
            unknown.append(f"(column {index + 1}, no header)")
            continue
        name = explicit.get(label.lower()) or field_of_label(label)
        if name is None:
            if _label_key(label) not in EXPORT_ONLY_COLUMNS:
                unknown.append(label)
            continue
        if not importable(name):
            continue  # read-only (createdAt, updatedAt…): the server writes those
        if name in used:
            unknown.append(f"{label} (another column already fills {to_camel_case(name)})")
            continue
        used.add(name)
        columns.append(Column(index, label, name))
    if not columns:
        raise FileRejected(
            "No column of the file is a lead field: name the columns like the lead fields "
            f"(firstName, email, …) or give a mapping. The file's columns: {header[:20]}"
        )
    return columns, unknown


# --- rows -----------------------------------------------------------------------------------


def _choice(value: str) -> LeadStatus | None:
    wanted = _label_key(value)
    for status in LeadStatus:
        if wanted in (_label_key(status.value), _label_key(status.name)):
            return status
    return None


@dataclass
class ParsedRow:
    row: int
    cells: list[str]
    values: dict[str, object] = field(default_factory=dict)
    lead_id: str | None = None
    errors: list[RowError] = field(default_factory=list)

    def fail(self, column: Column | None, field: str | None, code: str, message: str) -> None:
        """Record an error of this row, with its column's cell as uploaded."""
        value = None
        if column is not None and column.index < len(self.cells):
            value = self.cells[column.index]
        label = column.label if column else None
        self.errors.append(
            RowError(
                row=self.row, column=label, field=field, code=code, message=message, value=value
            )
        )


def parse_row(row: int, cells: list[str], columns: list[Column]) -> ParsedRow:
    """A row's cells as field values (blank = not given); a choice it cannot read is an error."""
    parsed = ParsedRow(row, cells)
    for column in columns:
        raw = cells[column.index] if column.index < len(cells) else ""
        text = raw.strip()
        if not text:
            continue
        if column.field == "lead_id":
            parsed.lead_id = text
        elif column.field == "status":
            status = _choice(text)
            if status is None:
                labels = ", ".join(s.value for s in LeadStatus)
                parsed.fail(
                    column, "status", ErrorCode.BAD_USER_INPUT.value, f"must be one of {labels}"
                )
            else:
                parsed.values["status"] = status
        elif isinstance(LEAD_RULES.get(column.field), Number):
            try:
                number = float(text)
            except ValueError:
                parsed.fail(
                    column,
                    to_camel_case(column.field),
                    ErrorCode.BAD_USER_INPUT.value,
                    "must be a number",
                )
            else:
                parsed.values[column.field] = int(number) if number.is_integer() else number
        else:
            parsed.values[column.field] = text
    return parsed


def _clean_row(
    parsed: ParsedRow, columns: list[Column], *, required: bool
) -> dict[str, object] | None:
    """`clean` (createLead's and updateLead's check); its errors become the row's errors."""
    try:
        return clean(parsed.values, LEAD_RULES, required=required)
    except BadUserInput as error:
        by_field = {to_camel_case(column.field): column for column in columns}
        reported = {known.field for known in parsed.errors}
        for problem in error.field_errors:
            if problem.field in reported:
                continue  # one error per field (a union type reports each member)
            reported.add(problem.field)
            parsed.fail(
                by_field.get(problem.field),
                problem.field,
                ErrorCode.BAD_USER_INPUT.value,
                problem.message,
            )
        return None


# --- matching -------------------------------------------------------------------------------


def _same_keys_kept(lead: LeadDocument, fields: dict[str, object]) -> dict[str, object]:
    """An email or phone spelled differently but meaning the same (the same normalized key)
    is no change: the lead keeps its spelling."""
    kept = dict(fields)
    for name, key in (("email", email_key), ("mobile", phone_key)):
        new, old = kept.get(name), getattr(lead, name)
        if isinstance(new, str) and isinstance(old, str) and key(new) == key(old) is not None:
            del kept[name]
    return kept


def _match_keys(kind: ImportMatch, email: object, mobile: object) -> str | None:
    if kind is ImportMatch.EMAIL:
        return email_key(email if isinstance(email, str) else None)
    if kind is ImportMatch.PHONE:
        return phone_key(mobile if isinstance(mobile, str) else None)
    return None


class MatchIndex:
    """Normalized email and phone → lead ids, for the rows of one batch.

    Looked up per batch in the leads' stored keys (`searchKeys`, one indexed query), so a
    job's memory does not grow with the collection. The job's own changes are remembered
    on top: within a batch (a row matching a lead an earlier row created or changed), and
    for a dry run, which writes nothing, for the whole job.
    """

    def __init__(self, kinds: list[ImportMatch], *, remember: bool) -> None:
        self.kinds = [kind for kind in kinds if kind is not ImportMatch.LEAD_ID]
        self.remember = remember
        self.stored: dict[tuple[ImportMatch, str], set[str]] = {}
        self.added: dict[tuple[ImportMatch, str], set[str]] = {}
        self.removed: dict[tuple[ImportMatch, str], set[str]] = {}

    async def load(self, scope: dict[str, Any], rows: list[ParsedRow]) -> None:
        """The stored leads the rows' keys match (in `scope`); forgets the last batch's."""
        self.stored = {}
        if not self.remember:  # written: the stored keys have them now
            self.added, self.removed = {}, {}
        wanted = {
            (kind, key)
            for parsed in rows
            for kind in self.kinds
            if (key := _match_keys(kind, parsed.values.get("email"), parsed.values.get("mobile")))
        }
        search_keys = [KEY_PREFIX[kind] + key for kind, key in wanted]
        for part in _parts(search_keys):
            cursor = LeadDocument.get_pymongo_collection().find(
                {**scope, "searchKeys": {"$in": part}}, {"lead_id": 1, **STORED_KEYS}
            )
            async for raw in cursor:
                for kind in self.kinds:
                    # The search keys also hold variants (an untagged email, a national
                    # number): a match is the stored key itself.
                    key = raw.get(STORED_KEYS_BY_KIND[kind])
                    if (kind, key) in wanted:
                        self.stored.setdefault((kind, key), set()).add(str(raw["lead_id"]))

    def add(self, lead_id: str, email: object, mobile: object) -> None:
        for kind in self.kinds:
            if key := _match_keys(kind, email, mobile):
                self.added.setdefault((kind, key), set()).add(lead_id)
                self.removed.get((kind, key), set()).discard(lead_id)

    def remove(self, lead_id: str, email: object, mobile: object) -> None:
        for kind in self.kinds:
            if key := _match_keys(kind, email, mobile):
                self.removed.setdefault((kind, key), set()).add(lead_id)
                self.added.get((kind, key), set()).discard(lead_id)

    def find(self, kind: ImportMatch, key: str) -> set[str]:
        found = self.stored.get((kind, key), set()) | self.added.get((kind, key), set())
        return found - self.removed.get((kind, key), set())


KEY_PREFIX = {ImportMatch.EMAIL: normalize.EMAIL, ImportMatch.PHONE: normalize.PHONE}
STORED_KEYS_BY_KIND = {ImportMatch.EMAIL: "emailKey", ImportMatch.PHONE: "phoneKey"}
STORED_KEYS = dict.fromkeys(STORED_KEYS_BY_KIND.values(), 1)


# --- planning and writing a batch -----------------------------------------------------------


@dataclass
class Plan:
    parsed: ParsedRow
    outcome: str
    """created, updated, unchanged or failed."""
    fields: dict[str, object] = field(default_factory=dict)
    lead: LeadDocument | None = None
    done: bool = False
    """Already written by an earlier run of this batch (found by its traces)."""


class LeaseLost(Exception):
    """Another instance took the job over; this one stops without writing more."""


@dataclass
class JobRun:
    job: ImportJobDocument
    viewer: Viewer
    columns: list[Column]
    limits: ImportLimits
    owner: str
    index: MatchIndex
    overlay: dict[str, LeadDocument] = field(default_factory=dict)
    """Dry run: leads as the run would have left them (by lead id, or `row:N` for new ones)."""
    # Tests: called after a batch's writes, before its checkpoint.
    after_writes: Callable[[int], None] | None = None

    @property
    def job_id(self) -> PydanticObjectId:
        assert self.job.id is not None
        return self.job.id

    @property
    def scope(self) -> dict[str, Any]:
        return policy.scoped(self.viewer, {})

    async def traces(self, rows: list[int]) -> tuple[dict[int, str], dict[int, ImportRowDocument]]:
        """What an earlier run of these rows left: created leads, and the ledger's records."""
        created: dict[int, str] = {}
        ledger: dict[int, ImportRowDocument] = {}
        # Only the batch a dead run was writing can have traces: the rows up to one batch
        # past the checkpoint it resumed at.
        if self.job.processed_rows >= self.traces_until or not rows:
            return created, ledger
        span = {"$gte": rows[0], "$lte": rows[-1]}
        cursor = LeadDocument.get_pymongo_collection().find(
            {LEAD_JOB_FIELD: str(self.job_id), LEAD_ROW_FIELD: span},
            {"lead_id": 1, LEAD_ROW_FIELD: 1},
        )
        async for raw in cursor:
            created[int(raw[LEAD_ROW_FIELD])] = str(raw["lead_id"])
        records = ImportRowDocument.get_pymongo_collection().find(
            {"jobId": self.job_id, "row": span}
        )
        async for raw in records:
            record = ImportRowDocument.model_validate(raw)
            ledger[record.row] = record
        return created, ledger

    traces_until: int = 0
    """Resumed: the processed-row count up to which rows may have been written already."""

    async def leads(self, lead_ids: set[str]) -> dict[str, LeadDocument]:
        found: dict[str, LeadDocument] = {}
        wanted = [lead_id for lead_id in lead_ids if lead_id not in self.overlay]
        for part in _parts(wanted):
            cursor = LeadDocument.get_pymongo_collection().find(
                policy.scoped(self.viewer, {"lead_id": {"$in": part}}), {"activities": 0}
            )
            async for raw in cursor:
                lead = LeadDocument.model_validate(raw)
                found[lead.lead_id] = lead
        for key in lead_ids:
            if (simulated := self.overlay.get(key)) is not None:
                found[key] = simulated
        return found

    def _candidates(self, parsed: ParsedRow) -> list[tuple[ImportMatch, set[str]]]:
        """Lead ids the row may mean, by each `matchOn` key in order (the first that finds
        a lead decides)."""
        found: list[tuple[ImportMatch, set[str]]] = []
        for kind in self.job.match_on:
            if kind is ImportMatch.LEAD_ID:
                if parsed.lead_id:
                    found.append((kind, {parsed.lead_id}))
                continue
            key = _match_keys(kind, parsed.values.get("email"), parsed.values.get("mobile"))
            if key and (ids := self.index.find(kind, key)):
                found.append((kind, set(ids)))
        return found

    async def plan(self, rows: list[tuple[int, list[str]]]) -> list[Plan]:
        """Plans for the first rows of `rows`: all, or up to a row that needs an earlier one
        of this batch written first (a second change to one lead, a second new lead with the
        same email or phone)."""
        created, ledger = await self.traces([row for row, _ in rows])
        parsed_rows = [parse_row(row, cells, self.columns) for row, cells in rows]
        mode = self.job.mode
        if mode is not ImportMode.CREATE:
            await self.index.load(self.scope, parsed_rows)
        candidates: dict[int, list[tuple[ImportMatch, set[str]]]] = {}
        wanted: set[str] = set()
        if mode is not ImportMode.CREATE:
            for parsed in parsed_rows:
                candidates[parsed.row] = self._candidates(parsed)
                for _, ids in candidates[parsed.row]:
                    wanted |= ids
        leads = await self.leads(wanted)
        plans: list[Plan] = []
        touched: set[str] = set()
        new_keys: set[tuple[ImportMatch, str]] = set()
        for parsed in parsed_rows:
            row = parsed.row
            record = ledger.get(row)
            if row in created:
                plans.append(Plan(parsed, "created", done=True))
                continue
            if record is not None and record.outcome == "failed":
                parsed.errors = list(record.errors)
                plans.append(Plan(parsed, "failed", done=True))
                continue
            if parsed.errors:
                _clean_row(parsed, self.columns, required=mode is ImportMode.CREATE)
                plans.append(Plan(parsed, "failed"))
                continue
            found: list[LeadDocument] = []
            kind: ImportMatch | None = None
            for match_kind, ids in candidates.get(row, []):
                found = [leads[lead_id] for lead_id in sorted(ids) if lead_id in leads]
                kind = match_kind
                if found:
                    break
            if len(found) > 1:
                shown = ", ".join(lead.lead_id for lead in found[:5])
                self._fail(parsed, AMBIGUOUS_MATCH, f"matches several leads: {shown}", kind)
                plans.append(Plan(parsed, "failed"))
                continue
            if found:
                lead = found[0]
                if lead.lead_id in touched:
                    break  # cut: the next batch sees this batch's change first
                fields = _clean_row(parsed, self.columns, required=False)
                if fields is None:
                    plans.append(Plan(parsed, "failed"))
                    continue
                touched.add(lead.lead_id)
                changed = changes.diff(lead, _same_keys_kept(lead, fields))
                if record is not None and record.outcome == "updated":
                    plans.append(Plan(parsed, "updated", changed, lead, done=not changed))
                elif changed:
                    plans.append(Plan(parsed, "updated", changed, lead))
                else:
                    plans.append(Plan(parsed, "unchanged", lead=lead))
                continue
            if mode is ImportMode.UPDATE:
                kinds = ", ".join(k.name for k in self.job.match_on)
                message = f"no lead matches this row (matchOn: {kinds})"
                self._fail(parsed, ErrorCode.NOT_FOUND.value, message, kind)
                plans.append(Plan(parsed, "failed"))
                continue
            keys = {
                (k, key)
                for k in self.index.kinds
                if (key := _match_keys(k, parsed.values.get("email"), parsed.values.get("mobile")))
            }
            if keys & new_keys:
                break  # cut: the earlier new lead is written first, then this row matches it
            fields = _clean_row(parsed, self.columns, required=True)
            if fields is None:
                plans.append(Plan(parsed, "failed"))
                continue
            new_keys |= keys
            plans.append(Plan(parsed, "created", fields))
        return plans

    def _fail(self, parsed: ParsedRow, code: str, message: str, kind: ImportMatch | None) -> None:
        column = None
        name = (
            {
                ImportMatch.LEAD_ID: "lead_id",
                ImportMatch.EMAIL: "email",
                ImportMatch.PHONE: "mobile",
            }.get(kind)
            if kind
            else None
        )
        for candidate in self.columns:
            if candidate.field == name:
                column = candidate
        parsed.fail(column, to_camel_case(name) if name else None, code, message)

    async def write(self, plans: list[Plan]) -> None:
        """The batch's writes: failed rows' records, updates, new leads (none in a dry run)."""
        now = utc_now()
        by = self.viewer.name
        job_id = str(self.job_id)
        ledger = ImportRowDocument.get_pymongo_collection()
        failed = [plan for plan in plans if plan.outcome == "failed" and not plan.done]
        updates = [plan for plan in plans if plan.outcome == "updated" and not plan.done]
        creates = [plan for plan in plans if plan.outcome == "created" and not plan.done]
        records = [
            _record(self.job_id, plan.parsed.row, "failed", None, plan.parsed.errors, now)
            for plan in failed
        ]
        if self.job.dry_run:
            await _insert_ignoring_duplicates(ledger, records)
            self._simulate(updates, creates, now)
            await self._report_duplicates(creates)
            return
        for plan in updates:
            assert plan.lead is not None
            records.append(
                _record(self.job_id, plan.parsed.row, "updated", plan.lead.lead_id, [], now)
            )
        # Recorded before the leads are written: a run that dies in between finds the record,
        # re-applies the update (a no-op if it was written) and counts the row once.
        await _insert_ignoring_duplicates(ledger, records)
        if updates:
            await self._update(updates, job_id, by, now)
        if creates:
            await self._create(creates, job_id, by, now)
            await self._report_duplicates(creates)

    async def _report_duplicates(self, creates: list[Plan]) -> None:
        """New leads that look like stored ones, with their candidates, from one indexed
        look-up for the batch (services/search.py); kept in `import_duplicates`."""
        rows = []
        for plan in creates:
            written = plan.lead is not None and not self.job.dry_run
            lead_id = plan.lead.lead_id if written and plan.lead is not None else None
            rows.append((lead_id, normalize.lead_keys({**plan.fields, "lead_id": lead_id})))
        found = await search.duplicates_of_many(self.viewer, rows)
        records = [
            {
                "_id": f"{self.job_id}:{plan.parsed.row}",
                "jobId": self.job_id,
                "row": plan.parsed.row,
                "leadId": lead_id,
                "duplicates": [
                    {"leadId": other, "score": score, "rules": rules}
                    for other, score, rules in candidates[:MAX_ROW_DUPLICATES]
                ],
            }
            for plan, (lead_id, _), candidates in zip(creates, rows, found, strict=True)
            if candidates
        ]
        duplicates = ImportDuplicateDocument.get_pymongo_collection()
        await _insert_ignoring_duplicates(duplicates, records)

    async def _update(
        self, updates: list[Plan], job_id: str, by: str | None, now: datetime
    ) -> None:
        operations = []
        for plan in updates:
            lead = plan.lead
            assert lead is not None
            entries = [
                timeline.lead_field_imported(
                    name,
                    getattr(lead, name),
                    new,
                    job_id=job_id,
                    row=plan.parsed.row,
                    by=by,
                    at=now,
                )
                for name, new in plan.fields.items()
            ]
            writes, read = with_keys(lead, plan.fields)
            pinned = changes.pinned(lead, [*read, "updated_at"])
            operations.append(
                timeline.record_operation(
                    policy.scoped(self.viewer, pinned), entries, changes=writes, at=now
                )
            )
        result = await LeadDocument.get_pymongo_collection().bulk_write(operations, ordered=False)
        if result.matched_count < len(operations):
            await self._find_missed(updates, job_id)
        for plan in updates:
            if plan.outcome == "updated" and plan.lead is not None:
                lead = plan.lead
                self.index.remove(lead.lead_id, lead.email, lead.mobile)
                new = {"email": lead.email, "mobile": lead.mobile, **plan.fields}
                self.index.add(lead.lead_id, new["email"], new["mobile"])

    async def _find_missed(self, updates: list[Plan], job_id: str) -> None:
        """Updates whose lead changed between the read and the write: failed with CONFLICT."""
        marker = timeline.import_marker(job_id)
        ids = [plan.lead.lead_id for plan in updates if plan.lead is not None]
        written: set[int] = set()
        for part in _parts(ids):
            cursor = LeadDocument.get_pymongo_collection().find(
                {"lead_id": {"$in": part}}, {"activities": 1}
            )
            async for raw in cursor:
                for entry in raw.get("activities") or []:
                    description = str(entry.get("description", ""))
                    found = re.search(r"\(row (\d+)\)$", description)
                    if marker in description and found:
                        written.add(int(found.group(1)))
        for plan in updates:
            if plan.parsed.row not in written:
                plan.outcome = "failed"
                plan.parsed.errors.append(
                    RowError(
                        row=plan.parsed.row,
                        code=ErrorCode.CONFLICT.value,
                        message="the lead was changed by someone else during the import; "
                        "upload the row again",
                    )
                )
                await ImportRowDocument.get_pymongo_collection().update_one(
                    {"jobId": self.job_id, "row": plan.parsed.row},
                    {
                        "$set": {
                            "outcome": "failed",
                            "errors": [_error_bson(e) for e in plan.parsed.errors],
                        }
                    },
                )

    async def _create(
        self, creates: list[Plan], job_id: str, by: str | None, now: datetime
    ) -> None:
        collection = LeadDocument.get_pymongo_collection()
        pending = list(creates)
        for _ in range(MAX_WRITE_ATTEMPTS):
            numbers = await sequence.reserve("lead", len(pending))
            documents: list[LeadDocument] = []
            for plan, number in zip(pending, numbers, strict=True):
                lead = imported_lead(
                    plan.fields, self.viewer, number, job_id, plan.parsed.row, by=by, now=now
                )
                plan.lead = lead
                documents.append(lead)
            retry: list[Plan] = []
            earlier: set[int] = set()
            try:
                await collection.insert_many(
                    [get_dict(lead, to_db=True) for lead in documents], ordered=False
                )
            except BulkWriteError as error:
                for problem in error.details.get("writeErrors", []):
                    if problem.get("code") != DUPLICATE_KEY:
                        raise
                    plan = pending[problem["index"]]
                    pattern = problem.get("keyPattern") or {}
                    if LEAD_KEY_FIELD in pattern or LEAD_KEY_FIELD in str(problem.get("errmsg")):
                        earlier.add(id(plan))  # created by an earlier run of this batch
                        continue
                    retry.append(plan)  # its number is held by a lead stored without the counter
            retried = {id(plan) for plan in retry}
            for plan in pending:
                if id(plan) not in retried | earlier and plan.lead is not None:
                    hub.written(plan.lead, 1)
                    self.index.add(plan.lead.lead_id, plan.lead.email, plan.lead.mobile)
            if not retry:
                return
            pending = retry
        for plan in pending:
            plan.outcome = "failed"
            plan.parsed.errors.append(
                RowError(
                    row=plan.parsed.row,
                    code=ErrorCode.CONFLICT.value,
                    message="could not allocate a lead id; upload the row again",
                )
            )

    def _simulate(self, updates: list[Plan], creates: list[Plan], now: datetime) -> None:
        """A dry run's writes, in memory, so later rows match as they would in a real run."""
        for plan in updates:
            lead = plan.lead
            assert lead is not None
            self.overlay[lead.lead_id] = lead.model_copy(update=plan.fields)
            self.index.remove(lead.lead_id, lead.email, lead.mobile)
            new = {"email": lead.email, "mobile": lead.mobile, **plan.fields}
            self.index.add(lead.lead_id, new["email"], new["mobile"])
        for plan in creates:
            key = f"row:{plan.parsed.row}"
            values = plan.fields
            simulated: dict[str, Any] = {**values, "lead_id": key}
            self.overlay[key] = LeadDocument.model_construct(**simulated)
            self.index.add(key, values.get("email"), values.get("mobile"))


# Candidates kept per imported row (the best first).
MAX_ROW_DUPLICATES = 5
# Values per `$in`: the embedded engine refuses deep expression trees (about 1000).
IN_LIMIT = 200


def _parts[T](values: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(values), IN_LIMIT):
        yield values[start : start + IN_LIMIT]


def imported_lead(
    fields: Mapping[str, object],
    viewer: Viewer,
    number: int,
    job_id: str,
    row: int,
    *,
    by: str | None,
    now: datetime,
) -> LeadDocument:
    """The lead a file's row creates: its fields (python names), its keys, the job's traces,
    and the timeline entry naming the job and row."""
    values = {"status": LeadStatus.NEW, **fields}
    if values.get("lead_owner") is None:
        values["lead_owner"] = viewer.name or viewer.id
    lead_id = sequence.format_id("LEAD", number)
    return LeadDocument.model_validate(
        {
            **values,
            **normalize.lead_keys({**values, "lead_id": lead_id}),
            "lead_owner_id": viewer.id,
            "lead_id": lead_id,
            "lead_number": number,
            "created_at": now,
            "created_by": viewer.id,
            "updated_at": now,
            "activities": [timeline.lead_imported(job_id, row, by=by, at=now)],
            LEAD_JOB_FIELD: job_id,
            LEAD_ROW_FIELD: row,
            LEAD_KEY_FIELD: f"{job_id}:{row}",
        }
    )


def _error_bson(error: RowError) -> dict[str, Any]:
    return error.model_dump()


def _record(
    job_id: PydanticObjectId,
    row: int,
    outcome: str,
    lead_id: str | None,
    errors: list[RowError],
    at: datetime,
) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "row": row,
        "outcome": outcome,
        "leadId": lead_id,
        "errors": [_error_bson(error) for error in errors],
        "at": at,
    }


async def _insert_ignoring_duplicates(collection: Any, documents: list[dict[str, Any]]) -> None:
    if not documents:
        return
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        if any(
            problem.get("code") != DUPLICATE_KEY for problem in error.details.get("writeErrors", [])
        ):
            raise


# --- starting, reading, listing jobs --------------------------------------------------------


def job_viewer(job: ImportJobDocument) -> Viewer:
    return Viewer(id=job.created_by, name=job.created_by_name, email=None, role=job.created_by_role)


async def start_import(
    viewer: Viewer,
    *,
    file_name: str,
    upload: Readable,
    max_bytes: int,
    mode: ImportMode = ImportMode.CREATE,
    match_on: list[ImportMatch] | None = None,
    mapping: list[ColumnMapping] | None = None,
    dry_run: bool = False,
) -> ImportJobDocument:
    """Store the file and queue its job; the runner of some instance takes it from there."""
    policy.require(viewer, IMPORT_ACTION)
    checked = check_mapping(mapping or [])
    name = (file_name or "upload").strip()[:255] or "upload"
    matches = list(dict.fromkeys(match_on or ())) or list(DEFAULT_MATCH)
    job_id = PydanticObjectId()
    try:
        size = await store_file(job_id, upload, max_bytes)
    except BaseException:
        await ImportFileChunk.get_pymongo_collection().delete_many({"jobId": job_id})
        raise
    if size == 0:
        await ImportFileChunk.get_pymongo_collection().delete_many({"jobId": job_id})
        raise BadUserInput([FieldError("file", "is empty")])
    job = ImportJobDocument(
        id=job_id,
        file_name=name,
        file_size=size,
        mode=mode,
        match_on=matches,
        mapping=checked,
        dry_run=dry_run,
        created_at=utc_now(),
        created_by=viewer.id,
        created_by_name=viewer.name,
        created_by_role=viewer.role,
    )
    await job.insert()
    runners.wake()
    return job


def _job_id(job_id: str) -> PydanticObjectId:
    try:
        return PydanticObjectId(job_id)
    except (InvalidId, TypeError):
        raise not_found("Import job", job_id) from None


async def get_job(viewer: Viewer, job_id: str) -> ImportJobDocument:
    policy.require(viewer, IMPORT_ACTION)
    raw = await ImportJobDocument.get_pymongo_collection().find_one({"_id": _job_id(job_id)})
    if raw is None:
        raise not_found("Import job", job_id)
    job: ImportJobDocument = ImportJobDocument.model_validate(raw)
    return job


async def find_job(viewer: Viewer, job_id: str) -> ImportJobDocument | None:
    try:
        return await get_job(viewer, job_id)
    except NotFound:
        return None


@dataclass(frozen=True)
class ErrorPage:
    indexed: list[tuple[int, RowError]]
    """Each error with its place among its row's errors."""
    has_next_page: bool
    end_cursor: str | None
    total_count: int

    @property
    def errors(self) -> list[RowError]:
        return [error for _, error in self.indexed]


def _error_cursor(row: int, index: int) -> str:
    return base64.urlsafe_b64encode(f"{row}:{index}".encode()).decode().rstrip("=")


def _read_error_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        row, index = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        return int(row), int(index)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadUserInput([FieldError("after", "is not a cursor this list returned")]) from None


async def list_errors(job: ImportJobDocument, first: int, after: str | None) -> ErrorPage:
    """The job's row errors in row order, `first` at a time (at most 500)."""
    if not 0 <= first <= 500:
        raise BadUserInput([FieldError("first", "must be 0 to 500")])
    start_row, start_index = _read_error_cursor(after) if after else (0, -1)
    collection = ImportRowDocument.get_pymongo_collection()
    query = {"jobId": job.id, "outcome": "failed", "row": {"$gte": start_row}}
    found: list[tuple[int, int, RowError]] = []
    cursor = collection.find(query, {"row": 1, "errors": 1}).sort("row", 1).limit(first + 2)
    async for raw in cursor:
        for index, error in enumerate(raw.get("errors") or []):
            if raw["row"] == start_row and index <= start_index:
                continue
            found.append((raw["row"], index, RowError.model_validate({**error, "row": raw["row"]})))
        if len(found) > first:
            break
    page = found[:first]
    total = await collection.count_documents({"jobId": job.id, "outcome": "failed"})
    end = _error_cursor(page[-1][0], page[-1][1]) if page else after
    return ErrorPage([(index, error) for _, index, error in page], len(found) > first, end, total)


async def list_duplicates(
    job: ImportJobDocument, first: int, after: int | None
) -> tuple[list[ImportDuplicateDocument], bool, int]:
    """Rows whose new lead looks like stored leads, in row order, `first` (up to 500) at a
    time after row `after`; with whether there are more, and how many there are in all."""
    if not 0 <= first <= 500:
        raise BadUserInput([FieldError("first", "must be 0 to 500")])
    collection = ImportDuplicateDocument.get_pymongo_collection()
    page = {"jobId": job.id, "row": {"$gt": after if after is not None else 0}}
    raws = await collection.find(page).sort("row", 1).limit(first + 1).to_list()
    rows = [ImportDuplicateDocument.model_validate(raw) for raw in raws]
    return rows[:first], len(rows) > first, await collection.count_documents({"jobId": job.id})


async def list_jobs(
    viewer: Viewer, first: int, after: str | None
) -> tuple[list[ImportJobDocument], bool]:
    """Newest first; `after` is a job id from the previous page."""
    policy.require(viewer, IMPORT_ACTION)
    if not 0 <= first <= 100:
        raise BadUserInput([FieldError("first", "must be 0 to 100")])
    query: dict[str, Any] = {}
    if after:
        try:
            query["_id"] = {"$lt": ObjectId(after)}
        except (InvalidId, TypeError):
            raise BadUserInput(
                [FieldError("after", "is not a cursor this list returned")]
            ) from None
    cursor = ImportJobDocument.get_pymongo_collection().find(query).sort("_id", -1).limit(first + 1)
    jobs = [ImportJobDocument.model_validate(raw) async for raw in cursor]
    return jobs[:first], len(jobs) > first


# --- errors.csv -----------------------------------------------------------------------------


async def failed_rows_csv(
    viewer: Viewer, job_id: str, limits: ImportLimits
) -> AsyncIterator[bytes]:
    """The failed rows as uploaded (header first) plus an `error` column, as CSV (UTF-8)."""
    job = await get_job(viewer, job_id)
    if job.status is ImportStatus.FAILED and job.total_rows is None:
        raise Conflict(f"The import failed as a whole, no row was read: {job.error}")
    if job.total_rows is None:
        raise Conflict("The import has not read its file yet; retry when it runs")
    return _failed_rows(job, limits)


async def _failed_rows(job: ImportJobDocument, limits: ImportLimits) -> AsyncIterator[bytes]:
    async with local_copy(job) as path:
        info = await asyncio.to_thread(inspect, path, job.file_name, limits)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([escape(cell) for cell in [*info.header, "error"]])
        yield ("\ufeff" + buffer.getvalue()).encode()
        cursor = (
            ImportRowDocument.get_pymongo_collection()
            .find({"jobId": job.id, "outcome": "failed"}, {"row": 1, "errors": 1})
            .sort("row", 1)
        )
        rows = read_rows(path, info, limits)
        current = next(rows, None)
        async for record in cursor:
            while current is not None and current[0] < record["row"]:
                current = next(rows, None)
            if current is None or current[0] != record["row"]:
                continue
            message = "; ".join(
                _error_text(RowError.model_validate({**e, "row": record["row"]}))
                for e in record.get("errors") or []
            )
            buffer = io.StringIO()
            cells = current[1] + [""] * (len(info.header) - len(current[1]))
            csv.writer(buffer).writerow([escape(cell) for cell in [*cells, message]])
            yield buffer.getvalue().encode()


def _error_text(error: RowError) -> str:
    where = error.column or error.field
    return f"{where}: {error.message}" if where else error.message


# --- running jobs ---------------------------------------------------------------------------


class ProgressHub:
    """Wakes this instance's `importProgress` subscribers when a job moves."""

    def __init__(self) -> None:
        self.events: dict[str, set[asyncio.Event]] = {}

    def moved(self, job_id: str) -> None:
        for event in self.events.get(job_id, ()):
            event.set()

    async def watch(self, job_id: str, poll_seconds: float = 1.0) -> AsyncIterator[None]:
        """Yields whenever the job may have moved (here, or on another instance: polled)."""
        event = asyncio.Event()
        self.events.setdefault(job_id, set()).add(event)
        try:
            while True:
                yield
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), poll_seconds)
                event.clear()
        finally:
            self.events[job_id].discard(event)
            if not self.events[job_id]:
                del self.events[job_id]


progress = ProgressHub()


async def watch_job(viewer: Viewer, job_id: str) -> AsyncIterator[ImportJobDocument]:
    """The job now, then after every change, until it has finished."""
    last: tuple[object, ...] | None = None
    await get_job(viewer, job_id)
    async for _ in progress.watch(job_id):
        viewer.require_unexpired()
        job = await get_job(viewer, job_id)
        state = (job.status, job.processed_rows, job.total_rows, job.failed)
        if state != last:
            last = state
            yield job
        if job.status in TERMINAL:
            return


class ImportRunner:
    """Runs queued jobs, and resumes interrupted ones, in this server instance."""

    def __init__(self, limits: ImportLimits, *, workers: int = 2) -> None:
        self.limits = limits
        self.workers = workers
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self.tasks: list[asyncio.Task[None]] = []
        self.wakeup = asyncio.Event()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.after_writes: Callable[[int], None] | None = None

    def start(self) -> None:
        if not self.tasks:
            self.tasks = [asyncio.create_task(self._loop()) for _ in range(self.workers)]
        runners.active.add(self)

    async def stop(self) -> None:
        """Stops its jobs where they are and releases them: the next start resumes them."""
        runners.active.discard(self)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
        with contextlib.suppress(PyMongoError):
            await ImportJobDocument.get_pymongo_collection().update_many(
                {"owner": self.owner},
                {"$set": {"leaseUntil": None, "owner": None}},
            )

    def wake(self) -> None:
        self.wakeup.set()

    async def _loop(self) -> None:
        background_work.set(True)  # this task's commands are no request's cost
        while True:
            try:
                job = await self.claim()
            except PyMongoError as error:
                log.warning("cannot claim import jobs: %s", error)
                job = None
            if job is None:
                self.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), POLL_SECONDS)
                continue
            await self.run(job)

    async def claim(self, job_id: PydanticObjectId | None = None) -> ImportJobDocument | None:
        """The oldest job waiting for a runner (or this one), leased to this runner."""
        now = utc_now()
        wanted: dict[str, Any] = {} if job_id is None else {"_id": job_id}
        claimable = {
            **wanted,
            "status": {"$in": [ImportStatus.QUEUED.value, ImportStatus.RUNNING.value]},
            "$or": [{"leaseUntil": None}, {"leaseUntil": {"$lt": now}}],
        }
        jobs = ImportJobDocument.get_pymongo_collection()
        if await jobs.find_one(claimable, {"_id": 1}) is None:
            return None  # an idle runner only reads: no write every poll
        raw = await jobs.find_one_and_update(
            claimable,
            {"$set": {"owner": self.owner, "leaseUntil": self._lease(now)}},
            sort=[("createdAt", 1)],
            return_document=ReturnDocument.AFTER,
        )
        return None if raw is None else ImportJobDocument.model_validate(raw)

    def _lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.limits.lease_seconds)

    async def run(self, job: ImportJobDocument) -> None:
        job_id = str(job.id)
        heartbeat = asyncio.create_task(self._heartbeat(job))
        try:
            await self._run(job)
        except LeaseLost:
            log.warning("import %s was taken over by another instance", job_id)
        except FileRejected as error:
            await self._finish(job, ImportStatus.FAILED, error=error.message)
        except asyncio.CancelledError:
            raise
        except (ConnectionFailure, ExecutionTimeout) as error:
            # The database is away: leave the job RUNNING; its lease runs out and a runner
            # (this one, or another instance's) resumes it at its checkpoint.
            log.warning("import %s interrupted by the database: %s", job_id, error)
        except Exception:
            log.exception("import %s failed", job_id)
            await self._finish(
                job, ImportStatus.FAILED, error="Internal error (see the server log)"
            )
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            progress.moved(job_id)

    async def _heartbeat(self, job: ImportJobDocument) -> None:
        while True:
            await asyncio.sleep(self.limits.lease_seconds / 3)
            with contextlib.suppress(PyMongoError):
                await ImportJobDocument.get_pymongo_collection().update_one(
                    {"_id": job.id, "owner": self.owner},
                    {"$set": {"leaseUntil": self._lease(utc_now())}},
                )

    async def _set(self, job: ImportJobDocument, update: Mapping[str, Any]) -> None:
        result = await ImportJobDocument.get_pymongo_collection().update_one(
            {"_id": job.id, "owner": self.owner}, update
        )
        if result.matched_count == 0:
            raise LeaseLost

    async def _finish(
        self, job: ImportJobDocument, status: ImportStatus, *, error: str | None = None
    ) -> None:
        with contextlib.suppress(LeaseLost):
            await self._set(
                job,
                {
                    "$set": {
                        "status": status.value,
                        "error": error,
                        "finishedAt": utc_now(),
                        "owner": None,
                        "leaseUntil": None,
                    }
                },
            )

    async def _run(self, job: ImportJobDocument) -> None:
        resumed = job.status is ImportStatus.RUNNING
        if not resumed:
            await self._set(
                job, {"$set": {"status": ImportStatus.RUNNING.value, "startedAt": utc_now()}}
            )
        progress.moved(str(job.id))
        viewer = job_viewer(job)
        async with local_copy(job) as path:
            info: TableInfo = await asyncio.to_thread(inspect, path, job.file_name, self.limits)
            columns, unknown = resolve_columns(info.header, job.mapping)
            if job.total_rows is None:
                await self._set(
                    job,
                    {
                        "$set": {
                            "totalRows": info.total_rows,
                            "fileFormat": info.format,
                            "encoding": info.encoding,
                            "delimiter": info.delimiter,
                            "columns": [{"column": c.label, "field": c.field} for c in columns],
                            "unknownColumns": unknown,
                        }
                    },
                )
                job.total_rows = info.total_rows
            index = MatchIndex(
                job.match_on if job.mode is not ImportMode.CREATE else [], remember=job.dry_run
            )
            run = JobRun(
                job,
                viewer,
                columns,
                self.limits,
                self.owner,
                index,
                after_writes=self.after_writes,
                traces_until=job.processed_rows + self.limits.batch_size if resumed else 0,
            )
            await self._rows(run, path, info)
        await self._finish(job, ImportStatus.COMPLETED)

    async def _rows(self, run: JobRun, path: Path, info: TableInfo) -> None:
        job = run.job
        rows: Iterator[tuple[int, list[str]]] = read_rows(path, info, self.limits)
        # Rows before the checkpoint are done.
        await asyncio.to_thread(_take, rows, job.processed_rows)
        waiting: list[tuple[int, list[str]]] = []
        size = self.limits.batch_size
        while True:
            wanted = size - len(waiting)
            more = await asyncio.to_thread(_take, rows, wanted)
            batch = waiting + more
            if not batch:
                return
            plans = await run.plan(batch)
            waiting = batch[len(plans) :]
            await run.write(plans)
            if run.after_writes is not None:
                run.after_writes(job.processed_rows + len(plans))
            counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
            for plan in plans:
                counts[plan.outcome] += 1
            job.processed_rows += len(plans)
            await self._set(
                job,
                {
                    "$set": {
                        "processedRows": job.processed_rows,
                        "leaseUntil": self._lease(utc_now()),
                    },
                    "$inc": counts,
                },
            )
            progress.moved(str(job.id))


def _take[T](items: Iterator[T], count: int) -> list[T]:
    return list(islice(items, count))


class Runners:
    """This process's runners (one per app), so `start_import` can wake them."""

    def __init__(self) -> None:
        self.active: set[ImportRunner] = set()

    def wake(self) -> None:
        for runner in self.active:
            runner.wake()


runners = Runners()


# --- revert ---------------------------------------------------------------------------------


class RevertConflict(Conflict):
    """Leads the job wrote that were changed since: the revert writes nothing."""

    def __init__(self, lead_ids: list[str]) -> None:
        shown = ", ".join(lead_ids[:20]) + (" …" if len(lead_ids) > 20 else "")
        super().__init__(
            f"{len(lead_ids)} leads were changed after the import by someone else; nothing "
            f"was reverted: {shown}"
        )
        self.lead_ids = lead_ids[:MAX_REPORTED_CONFLICTS]

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code.value, "leadIds": self.lead_ids}


def _old_value(name: str, text: str | None) -> object:
    """A timeline entry's stored text back as the field's value."""
    if text is None:
        return None
    if name == "status":
        return LeadStatus(text)
    if isinstance(LEAD_RULES.get(name), Number):
        number = float(text)
        return int(number) if number.is_integer() and "." not in text else number
    return text


def _attribute(stored: str) -> str | None:
    for name, info in LeadDocument.model_fields.items():
        if (info.alias or name) == stored:
            return name
    return None


@dataclass
class _Restore:
    lead: dict[str, Any]
    old: dict[str, object]


async def revert_import(viewer: Viewer, job_id: str) -> ImportJobDocument:
    """Delete what the job created, restore what it updated (CONFLICT if changed since)."""
    job = await get_job(viewer, job_id)
    if job.dry_run:
        raise Conflict("A dry run wrote nothing; there is nothing to revert")
    if job.status is ImportStatus.REVERTED:
        raise Conflict("The import was reverted already")
    if job.status is not ImportStatus.COMPLETED:
        raise Conflict(f"Only a completed import can be reverted; this one is {job.status.name}")
    marker = timeline.import_marker(str(job.id))
    leads = LeadDocument.get_pymongo_collection()
    conflicts: list[str] = []
    deletions: list[DeleteOne] = []
    async for raw in leads.find(
        {LEAD_JOB_FIELD: str(job.id)}, {"lead_id": 1, "updatedAt": 1, "activities": 1}
    ):
        if any(
            marker not in str(entry.get("description")) for entry in raw.get("activities") or []
        ):
            conflicts.append(str(raw["lead_id"]))
        else:
            deletions.append(DeleteOne({"_id": raw["_id"], "updatedAt": raw["updatedAt"]}))
    restores: list[_Restore] = []
    updated_ids = await ImportRowDocument.get_pymongo_collection().distinct(
        "leadId", {"jobId": job.id, "outcome": "updated"}
    )
    for part in _parts(updated_ids):
        cursor = leads.find(policy.scoped(viewer, {"lead_id": {"$in": part}}))
        async for raw in cursor:
            if raw.get(LEAD_JOB_FIELD) == str(job.id):
                continue  # created by this job too: deleted above (or a conflict)
            entries = raw.get("activities") or []
            mine = [i for i, entry in enumerate(entries) if marker in str(entry.get("description"))]
            if not mine:
                continue
            if any(marker not in str(entry.get("description")) for entry in entries[mine[0] :]):
                conflicts.append(str(raw["lead_id"]))
                continue
            old: dict[str, object] = {}
            for i in mine:
                entry = entries[i]
                name = _attribute(str(entry.get("field")))
                if name is not None and name not in old:
                    old[name] = _old_value(name, entry.get("oldValue"))
            restores.append(_Restore(raw, old))
    if conflicts:
        raise RevertConflict(sorted(set(conflicts)))
    now = utc_now()
    operations: list[Any] = []
    for restore in restores:
        lead = LeadDocument.model_validate({**restore.lead, "activities": []})
        reverts: list[Activity] = []
        for name, value in restore.old.items():
            entry = timeline.lead_field_changed(
                name, getattr(lead, name), value, by=viewer.name, at=now
            )
            entry.description = f"{entry.description} (revert of import {job.id})"
            reverts.append(entry)
        operations.append(
            timeline.record_operation(
                {"_id": restore.lead["_id"], "updatedAt": restore.lead["updatedAt"]},
                reverts,
                changes=with_keys(lead, restore.old)[0],
                at=now,
            )
        )
    missed: list[str] = []
    for group in (deletions, operations):
        for start in range(0, len(group), 500):
            part = group[start : start + 500]
            result = await leads.bulk_write(part, ordered=False)
            done = result.deleted_count + result.modified_count
            if done < len(part):
                missed.append(f"{len(part) - done} leads changed during the revert")
    await ImportJobDocument.get_pymongo_collection().update_one(
        {"_id": job.id},
        {
            "$set": {
                "status": ImportStatus.REVERTED.value,
                "revertedAt": now,
                "revertedBy": viewer.name or viewer.id,
                "error": "; ".join(missed) or None,
            }
        },
    )
    progress.moved(str(job.id))
    return await get_job(viewer, job_id)
