"""`crm import FILE` and `crm export`: the import and export services from the command line.

Both connect to the configured database like `crm seed-demo` (the embedded one belongs to
one process at a time: stop the server, or point both at one `MONGODB_URI`). `crm import`
runs the job in this process, with the same code as the server's runner, printing progress
to stderr and the report at the end; `crm export` writes the file to stdout.
"""

import argparse
import asyncio
import sys
from pathlib import Path

import orjson

from api.files import parse_filter, parse_order
from config import Settings
from models.database import Database
from models.import_job import ColumnMapping, ImportMatch, ImportMode
from services import exports, imports
from services.viewer import Viewer

CLI_VIEWER = Viewer(id="crm-cli", name="crm command line", email=None, role="admin")


class _FileUpload:
    def __init__(self, path: Path) -> None:
        self.file = path.open("rb")

    async def read(self, size: int = -1) -> bytes:
        return self.file.read(size)


def _mapping(items: list[str]) -> list[ColumnMapping]:
    mapping = []
    for item in items:
        column, equals, field = item.partition("=")
        if not equals:
            sys.exit(f"crm import: --map takes COLUMN=FIELD, not {item!r}")
        mapping.append(ColumnMapping(column=column, field=field))
    return mapping


async def _import(settings: Settings, args: argparse.Namespace) -> int:
    path = Path(args.file)
    database = Database(settings)
    await database.connect()
    try:
        upload = _FileUpload(path)
        try:
            job = await imports.start_import(
                CLI_VIEWER,
                file_name=path.name,
                upload=upload,
                max_bytes=settings.max_upload_bytes,
                mode=ImportMode[args.mode],
                match_on=[ImportMatch[name] for name in args.match or []],
                mapping=_mapping(args.map or []),
                dry_run=args.dry_run,
            )
        finally:
            upload.file.close()
        runner = imports.ImportRunner(settings.import_limits)

        def report_progress(done: int) -> None:
            total = job.total_rows or "?"
            print(f"\r{done}/{total} rows", end="", file=sys.stderr, flush=True)

        runner.after_writes = report_progress
        assert job.id is not None
        claimed = await runner.claim(job.id)
        assert claimed is not None
        job = claimed
        await runner.run(job)
        print(file=sys.stderr)
        done = await imports.get_job(CLI_VIEWER, str(job.id))
        print(
            f"import {done.id} {done.status.name}{' (dry run)' if done.dry_run else ''}: "
            f"{done.total_rows or 0} rows, {done.created} created, {done.updated} updated, "
            f"{done.unchanged} unchanged, {done.failed} failed"
        )
        if done.error:
            print(f"  {done.error}")
        if done.unknown_columns:
            print(f"  unknown columns (ignored): {', '.join(done.unknown_columns)}")
        page = await imports.list_errors(done, 20, None)
        for error in page.errors:
            where = error.column or error.field or ""
            print(f"  row {error.row} {where}: {error.message} ({error.value!r})")
        if page.has_next_page:
            print(f"  … {page.total_count} failed rows in all (GET /imports/{done.id}/errors.csv)")
        return 1 if done.error or done.failed else 0
    finally:
        await database.close()


def import_file(settings: Settings, args: argparse.Namespace) -> None:
    if not Path(args.file).is_file():
        sys.exit(f"crm import: no such file {args.file!r}")
    sys.exit(asyncio.run(_import(settings, args)))


async def _export(settings: Settings, args: argparse.Namespace) -> None:
    database = Database(settings)
    await database.connect()
    try:
        body = await exports.export_leads(
            CLI_VIEWER,
            args.format,
            filters=parse_filter(orjson.loads(args.filter) if args.filter else None),
            order=parse_order(orjson.loads(args.order) if args.order else None),
            fields=exports.columns(args.fields.split(",") if args.fields else None),
        )
        out = sys.stdout.buffer
        async for piece in body:
            out.write(piece)
        out.flush()
    finally:
        await database.close()


def export_leads(settings: Settings, args: argparse.Namespace) -> None:
    asyncio.run(_export(settings, args))


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    load = commands.add_parser("import", help="import leads from a CSV or XLSX file")
    load.add_argument("file", help="the CSV or XLSX file")
    load.add_argument("--mode", choices=[m.name for m in ImportMode], default="CREATE")
    load.add_argument(
        "--match",
        action="append",
        choices=[m.name for m in ImportMatch],
        help="UPDATE/UPSERT match key, repeatable, in order (default LEAD_ID then EMAIL)",
    )
    load.add_argument("--map", action="append", metavar="COLUMN=FIELD", help="explicit mapping")
    load.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    load.set_defaults(run=import_file)

    out = commands.add_parser("export", help="write leads as CSV, XLSX or JSON Lines to stdout")
    out.add_argument("--format", choices=exports.FORMATS, default="csv")
    out.add_argument("--filter", help='a LeadFilter as JSON, e.g. \'{"status": ["NEW"]}\'')
    out.add_argument("--order", help='e.g. \'{"field": "LEAD_ID", "direction": "ASC"}\'')
    out.add_argument("--fields", help="GraphQL field names, comma-separated (default all)")
    out.set_defaults(run=export_leads)
