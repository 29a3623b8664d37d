"""Reading an uploaded table (CSV or XLSX) row by row, and refusing hostile files up front.

`inspect` reads the whole file once before anything is written: it decides the format from
the bytes (not the name), the CSV encoding and delimiter, counts the rows, and checks every
limit (`config.ImportLimits`). Whatever it refuses (`FileRejected`, with a message for the
user) is refused before the first lead is written: nothing half-written. `read_rows` then
reads the same file again, streaming, as `(row number, cells)` with the header as row 1.

- CSV: UTF-8 (a BOM is dropped), UTF-16/32 with a BOM, else Windows-1252 (Latin-1 when it
  has bytes Windows-1252 leaves undefined). A file with both UTF-8 and non-UTF-8 lines is
  refused (mixed encodings). The delimiter is the one of `, ; TAB |` the header uses most.
- XLSX: the first worksheet, read by openpyxl in read-only mode (streaming). Before it is
  opened the ZIP directory is checked: too much unpacked data, or a part that unpacks to
  more than `max_xlsx_ratio` times its size, is a zip bomb.
- A file whose bytes say something else than its name (an XLSX named .csv, a CSV or an old
  .xls named .xlsx, any binary file) is refused, as are files without a header row.

Rows whose cells are all blank are skipped (their number is kept by the rows after them).
"""

import codecs
import csv
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from config import ImportLimits

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 .xls
DELIMITERS = (",", ";", "\t", "|")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
# Bytes Windows-1252 does not define: a file with them is read as Latin-1.
CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
# Binary content: NUL and other C0 controls except tab, line feed, carriage return, form feed.
BINARY = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
ZIP_MEMBER_RATIO_FLOOR = 1024 * 1024  # parts smaller than this unpacked are never a bomb
MAX_ZIP_MEMBERS = 10_000
# A spreadsheet escapes a formula-looking text with a leading apostrophe (exports do too).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class FileRejected(Exception):
    """A file the import refuses as a whole; the message tells the user why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class TableInfo:
    format: str
    """`csv` or `xlsx`."""
    encoding: str | None
    delimiter: str | None
    header: list[str]
    total_rows: int
    """Data rows that are not blank."""


def unescape(cell: str) -> str:
    """A cell as the user meant it: `'=SUM(1)` (escaped by an export) is `=SUM(1)`."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in FORMULA_START:
        return cell[1:]
    return cell


def escape(cell: str) -> str:
    """A text cell a spreadsheet would run as a formula, made inert (OWASP CSV injection)."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def _detect_format(path: Path, file_name: str) -> str:
    with path.open("rb") as file:
        head = file.read(8192)
    name = file_name.lower()
    if not head:
        raise FileRejected("The file is empty")
    if head.startswith(OLE2_MAGIC):
        raise FileRejected(
            "The file is an Excel 97-2003 workbook (.xls), which is not supported: "
            "save it as .xlsx or CSV"
        )
    if head.startswith(ZIP_MAGIC):
        if name.endswith(CSV_SUFFIXES):
            raise FileRejected(
                f"{file_name!r} is named like a CSV file but is a ZIP archive (an XLSX "
                "workbook?): rename it to .xlsx, or export it as CSV"
            )
        return "xlsx"
    if name.endswith(XLSX_SUFFIXES):
        raise FileRejected(
            f"{file_name!r} is named like an XLSX workbook but is not one (not a ZIP "
            "archive): rename it to .csv if it is CSV"
        )
    if not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and BINARY.search(head):
        raise FileRejected("The file is not a CSV or XLSX file (it has binary content)")
    return "csv"


def _detect_encoding(path: Path) -> str:
    """The CSV's encoding; FileRejected when its lines mix UTF-8 with another encoding."""
    with path.open("rb") as file:
        head = file.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            return "utf-32"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        file.seek(0)
        utf8_line = legacy_line = 0
        undefined = False
        for number, line in enumerate(file, start=1):
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                legacy_line = legacy_line or number
                undefined = undefined or CP1252_UNDEFINED.search(line) is not None
            else:
                utf8_line = utf8_line or number
            if utf8_line and legacy_line:
                raise FileRejected(
                    f"The file mixes text encodings: line {utf8_line} is UTF-8 but line "
                    f"{legacy_line} is not. Save the whole file as UTF-8 and upload it again"
                )
    if legacy_line:
        return "latin-1" if undefined else "cp1252"
    return "utf-8"


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with path.open(encoding=encoding, newline="") as file:
        header = file.readline()
    best, count = ",", 0
    for candidate in DELIMITERS:
        found = _count_outside_quotes(header, candidate)
        if found > count:
            best, count = candidate, found
    return best


def _count_outside_quotes(line: str, character: str) -> int:
    inside, count = False, 0
    for char in line:
        if char == '"':
            inside = not inside
        elif char == character and not inside:
            count += 1
    return count


def _cell_text(value: Any) -> str:
    """An XLSX cell's value as the text a CSV export of it would have."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _check_zip(path: Path, limits: ImportLimits) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise FileRejected("The XLSX file is damaged (not a readable ZIP archive)") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise FileRejected(f"The XLSX file has {len(members)} parts: not a workbook")
    unpacked = sum(member.file_size for member in members)
    if unpacked > limits.max_xlsx_uncompressed_bytes:
        raise FileRejected(
            f"The XLSX file unpacks to {unpacked} bytes, more than the limit of "
            f"{limits.max_xlsx_uncompressed_bytes} (a zip bomb?)"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > ZIP_MEMBER_RATIO_FLOOR and ratio > limits.max_xlsx_ratio:
            raise FileRejected(
                f"The XLSX part {member.filename!r} unpacks to {ratio:.0f} times its size "
                f"(a zip bomb?); the limit is {limits.max_xlsx_ratio}"
            )
    names = {member.filename for member in members}
    if "xl/workbook.xml" not in names:
        raise FileRejected("The file is a ZIP archive but not an XLSX workbook")


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    file = path.open("rb")  # a file, not a path: openpyxl would insist on an .xlsx name
    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
    except Exception as error:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        file.close()
        raise FileRejected(f"The XLSX workbook cannot be read: {type(error).__name__}") from None
    try:
        if not workbook.worksheets:
            raise FileRejected("The XLSX workbook has no worksheet")
        sheet = workbook.worksheets[0]
        try:
            for values in sheet.iter_rows(values_only=True):
                yield [_cell_text(value) for value in values]
        except FileRejected:
            raise
        except Exception as error:  # noqa: BLE001 - a damaged sheet part
            raise FileRejected(
                f"The XLSX worksheet cannot be read: {type(error).__name__}"
            ) from None
    finally:
        workbook.close()
        file.close()


def _csv_rows(
    path: Path, encoding: str, delimiter: str, limits: ImportLimits
) -> Iterator[list[str]]:
    if csv.field_size_limit() < limits.max_cell_chars + 1:
        csv.field_size_limit(limits.max_cell_chars + 1)
    try:
        with path.open(encoding=encoding, newline="") as file:
            yield from csv.reader(file, delimiter=delimiter)
    except csv.Error as error:
        raise FileRejected(f"The CSV file cannot be read: {error}") from None
    except UnicodeDecodeError:
        raise FileRejected(f"The file is not valid {encoding} text") from None


def _records(
    info_format: str, path: Path, encoding: str | None, delimiter: str | None, limits: ImportLimits
) -> Iterator[list[str]]:
    if info_format == "xlsx":
        return _xlsx_rows(path)
    assert encoding is not None
    assert delimiter is not None
    return _csv_rows(path, encoding, delimiter, limits)


def _checked(records: Iterator[list[str]], limits: ImportLimits) -> Iterator[tuple[int, list[str]]]:
    """Numbered rows (header = 1), blank ones left out, every limit enforced."""
    data_rows = 0
    for number, cells in enumerate(records, start=1):
        while cells and not cells[-1].strip():
            cells.pop()  # trailing blank cells (XLSX pads rows to the sheet's width)
        if not cells:
            continue
        if len(cells) > limits.max_columns:
            raise FileRejected(
                f"Row {number} has {len(cells)} columns, more than the limit of "
                f"{limits.max_columns}"
            )
        for cell in cells:
            if len(cell) > limits.max_cell_chars:
                raise FileRejected(
                    f"Row {number} has a cell of {len(cell)} characters, more than the "
                    f"limit of {limits.max_cell_chars}"
                )
        if number > 1:
            data_rows += 1
            if data_rows > limits.max_rows:
                raise FileRejected(
                    f"The file has more than {limits.max_rows} rows, the limit "
                    "(CRM_IMPORT_MAX_ROWS): split it"
                )
        yield number, cells


def inspect(path: Path, file_name: str, limits: ImportLimits) -> TableInfo:
    """Read the whole file once and check it; FileRejected for anything it will not import."""
    file_format = _detect_format(path, file_name)
    encoding = delimiter = None
    if file_format == "xlsx":
        _check_zip(path, limits)
    else:
        encoding = _detect_encoding(path)
        delimiter = _sniff_delimiter(path, encoding)
    header: list[str] | None = None
    total = 0
    for number, cells in _checked(_records(file_format, path, encoding, delimiter, limits), limits):
        if header is None:
            if number != 1 or not any(cell.strip() for cell in cells):
                raise FileRejected("The file has no header row (the first row names the columns)")
            header = [cell.strip().lstrip("\ufeff") for cell in cells]
            continue
        total += 1
    if header is None:
        raise FileRejected("The file is empty")
    return TableInfo(file_format, encoding, delimiter, header, total)


def read_rows(path: Path, info: TableInfo, limits: ImportLimits) -> Iterator[tuple[int, list[str]]]:
    """The data rows (not the header), numbered as in the file (the header is row 1)."""
    records = _records(info.format, path, info.encoding, info.delimiter, limits)
    for number, cells in _checked(records, limits):
        if number > 1:
            yield number, [unescape(cell) for cell in cells]
