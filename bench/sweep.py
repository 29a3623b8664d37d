"""The cost curve: every operation's p50 at several data-set sizes, and its ratio to the smallest.

    uv run python bench/sweep.py --sweep 200,5000,50000 [--requests 15] [--json FILE]
                                 [--repo PATH] [--markdown OLD.json]

For each size it seeds a fresh data set with `crm seed-demo` (bulk inserts: leads with emails,
calls, tasks, notes and timelines), starts `crm serve` on it and drives every operation from
one client, sequentially: the writes of the seed's flows (docs/seed.md), the lead page,
`leads(first: 50)` in every `LeadOrder` and with each `LeadFilter` field, `totalCount` and the
100th page. With MONGODB_URI the same curve on that MongoDB (database `crm_bench`, dropped
before and after).
`--repo PATH` serves another checkout (e.g. the code before a change) on data seeded by this one.
`--markdown OLD.json` prints a before/after table of OLD and this run.
"""

import argparse
import asyncio
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/sweep.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import jwt  # noqa: E402
import orjson  # noqa: E402

from bench.run import (  # noqa: E402
    LEAD_PAGE,
    LIST_FIELDS,
    Checkout,
    base_env,
    drop_database,
    machine,
    percentile,
    seed,
)
from bench.server_process import run_server  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PAGE = 50
ORDERS = ("CREATED_AT", "UPDATED_AT", "LEAD_ID", "ANNUAL_REVENUE", "FIRST_NAME")
FILTERS: dict[str, dict[str, Any]] = {
    "status": {"status": ["CONTACTED"]},
    "leadOwner": {"leadOwner": "Mia Chen"},
    "source": {"source": "Referral"},
    "industry": {"industry": "Finance"},
    "territory": {"territory": "EMEA"},
    "convertedToDeal": {"convertedToDeal": False},
    "createdAfter": {"createdAfter": "2000-01-01T00:00:00Z"},
    "createdBefore": {"createdBefore": "2100-01-01T00:00:00Z"},
    "search": {"search": "hopper"},  # one demo surname: its page grows with the data
    "search, full page": {"search": "example"},  # every demo lead's email: 50 at every size
}
LIST = (
    "query SweepList($first: Int!, $after: String, $filter: LeadFilter, $orderBy: LeadOrder) {"
    " leads(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {"
    f" nodes {{ {LIST_FIELDS} }} pageInfo {{ endCursor hasNextPage }} }} }}"
)
TOTAL = "query SweepTotal($filter: LeadFilter) { leads(first: 0, filter: $filter) { totalCount } }"
LEAD = "lead { id status updatedAt }"
CREATE_LEAD = (
    "mutation SweepCreate($input: CreateLeadInput!) { createLead(input: $input) "
    "{ lead { id leadId } } }"
)
UPDATE_LEAD = (
    "mutation SweepUpdate($leadId: String!, $input: UpdateLeadInput!) {"
    f" updateLead(leadId: $leadId, input: $input) {{ {LEAD} }} }}"
)
UPDATE_STATUS = (
    "mutation SweepStatus($leadId: String!, $status: LeadStatus!) {"
    f" updateLeadStatus(leadId: $leadId, status: $status) {{ {LEAD} }} }}"
)
SEND_EMAIL = (
    "mutation SweepEmail($leadId: String!, $input: SendEmailInput!) {"
    f" sendEmail(leadId: $leadId, input: $input) {{ email {{ id }} {LEAD} }} }}"
)
LOG_CALL = (
    "mutation SweepCall($leadId: String!, $input: LogCallInput!) {"
    f" logCall(leadId: $leadId, input: $input) {{ call {{ id }} {LEAD} }} }}"
)
CREATE_TASK = (
    "mutation SweepTask($leadId: String!, $input: CreateTaskInput!) {"
    f" createTask(leadId: $leadId, input: $input) {{ task {{ id }} {LEAD} }} }}"
)
CREATE_NOTE = (
    "mutation SweepNote($leadId: String!, $input: CreateNoteInput!) {"
    f" createNote(leadId: $leadId, input: $input) {{ note {{ id }} {LEAD} }} }}"
)
CONVERT = (
    "mutation SweepConvert($leadId: String!) {"
    f" convertLeadToDeal(leadId: $leadId) {{ deal {{ id dealId }} {LEAD} }} }}"
)
DELETE = "mutation SweepDelete($leadId: String!) { deleteLead(leadId: $leadId) { leadId } }"
STATUSES = ("CONTACTED", "NURTURE", "QUALIFIED", "UNQUALIFIED", "JUNK", "NEW")

Request = tuple[str, dict[str, Any]]
# name → (make the n-th request from a fresh lead id or a random one, whether it uses up its lead)
Maker = Callable[[int, str], Request]


def list_request(order: str, direction: str, filters: dict[str, Any] | None = None) -> Maker:
    variables = {"first": PAGE, "orderBy": {"field": order, "direction": direction}}
    if filters:
        variables["filter"] = filters
    return lambda n, lead: (LIST, variables)


def operations() -> dict[str, tuple[Maker, bool]]:
    ops: dict[str, tuple[Maker, bool]] = {
        "createLead": (
            lambda n, lead: (
                CREATE_LEAD,
                {
                    "input": {
                        "firstName": "Sweep",
                        "lastName": f"Lead{n}",
                        "email": f"sweep.{n}.{secrets.token_hex(4)}@bench.example",
                        "organization": "Globex",
                        "annualRevenue": 250_000.0,
                    }
                },
            ),
            False,
        ),
        "updateLead": (
            lambda n, lead: (UPDATE_LEAD, {"leadId": lead, "input": {"jobTitle": f"CTO {n}"}}),
            False,
        ),
        "updateLeadStatus": (
            lambda n, lead: (UPDATE_STATUS, {"leadId": lead, "status": STATUSES[n % 6]}),
            False,
        ),
        "sendEmail": (
            lambda n, lead: (
                SEND_EMAIL,
                {"leadId": lead, "input": {"subject": f"Sweep {n}", "body": "Hello."}},
            ),
            False,
        ),
        "logCall": (
            lambda n, lead: (LOG_CALL, {"leadId": lead, "input": {"duration": 60 + n}}),
            False,
        ),
        "createTask": (
            lambda n, lead: (CREATE_TASK, {"leadId": lead, "input": {"title": f"Call {n}"}}),
            False,
        ),
        "createNote": (
            lambda n, lead: (CREATE_NOTE, {"leadId": lead, "input": {"content": f"Note {n}"}}),
            False,
        ),
        "lead page": (lambda n, lead: (LEAD_PAGE, {"leadId": lead}), False),
    }
    for order in ORDERS:
        for direction in ("DESC", "ASC"):
            ops[f"leads {order} {direction}"] = (list_request(order, direction), False)
    for name, value in FILTERS.items():
        ops[f"leads filter {name}"] = (list_request("CREATED_AT", "DESC", value), False)
    ops["totalCount"] = (lambda n, lead: (TOTAL, {}), False)
    ops["totalCount status"] = (lambda n, lead: (TOTAL, {"filter": FILTERS["status"]}), False)
    # Last: they use up the leads they touch (one conversion per lead, then deletes).
    ops["convertLeadToDeal"] = (lambda n, lead: (CONVERT, {"leadId": lead}), True)
    ops["deleteLead"] = (lambda n, lead: (DELETE, {"leadId": lead}), True)
    return ops


async def post(client: httpx.AsyncClient, url: str, request: Request) -> dict[str, Any]:
    query, variables = request
    payload = orjson.dumps({"query": query, "variables": variables})
    response = await client.post(url, content=payload)
    body: dict[str, Any] = orjson.loads(response.content)
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
    return body


async def hundredth_page_cursor(client: httpx.AsyncClient, url: str, leads: int) -> str | None:
    """The cursor before the 100th page of 50 (or the last full page of a smaller set)."""
    target = min(99 * PAGE, max(leads - PAGE, 0))
    cursor, seen = None, 0
    while seen < target:
        step = min(100, target - seen)
        variables = {"first": step, "after": cursor}
        body = await post(client, url, (LIST, variables))
        cursor = body["data"]["leads"]["pageInfo"]["endCursor"]
        seen += step
    return cursor


async def measure(
    base_url: str, secret: str, leads: list[str], requests: int, warmup: int
) -> dict[str, dict[str, Any]]:
    token = jwt.encode(
        {
            "sub": "bench",
            "name": "Sweep Runner",
            "role": "admin",
            "exp": datetime.now(UTC) + timedelta(hours=6),
        },
        secret,
        algorithm="HS256",
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = f"{base_url}/graphql"
    rng = random.Random(7)
    fresh = iter(rng.sample(leads, len(leads)))  # each "uses up" operation gets its own leads
    results: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(headers=headers, timeout=600) as client:
        cursor = await hundredth_page_cursor(client, url, len(leads))
        ops = operations()
        ops["100th page"] = (
            lambda n, lead: (LIST, {"first": PAGE, "after": cursor}),
            False,
        )
        for name, (make, uses_up) in ops.items():
            latencies: list[float] = []
            for n in range(warmup + requests):
                lead = next(fresh) if uses_up else rng.choice(leads)
                started = time.perf_counter()
                await post(client, url, make(n, lead))
                if n >= warmup:
                    latencies.append((time.perf_counter() - started) * 1000)
            latencies.sort()
            results[name] = {"p50": percentile(latencies, 0.5), "max": latencies[-1]}
            print(f"  {name:<32} p50 {results[name]['p50']:8.1f} ms", file=sys.stderr)
    return results


def run_size(args: argparse.Namespace, checkout: Checkout, size: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="crm-sweep-"))
    seed_args = argparse.Namespace(
        db_name=args.db_name,
        jwt_secret=args.jwt_secret,
        mongodb_uri=args.mongodb_uri,
        env=[],
        leads=size,
        seed=1,
        verbose=args.verbose,
    )
    env = base_env(seed_args, work / "data")
    try:
        if args.mongodb_uri:
            drop_database(seed_args)
        leads, seeding = seed(seed_args, env, work)
        print(f"{size} leads seeded in {seeding:.1f} s", file=sys.stderr)
        started = time.perf_counter()
        with run_server(checkout.serve_command(), env, work, stop_timeout=20.0) as server:
            start_seconds = time.perf_counter() - started
            print(f"server ready in {start_seconds:.1f} s", file=sys.stderr)
            operations = asyncio.run(
                measure(server.base_url, args.jwt_secret, leads, args.requests, args.warmup)
            )
        return {
            "leads": size,
            "seeding_seconds": seeding,
            "leads_per_second": size / seeding,
            "server_start_seconds": start_seconds,
            "operations": operations,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.mongodb_uri:
            drop_database(seed_args)


def table(document: dict[str, Any]) -> str:
    runs = document["runs"]
    sizes = [run["leads"] for run in runs]
    head = ["operation", *(f"{size} p50 ms" for size in sizes), *(f"x{s}" for s in sizes[1:])]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for name in runs[0]["operations"]:
        p50s = [run["operations"].get(name, {}).get("p50") for run in runs]
        ratios = [f"{p / p50s[0]:.2f}" if p and p50s[0] else "n/a" for p in p50s[1:]]
        cells = [f"{p:.1f}" if p is not None else "n/a" for p in p50s]
        lines.append(" | ".join([name, *cells, *ratios]))
    for key, label in (
        ("seeding_seconds", "seeding s"),
        ("leads_per_second", "seeding leads/s"),
        ("server_start_seconds", "server start s"),
    ):
        cells = [f"{run[key]:.1f}" for run in runs]
        lines.append(" | ".join([label, *cells, *("" for _ in sizes[1:])]))
    return "\n".join(f"| {line} |" for line in lines)


def before_after(old: dict[str, Any], new: dict[str, Any]) -> str:
    """p50 before → after per size the two runs share."""
    sizes = [r["leads"] for r in new["runs"] if r["leads"] in {o["leads"] for o in old["runs"]}]
    old_runs = {run["leads"]: run for run in old["runs"]}
    new_runs = {run["leads"]: run for run in new["runs"]}
    by_size = [(old_runs[size], new_runs[size]) for size in sizes]
    head = ["operation", *(f"{s}: before → after ms" for s in sizes)]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for name in new["runs"][0]["operations"]:
        cells = []
        for before, after in by_size:
            a = before["operations"].get(name, {}).get("p50")
            b = after["operations"].get(name, {}).get("p50")
            cells.append(f"{a:.1f} → {b:.1f}" if a is not None and b is not None else "n/a")
        lines.append(" | ".join([name, *cells]))
    return "\n".join(f"| {line} |" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", default="200,5000,50000", help="sizes (200,5000,50000)")
    parser.add_argument("--requests", type=int, default=15, help="measured per operation (15)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured first requests (2)")
    parser.add_argument("--repo", type=Path, default=None, help="serve another checkout")
    parser.add_argument("--db-name", default="crm_bench", help="with MONGODB_URI (dropped!)")
    parser.add_argument("--json", type=Path, default=None, help="results file")
    parser.add_argument("--markdown", type=Path, default=None, help="earlier results: before/after")
    parser.add_argument("--verbose", action="store_true", help="show seeding progress")
    args = parser.parse_args(argv)
    if "bench" not in args.db_name:
        parser.error("--db-name must contain 'bench': it is dropped before and after the run")
    sizes = [int(size) for size in args.sweep.split(",")]
    args.mongodb_uri = os.environ.get("MONGODB_URI") or None
    args.jwt_secret = secrets.token_urlsafe(32)
    checkout = Checkout(args.repo.resolve() if args.repo else ROOT)
    document: dict[str, Any] = {
        "format": 1,
        "started_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "target": checkout.describe(),
        "engine": "mongodb" if args.mongodb_uri else "embedded",
        "requests": args.requests,
        "runs": [],
    }
    path = args.json or RESULTS / f"sweep-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        document["runs"].append(run_size(args, checkout, size))
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    print(table(document))
    if args.markdown:
        print()
        print(before_after(orjson.loads(args.markdown.read_bytes()), document))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
