"""Import and export throughput: realistic files of 1k, 10k, 100k leads, rows/s and peak RSS.

    uv run python bench/import.py [--sizes 1000,10000,100000] [--engine adapted|stock]
                                  [--format csv|xlsx] [--out bench/results/import.md]
                                  [--keep DIR] [--export-format csv|xlsx|jsonl]

Each size runs in a fresh process (so its peak RSS is its own) on a fresh embedded database
served by a process of its own (`--engine-process`, the default: the RSS measured is the
app's alone, the engine's is reported beside it; `--no-engine-process` runs it in the app's
process, as `crm serve` does), or on `MONGODB_URI` when set (a database
`crm_bench_import_<n>`, dropped afterwards). The
process generates the file (names, emails with `+tags` and case, phones in many formats,
companies, revenue, statuses, 2 % bad rows), imports it with the server's own runner
(services/imports.py, CREATE mode), then exports every lead (CSV, or `--export-format`) to a
null sink. It reports import rows/s, export rows/s and peak RSS (`ru_maxrss`: the engine runs
in the same process when embedded, so its memory counts too).

`--keep DIR` keeps each size's database in `DIR/<size>` (embedded) or `crm_bench_import_<n>`
(MONGODB_URI); a size already imported there is not imported again, only exported: the way to
measure an export change quickly (the import figures are then left out).
"""

import argparse
import asyncio
import csv
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIRST = ["James", "Mary", "José", "Zoë", "Aiko", "Liam", "Olivia", "Noah", "Emma", "Ødegaard"]
LAST = ["Smith", "Müller", "García", "Nguyen", "O'Brien", "Kowalski", "Rossi", "Dubois", "Kim"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Ent."]
SOURCES = ["Website", "Referral", "Trade Show", "Cold Call", "LinkedIn"]
STATUSES = ["New", "Contacted", "Nurture", "Qualified", "Unqualified", "Junk"]
HEADER = [
    "First Name", "Last Name", "E-mail", "Phone", "Company", "Job Title", "Lead Source",
    "Lead Status", "Annual Revenue", "Employees", "Region", "Notes",
]  # fmt: skip


def generate(rows: int, path: Path, file_format: str, seed: int = 7) -> None:
    """A CRM export as users upload it: catalog aliases as headers, messy but mostly valid."""
    rng = random.Random(seed)
    records: list[list[object]] = [list(HEADER)]
    for n in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{n}@example.com"
        if rng.random() < 0.1:
            email = email.upper().replace("@", "+crm@")
        phone = rng.choice(["+1 415 555 {:04d}", "(415) 555-{:04d}", "415.555.{:04d}"]).format(
            n % 10000
        )
        revenue: object = rng.randint(10_000, 50_000_000)
        if rng.random() < 0.02:  # bad rows: a bad email or a negative revenue
            if rng.random() < 0.5:
                email = "not-an-email"
            else:
                revenue = -1
        records.append(
            [
                first, last, email, phone, rng.choice(COMPANIES), "Buyer", rng.choice(SOURCES),
                rng.choice(STATUSES), revenue, "50-200", "EMEA", "met at the fair",
            ]
        )  # fmt: skip
    if file_format == "xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("Leads")
        for record in records:
            sheet.append(record)
        workbook.save(path)
        return
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(records)


def engine_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of the engine process so far, Linux only."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def engine_rss_mb(pid: int) -> int | None:
    """Peak RSS (VmHWM) of the engine process, Linux only."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


async def serve_engine(folder: Path, engine_name: str) -> None:
    """`--serve-engine`: the embedded engine alone; prints its URI, serves until killed."""
    from mongoeco.engines.sqlite import SQLiteEngine

    from models.database import EmbeddedMongo
    from models.embedded_engine import CrmSQLiteEngine

    engine = SQLiteEngine if engine_name == "stock" else CrmSQLiteEngine
    embedded = EmbeddedMongo(folder, engine=engine)
    print(await embedded.start(), flush=True)
    await asyncio.Event().wait()


async def one(
    rows: int,
    engine_name: str,
    file_format: str,
    engine_uri: str | None,
    keep: Path | None = None,
    export_format: str = "csv",
) -> dict[str, Any]:
    from config import Settings
    from models.database import Database, EmbeddedMongo
    from services import exports, imports
    from services.leads import LeadOrderField
    from services.pagination import Order
    from services.viewer import Viewer

    folder = keep / str(rows) if keep else Path(tempfile.mkdtemp(prefix="crm-bench-import-"))
    folder.mkdir(parents=True, exist_ok=True)
    imported = folder / "imported.json"
    reuse = keep is not None and imported.exists()
    source = folder / f"leads.{file_format}"
    if not reuse:
        generate(rows, source, file_format)
    uri = engine_uri or os.environ.get("MONGODB_URI")
    embedded = None
    if uri is None:
        from mongoeco.engines.sqlite import SQLiteEngine

        from models.embedded_engine import CrmSQLiteEngine

        engine = SQLiteEngine if engine_name == "stock" else CrmSQLiteEngine
        embedded = EmbeddedMongo(folder / "engine", engine=engine)  # where --serve-engine keeps it
        uri = await embedded.start()
    name = f"crm_bench_import_{rows}"
    settings = Settings(MONGODB_URI=uri, CRM_DB_NAME=name, CRM_DATA_DIR=folder / "app")
    database = Database(settings)
    await database.connect()
    viewer = Viewer(id="bench", name="Bench", email=None, role="admin")
    try:

        class Upload:
            def __init__(self) -> None:
                self.file = source.open("rb")

            async def read(self, size: int = -1) -> bytes:
                return self.file.read(size)

        report: dict[str, Any] = {}
        if reuse:
            report = json.loads(imported.read_text())
        else:
            started = time.perf_counter()
            job = await imports.start_import(
                viewer, file_name=source.name, upload=Upload(), max_bytes=1 << 31
            )
            runner = imports.ImportRunner(settings.import_limits)
            assert job.id is not None
            claimed = await runner.claim(job.id)
            assert claimed is not None
            await runner.run(claimed)
            import_seconds = time.perf_counter() - started
            done = await imports.get_job(viewer, str(job.id))
            report = {
                "status": done.status.name,
                "created": done.created,
                "failed": done.failed,
                "import_seconds": round(import_seconds, 2),
                "import_rows_per_s": round(rows / import_seconds),
            }
            if keep is not None:
                imported.write_text(json.dumps(report))

        started = time.perf_counter()
        exported = 0
        body = await exports.export_leads(
            viewer,
            export_format,
            filters={},
            order=Order(stored_field=LeadOrderField.CREATED_AT.value, descending=True),
            fields=exports.columns(None),
        )
        if export_format == "xlsx":
            async for _piece in body:
                pass
            exported = report["created"] + 1
        else:
            async for piece in body:
                exported += piece.count(b"\n")
            exported += export_format == "jsonl"  # no header line
        export_seconds = time.perf_counter() - started
    finally:
        dropped = embedded is None and engine_uri is None and keep is None
        if dropped and database.client is not None:
            await database.client.drop_database(name)
        await database.close()
        if embedded is not None:
            await embedded.stop()
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)  # the file and, in process, the engine
    where = "MONGODB_URI"
    if engine_uri is not None:
        where = f"embedded ({engine_name}), own process"
    elif embedded is not None:
        where = f"embedded ({engine_name}), in process"
    return {
        "rows": rows,
        "format": file_format,
        "engine": where,
        "engine_peak_rss_mb": None,
        **report,
        "import_seconds": None if reuse else report["import_seconds"],
        "import_rows_per_s": None if reuse else report["import_rows_per_s"],
        "export_format": export_format,
        "export_rows": exported - 1,
        "export_rows_per_s": round((exported - 1) / export_seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "app_cpu_seconds": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_utime
            + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
            1,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--engine", choices=("adapted", "stock"), default="adapted")
    parser.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("--engine-process", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--keep", type=Path, default=None, help="keep/reuse databases here")
    parser.add_argument("--export-format", choices=("csv", "xlsx", "jsonl"), default="csv")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve-engine", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_engine is not None:
        asyncio.run(serve_engine(args.serve_engine, args.engine))
        return
    if args.one is not None:
        import logging

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        server = None
        uri = None
        result: dict[str, Any] = {}
        if args.engine_process and not os.environ.get("MONGODB_URI"):
            folder = str(args.keep.resolve() / str(args.one) / "engine") if args.keep else None
            folder = folder or tempfile.mkdtemp(prefix="crm-bench-engine-")
            command = [sys.executable, __file__, "--serve-engine", folder, "--engine", args.engine]
            server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            assert server.stdout is not None
            uri = server.stdout.readline().strip()
        try:
            keep = args.keep.resolve() if args.keep else None
            result = asyncio.run(
                one(args.one, args.engine, args.format, uri, keep, args.export_format)
            )
        finally:
            if server is not None:
                result["engine_peak_rss_mb"] = engine_rss_mb(server.pid)
                result["engine_cpu_seconds"] = engine_cpu_seconds(server.pid)
                server.kill()
                server.wait()
                if folder is not None and not args.keep:
                    shutil.rmtree(folder, ignore_errors=True)  # the engine's database
        print(json.dumps(result))
        return
    results = []
    for size in (int(size) for size in args.sizes.split(",")):
        command = [sys.executable, __file__, "--one", str(size), "--engine", args.engine]
        command += ["--format", args.format, "--export-format", args.export_format]
        command += ["--keep", str(args.keep)] if args.keep else []
        command += ["--engine-process" if args.engine_process else "--no-engine-process"]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    table = io.StringIO()
    table.write(
        "| rows | file | database | import s | import rows/s | created | failed | export "
        "| export rows/s | app peak RSS MB | engine peak RSS MB | app CPU s | engine CPU s |\n"
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- "
        "| ---: | ---: | ---: | ---: | ---: |\n"
    )
    for r in results:
        table.write(
            f"| {r['rows']} | {r['format']} | {r['engine']} | {r['import_seconds'] or '-'} "
            f"| {r['import_rows_per_s'] or '-'} | {r['created']} | {r['failed']} "
            f"| {r['export_format']} | {r['export_rows_per_s']} | {r['peak_rss_mb']} "
            f"| {r['engine_peak_rss_mb'] or '-'} | {r['app_cpu_seconds']} "
            f"| {r.get('engine_cpu_seconds') or '-'} |\n"
        )
    print(table.getvalue())
    if args.out:
        args.out.write_text(table.getvalue())


if __name__ == "__main__":
    main()
