"""The `crm` command: serve, mint tokens, seed demo data, export the schema."""

import argparse
import asyncio
import logging
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn

from config import Settings
from resolvers.auth import TokenService

SCHEMA_FILE = Path(__file__).resolve().parent / "schema.graphql"


def serve(settings: Settings, args: argparse.Namespace) -> None:
    from server import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


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
    from schema import schema

    text = schema.as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(text)
        return
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)


def seed_demo(settings: Settings, args: argparse.Namespace) -> None:
    from resolvers.services.demo import seed

    asyncio.run(seed(settings, leads=args.leads, random_seed=args.seed))


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
    args.run(Settings(), args)


if __name__ == "__main__":
    main()
