"""The `crm` command: serve, mint tokens, seed demo data, export the schema."""

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


def serve(settings: Settings, args: argparse.Namespace) -> None:
    from playground import ensure_assets
    from server import create_app

    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)  # first: a configuration it refuses stops here (ConfigError)
    ensure_assets()  # GraphiQL's scripts: `npm ci` on the first start, a no-op after
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
    from schema.root import schema

    text = schema.as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(text)
        return
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)


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


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="crm", description="CRM leads GraphQL server (configured by CRM_* environment)"
    )
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve /graphql").set_defaults(run=serve)

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
