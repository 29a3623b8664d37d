"""The `crm` command: serve, build the playground, mint tokens, seed demo data, export the
schema."""

import argparse
import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from api.auth import TokenService
from config import ConfigError, Settings
from observability.logs import configure_logging

SCHEMA_FILE = Path(__file__).resolve().parent / "schema.graphql"
# The lead field catalog as a table for people, written beside the schema.
LEAD_FIELDS_FILE = Path(__file__).resolve().parent / "docs" / "lead-fields.md"


def serve(settings: Settings, args: argparse.Namespace) -> None:
    import playground
    from server import create_app

    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)  # first: a configuration it refuses stops here (ConfigError)
    if settings.mongodb_uri is None:
        from models.embedded_engine import check_engine_version

        check_engine_version()  # a wrong mongoeco: one line here, not a failed lifespan
    # Serving never builds: GraphiQL's files come from `crm build-playground` (or the image).
    if not playground.assets_installed():
        playground.log.warning(
            "GraphiQL is not built (the /graphql page says so; the API works): %s",
            playground.INSTALL_HINT.format(root=playground.ROOT),
        )
    # Uvicorn logs through our handler; the access log is ours (observability.request_id).
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        ws_max_size=settings.max_body_bytes,  # a WebSocket message: the same limit as a body
        # The C event loop and HTTP parser (uvicorn[standard]); named so a missing one fails.
        loop="uvloop",
        http="httptools",
    )


def build_playground(settings: Settings, args: argparse.Namespace) -> None:
    import playground

    configure_logging("text", settings.log_level)  # npm's failure output, readable
    if not playground.ensure_assets():
        hint = playground.INSTALL_HINT.format(root=playground.ROOT)
        sys.exit(f"crm build-playground: GraphiQL's files are not built (see above); {hint}")
    print(f"GraphiQL's files are built in {playground.ROOT / 'node_modules'}", file=sys.stderr)


def token(settings: Settings, args: argparse.Namespace) -> None:
    print(
        TokenService(settings).mint(
            subject=args.sub,
            name=args.name,
            email=args.email,
            role=args.role,
            ttl=timedelta(hours=args.hours),
        )
    )


def export_schema(settings: Settings, args: argparse.Namespace) -> None:
    from schema.fields import catalog_markdown
    from schema.root import schema

    text = schema.as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(text)
        return
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    LEAD_FIELDS_FILE.write_text(catalog_markdown(schema._schema), encoding="utf-8")
    print(f"wrote {LEAD_FIELDS_FILE}", file=sys.stderr)


def seed_demo(settings: Settings, args: argparse.Namespace) -> None:
    from models.database import Database, DataDirInUse
    from services.demo import ProgressBar, add_demo_leads
    from services.sequence import format_id

    async def seed() -> range:
        database = Database(settings)
        await database.connect()
        try:
            progress = ProgressBar(args.leads, "leads")
            return await add_demo_leads(args.leads, random_seed=args.seed, progress=progress)
        finally:
            await database.close()

    try:
        numbers = asyncio.run(seed())
    except DataDirInUse as error:
        sys.exit(f"crm seed-demo: {error}")
    if numbers:
        print(f"added {format_id('LEAD', numbers[0])} … {format_id('LEAD', numbers[-1])}")


def migrate(settings: Settings, args: argparse.Namespace) -> None:
    from models.database import Database, DataDirInUse
    from services.migration import migrate as run_migration

    configure_logging("text", settings.log_level)  # progress lines, readable

    async def run() -> None:
        database = Database(settings)
        await database.connect()
        try:
            report = await run_migration()
        finally:
            await database.close()
        print(f"migration done: {report.total} documents changed in {report.seconds:.2f} s")
        for reason in report.skipped:
            print(f"  skipped {reason}")

    try:
        asyncio.run(run())
    except DataDirInUse as error:
        sys.exit(f"crm migrate: {error}")


def doctor(settings: Settings, args: argparse.Namespace) -> None:
    from models.database import Database, DataDirInUse
    from services.doctor import pending_migration, unreadable_documents

    async def run() -> int:
        database = Database(settings)
        await database.connect()
        found = 0
        try:
            async for finding in unreadable_documents():
                found += 1
                print(f"unreadable: {finding}")
            for step, count in (await pending_migration()).items():
                print(f"not migrated yet: {count} documents without {step} (run `crm migrate`)")
        finally:
            await database.close()
        return found

    try:
        found = asyncio.run(run())
    except DataDirInUse as error:
        sys.exit(f"crm doctor: {error}")
    print(f"{found} unreadable documents" if found else "every document can be read")
    if found:
        sys.exit(1)


def duplicates(settings: Settings, args: argparse.Namespace) -> None:
    """`crm duplicates`: scan every lead for groups of duplicates (services/search.py's rules),
    one group per line: its lead ids and the rules that joined them (`--json`: JSON lines)."""
    import json

    from models.database import Database, DataDirInUse
    from services.search import scan_duplicates
    from services.viewer import Viewer

    operator = Viewer(id="cli", name="crm duplicates", email=None, role="admin")

    async def run() -> int:
        database = Database(settings)
        await database.connect()
        try:
            groups = await scan_duplicates(operator)
        finally:
            await database.close()
        for group in groups:
            if args.json:
                print(json.dumps({"leadIds": group.lead_ids, "rules": group.rules}))
            else:
                print(f"{', '.join(group.lead_ids)}  ({', '.join(group.rules)})")
        return len(groups)

    try:
        found = asyncio.run(run())
    except DataDirInUse as error:
        sys.exit(f"crm duplicates: {error}")
    print(f"{found} groups of duplicates" if found else "no duplicates found", file=sys.stderr)


def backup(settings: Settings, args: argparse.Namespace) -> None:
    """`crm backup FILE`: a consistent copy of the embedded database, taken while the server
    runs (SQLite's online backup reads one snapshot; writers carry on)."""
    import sqlite3

    if settings.mongodb_uri:
        sys.exit("crm backup: copies the embedded database; for MONGODB_URI use mongodump")
    source, target = settings.data_dir / "crm.sqlite3", Path(args.file)
    if not source.exists():
        sys.exit(f"crm backup: no embedded database at {source}")
    if target.exists():
        sys.exit(f"crm backup: {target} exists; choose a new file")
    partial = target.with_name(target.name + ".partial")
    with sqlite3.connect(source) as reader, sqlite3.connect(partial) as copy:
        reader.backup(copy)
    reader.close()
    copy.close()
    partial.replace(target)  # a FILE that exists is a complete copy
    print(f"backed up {source} to {target}")


def api_key(settings: Settings, args: argparse.Namespace) -> None:
    """`crm api-key create|list|revoke`: the same services as the GraphQL mutations, run as
    an administrator at the command line."""
    from datetime import UTC, datetime

    from models.database import Database, DataDirInUse
    from services import api_keys
    from services.errors import DomainError
    from services.viewer import Viewer

    operator = Viewer(id="cli", name="crm api-key", email=None, role="admin")

    async def run() -> None:
        database = Database(settings)
        await database.connect()
        try:
            if args.action == "create":
                expires = None
                if args.days is not None:
                    expires = datetime.now(UTC) + timedelta(days=args.days)
                key, secret = await api_keys.create_api_key(operator, args.name, args.role, expires)
                print(f"created API key {key.id} ({key.name}, role {key.role})", file=sys.stderr)
                print("the secret is shown this once; send it as 'Authorization: Bearer <it>':")
                print(secret)
            elif args.action == "list":
                for key in await api_keys.list_api_keys(operator):
                    state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                    expires_at = f"{key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else "never"
                    used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
                    print(
                        f"{key.id}  {key.prefix}…  {key.role:<8} {state:<18} "
                        f"expires {expires_at:<16} used {used:<16} {key.name}"
                    )
            else:
                key = await api_keys.revoke_api_key(operator, args.id)
                print(f"revoked API key {key.id} ({key.name})")
        finally:
            await database.close()

    try:
        asyncio.run(run())
    except DataDirInUse as error:
        sys.exit(f"crm api-key: {error}")
    except DomainError as error:
        sys.exit(f"crm api-key {args.action}: {error.message}")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="crm", description="CRM leads GraphQL server (configured by CRM_* environment)"
    )
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve /graphql").set_defaults(run=serve)
    commands.add_parser(
        "build-playground",
        help="install GraphiQL's pinned browser files (npm ci; needs Node.js with npm)",
    ).set_defaults(run=build_playground)

    mint = commands.add_parser("token", help="print a bearer token signed with this config")
    mint.add_argument("--sub", default="script", help="user id (the token's sub)")
    mint.add_argument("--name", default="Script User", help="display name (the `by` of entries)")
    mint.add_argument("--email", default=None)
    mint.add_argument("--role", default="admin")
    mint.add_argument("--hours", type=float, default=12.0, help="lifetime")
    mint.set_defaults(run=token)

    demo = commands.add_parser(
        "seed-demo", help="add demo leads with emails, calls, tasks, notes and timelines"
    )
    demo.add_argument("--leads", type=int, default=100, help="how many leads (default 100)")
    demo.add_argument("--seed", type=int, default=None, help="random seed, for repeatable data")
    demo.set_defaults(run=seed_demo)

    commands.add_parser(
        "migrate", help="backfill what this server adds to existing documents (runs at start too)"
    ).set_defaults(run=migrate)
    commands.add_parser(
        "doctor", help="list every stored document the server cannot read, and why"
    ).set_defaults(run=doctor)

    scan = commands.add_parser(
        "duplicates", help="scan every lead for groups of duplicates (merge them with mergeLeads)"
    )
    scan.add_argument("--json", action="store_true", help="one JSON object per group")
    scan.set_defaults(run=duplicates)
    keys = commands.add_parser("api-key", help="create, list or revoke API keys for scripts")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="create a key; prints its secret once")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument(
        "--role", required=True, choices=("admin", "manager", "sales", "viewer"), help="its role"
    )
    create.add_argument("--days", type=float, default=None, help="expires after (default never)")
    key_actions.add_parser("list", help="every key (never its secret)")
    revoke = key_actions.add_parser("revoke", help="revoke a key: it fails from the next request")
    revoke.add_argument("id", help="the key's id (from `crm api-key list`)")
    keys.set_defaults(run=api_key)

    # `crm import FILE`, `crm export` (api/cli_files.py).
    from api.cli_files import add_commands

    add_commands(commands)

    copy = commands.add_parser("backup", help="copy the embedded database, even while serving")
    copy.add_argument("file", help="the new file to write (restore: README, Embedded engine)")
    copy.set_defaults(run=backup)

    export = commands.add_parser("export-schema", help="write the GraphQL schema (SDL)")
    export.add_argument("output", nargs="?", default=str(SCHEMA_FILE), help="file, or - for stdout")
    export.set_defaults(run=export_schema)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    # A configuration the server refuses is one clear line on stderr and exit status 1.
    try:
        settings = Settings()
    except ValidationError as error:
        sys.exit(f"crm {args.command}: invalid configuration: {error}")
    try:
        args.run(settings, args)
    except ConfigError as error:
        sys.exit(f"crm {args.command}: {error}")


if __name__ == "__main__":
    main()
