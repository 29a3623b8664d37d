"""Lead exports (README "Import and export"): CSV, XLSX and JSON Lines, streamed.

Leads are read with one cursor in the list's order (the sort field, then `_id`), in batches
(the next one read while this one is written), only the exported fields, and written out as
they come: memory stays flat in the number of leads. Columns are the lead fields' GraphQL
names (`leadId`, `firstName`, …), so an exported file imports back as it is
(services/imports.py maps those names; an UPSERT of it matching on LEAD_ID changes nothing).

A CSV text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets
a leading apostrophe (OWASP's CSV-injection advice); the import takes it off again. XLSX
cells are typed: text is stored as text, never as a formula.
"""

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import orjson
from strawberry.utils.str_converters import to_camel_case

from models.fields import LeadFields, specs, stored_name
from models.lead import LeadDocument
from services import policy
from services.errors import BadUserInput, FieldError
from services.import_files import FORMULA_START, escape
from services.imports import IMPORT_ACTION
from services.leads import lead_query
from services.pagination import Order
from services.viewer import Viewer

FORMATS = ("csv", "xlsx", "jsonl")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "jsonl": "application/jsonl; charset=utf-8",
}
BATCH = 1000
XLSX_CHUNK = 256 * 1024
# Each writer closes its rows with the file: a reader that stops early (a client gone) ends
# the cursor and its read-ahead at once.
Rows = AsyncGenerator[list[list[object]]]
Body = AsyncGenerator[bytes]
# Every lead field, in API order: the default columns.
EXPORT_FIELDS = tuple(specs(LeadFields))
# What a stored lead holds besides `_id`: an export reads the exported ones (see _documents).
STORED_FIELDS = tuple(
    stored
    for name in LeadDocument.model_fields
    if (stored := stored_name(LeadDocument, name)) != "_id"
)


def columns(names: list[str] | None) -> list[str]:
    """The fields to export (Python names) from their GraphQL names (default: all)."""
    if not names:
        return list(EXPORT_FIELDS)
    by_label = {to_camel_case(name): name for name in EXPORT_FIELDS}
    unknown = [name for name in names if name not in by_label]
    if unknown:
        known = ", ".join(by_label)
        raise BadUserInput([FieldError("fields", f"unknown fields {unknown}; known: {known}")])
    return [by_label[name] for name in dict.fromkeys(names)]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`; a naive time is UTC (as the export reads it)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


async def _documents(
    viewer: Viewer, filters: Mapping[str, Any], order: Order, fields: list[str]
) -> Rows:
    """The leads' values (stored as they are), a batch of rows at a time, in `order`."""
    policy.require(viewer, IMPORT_ACTION)
    query = policy.scoped(viewer, lead_query(filters))
    stored = [stored_name(LeadDocument, name) for name in fields]
    # Every other field left out by name (`_id` too, unless exported): the embedded engine
    # then drops them in SQLite before it parses a row, where naming the kept ones would parse
    # the whole document, timeline and search keys included (docs/embedded-engine.md §24).
    projection: dict[str, int] = dict.fromkeys(
        [name for name in STORED_FIELDS if name not in stored], 0
    )
    if "_id" not in stored:
        projection["_id"] = 0
    direction = -1 if order.descending else 1
    collection = LeadDocument.get_pymongo_collection()
    # Naive UTC datetimes: _iso writes them without a time-zone conversion per cell.
    collection = collection.with_options(
        codec_options=collection.codec_options.with_options(tz_aware=False)
    )
    cursor = collection.find(query, projection, batch_size=BATCH).sort(
        [(order.stored_field, direction), ("_id", direction)]
    )
    pending = asyncio.ensure_future(cursor.to_list(BATCH))
    try:
        while documents := await pending:
            # The next batch is asked for before this one is written, so the database reads
            # and sends it meanwhile (the embedded engine has its own thread or process).
            pending = asyncio.ensure_future(cursor.to_list(BATCH))
            await asyncio.sleep(0)  # sends the request now
            yield [[raw.get(name) for name in stored] for raw in documents]
    finally:
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        await cursor.close()


async def export_leads(
    viewer: Viewer,
    file_format: str,
    *,
    filters: Mapping[str, Any],
    order: Order,
    fields: list[str],
) -> Body:
    """The file, in pieces. Checks the caller's permission before the first piece."""
    policy.require(viewer, IMPORT_ACTION)
    labels = [to_camel_case(name) for name in fields]
    rows = _documents(viewer, filters, order, fields)
    if file_format == "csv":
        return _csv(labels, rows)
    if file_format == "jsonl":
        return _jsonl(labels, rows)
    return _xlsx(labels, rows)


async def _csv(labels: list[str], rows: Rows) -> Body:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(labels)
    yield buffer.getvalue().encode()
    async with aclosing(rows):
        async for batch in rows:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerows(
                # Most cells are text or empty: escaped inline; the rest through _text.
                [
                    ("'" + value if value.startswith(FORMULA_START) else value)
                    if value.__class__ is str
                    else ""
                    if value is None
                    else escape(_text(value))
                    for value in row
                ]
                for row in batch
            )
            yield buffer.getvalue().encode()


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


async def _jsonl(labels: list[str], rows: Rows) -> Body:
    async with aclosing(rows):
        async for batch in rows:
            yield b"".join(
                orjson.dumps(
                    {
                        label: _iso(value) if isinstance(value, datetime) else value
                        for label, value in zip(labels, row, strict=True)
                    },
                    default=_json_default,
                    option=orjson.OPT_APPEND_NEWLINE,
                )
                for row in batch
            )


def _xlsx_value(value: object) -> str | float | None:
    if isinstance(value, datetime):
        return _iso(value)  # text: exactly what was stored, imported back as it is
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


async def _xlsx(labels: list[str], rows: Rows) -> Body:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    with tempfile.TemporaryDirectory(prefix="crm-export-") as folder:
        path = Path(folder) / "leads.xlsx"
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("Leads")
        sheet.append(labels)

        def add(batch: list[list[object]]) -> None:
            for row in batch:
                cells = []
                for value in row:
                    cell = WriteOnlyCell(sheet, value=_xlsx_value(value))
                    if isinstance(cell.value, str):
                        cell.data_type = "s"  # text, even when it starts with "="
                    cells.append(cell)
                sheet.append(cells)

        async with aclosing(rows):
            async for batch in rows:
                await asyncio.to_thread(add, batch)
        await asyncio.to_thread(workbook.save, path)
        with path.open("rb") as file:
            while chunk := file.read(XLSX_CHUNK):
                yield chunk
