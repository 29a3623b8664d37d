"""Benchmark: a real `crm serve` on loopback, a seeded data set, concurrent keep-alive clients.

    uv run python bench/run.py [--leads 300] [--clients 8] [--seconds 10 | --requests N]
                               [--json FILE] [--compare OLD.json] [--repo PATH]

Per operation it reports requests/s, p50/p99 latency, MongoDB commands per request, the
driver-observed command time per request and the server process's CPU time per request
(and, with the embedded engine, the CPU time excluding the engine's threads). It also runs
the seed's "View Lead Details Flow" as five sequential requests against the same lead page
in one request, and reports the ratio. Results go to a JSON file for `--compare`.

The server runs with CRM_BENCH=1, which enables `GET /debug/stats` (command count, command
time, process CPU, embedded-engine CPU). A checkout without it (`--repo` on an older commit)
still gets throughput, latency and process CPU (read from /proc); the rest is n/a.
"""

import argparse
import asyncio
import os
import platform
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import jwt  # noqa: E402
import orjson  # noqa: E402

from bench.server_process import ServerProcess, run_server  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REQUEST_TIMEOUT = 120.0  # the embedded engine under 8 clients can take seconds per request
ADDED = re.compile(r"added (LEAD-\d+) … (LEAD-\d+)")

# --- the operations ----------------------------------------------------------------------

LIST_FIELDS = "id leadId fullName email organization status leadOwner createdAt activitiesCount"
NESTED_FIELDS = (
    "emails { id subject } calls { id duration } tasks { id title status } notes { id content }"
)
LEAD_SCALARS = (
    "id leadId salutation firstName lastName fullName email mobile organization website "
    "jobTitle industry source status gender noOfEmployees annualRevenue territory leadOwner "
    "createdAt createdBy updatedAt convertedToDeal activitiesCount"
)
# docs/api.md's Activity fields (no `id`: older checkouts lack it).
ACTIVITIES = "activities { type description by timestamp field oldValue newValue }"
DEAL = "deal { id dealId status dealOwner annualRevenue createdAt }"
EMAILS = "emails { id leadId from to cc bcc subject body timestamp status sentBy }"
CALLS = "calls { id leadId type duration from to phone timestamp status loggedBy }"
TASKS = (
    "tasks { id leadId title description status assignedTo dueDate priority "
    "createdAt createdBy updatedAt }"
)
NOTES = "notes { id leadId title content createdAt createdBy }"

LIST = f"query BenchList {{ leads(first: 50) {{ nodes {{ {LIST_FIELDS} }} totalCount }} }}"
LIST_NESTED = (
    "query BenchListNested { leads(first: 50) { "
    f"nodes {{ {LIST_FIELDS} {NESTED_FIELDS} }} totalCount }} }}"
)
LEAD_PAGE = (
    "query BenchLeadPage($leadId: String!) { lead(leadId: $leadId) { "
    f"{LEAD_SCALARS} {ACTIVITIES} {EMAILS} {CALLS} {TASKS} {NOTES} {DEAL} }} }}"
)
# The seed's View Lead Details Flow: GET /leads/{id}, then its emails, calls, tasks, notes.
SEED_FLOW = [
    "query SeedLead($leadId: String!) { lead(leadId: $leadId) { "
    f"{LEAD_SCALARS} {ACTIVITIES} {DEAL} }} }}",
    *(
        f"query Seed{name}($leadId: String!) {{ lead(leadId: $leadId) {{ id {part} }} }}"
        for name, part in (("Emails", EMAILS), ("Calls", CALLS), ("Tasks", TASKS), ("Notes", NOTES))
    ),
]
LEAD_RESULT = "lead { id status activitiesCount updatedAt }"
CREATE_LEAD = (
    "mutation BenchCreateLead($input: CreateLeadInput!) { createLead(input: $input) { "
    f"{LEAD_RESULT.replace('id status', 'id leadId status')} }} }}"
)
SEND_EMAIL = (
    "mutation BenchSendEmail($leadId: String!, $input: SendEmailInput!) { "
    f"sendEmail(leadId: $leadId, input: $input) {{ email {{ id status timestamp }} {LEAD_RESULT} }} }}"  # noqa: E501
)
UPDATE_STATUS = (
    "mutation BenchUpdateStatus($leadId: String!, $status: LeadStatus!) { "
    f"updateLeadStatus(leadId: $leadId, status: $status) {{ {LEAD_RESULT} }} }}"
)
STATUSES = ("CONTACTED", "NURTURE", "QUALIFIED", "UNQUALIFIED", "JUNK", "NEW")
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
COMPANIES = ("Acme Corp", "Globex", "Initech", "Hooli", "Pied Piper", "Cyberdyne")

Request = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    key: str
    label: str
    requests_per_op: int = 1

    def requests(self, rng: random.Random, leads: list[str], client: int, n: int) -> list[Request]:
        """The HTTP requests of the n-th run of this operation by one client, in order."""
        lead_id = rng.choice(leads)
        match self.key:
            case "list":
                return [(LIST, {})]
            case "list_nested":
                return [(LIST_NESTED, {})]
            case "lead_page":
                return [(LEAD_PAGE, {"leadId": lead_id})]
            case "seed_flow":
                return [(query, {"leadId": lead_id}) for query in SEED_FLOW]
            case "create_lead":
                first = rng.choice(FIRST_NAMES)
                lead = {
                    "firstName": first,
                    "lastName": f"Bench{client}x{n}",
                    "email": f"{first.lower()}.{client}.{n}.{rng.randrange(10**6)}@bench.example",
                    "mobile": f"+1-555-{rng.randint(1000, 9999)}",
                    "organization": rng.choice(COMPANIES),
                    "source": "Website",
                    "annualRevenue": float(rng.randrange(100_000, 5_000_000, 50_000)),
                }
                return [(CREATE_LEAD, {"input": lead})]
            case "send_email":
                email = {"subject": f"Bench follow-up {n}", "body": "Hello,\n\nJust checking in."}
                return [(SEND_EMAIL, {"leadId": lead_id, "input": email})]
            case "update_status":
                status = STATUSES[(client + n) % len(STATUSES)]
                return [(UPDATE_STATUS, {"leadId": lead_id, "status": status})]
        raise ValueError(self.key)


LIST_OP = Operation("list", "leads(first: 50)")
LIST_NESTED_OP = Operation("list_nested", "leads(first: 50) + nested")
PAGE_OP = Operation("lead_page", "lead page (1 request)")
SEED_FLOW_OP = Operation("seed_flow", "lead page, seed flow (5 req)*", requests_per_op=5)
MUTATIONS = (
    Operation("create_lead", "createLead"),
    Operation("send_email", "sendEmail"),
    Operation("update_status", "updateLeadStatus"),
)
DISPLAY_ORDER = ("list", "list_nested", "lead_page", "seed_flow", *(op.key for op in MUTATIONS))

# --- the server --------------------------------------------------------------------------


VERSIONS = """
import importlib.metadata as m, json, platform
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
names = ("mongoeco", "strawberry-graphql", "pymongo", "beanie", "uvicorn")
print(json.dumps({"python": platform.python_version(), "packages": {n: version(n) for n in names}}))
"""


@dataclass
class Checkout:
    """The project checkout whose server is measured (this one, or `--repo PATH`)."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / ".venv" / "bin" / "python"

    def serve_command(self) -> list[str]:
        crm = self.root / ".venv" / "bin" / "crm"
        if crm.exists():
            return [str(crm), "serve"]
        return [str(self.python), str(self.root / "server.py")]  # before the `crm` script

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"path": str(self.root)}
        result = subprocess.run(
            [str(self.python), "-c", VERSIONS], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            info.update(orjson.loads(result.stdout))
        commit = git(self.root, "rev-parse", "HEAD")
        info["commit"] = commit
        info["dirty"] = bool(git(self.root, "status", "--porcelain")) if commit else None
        return info


def git(root: Path, *args: str) -> str | None:
    with suppress(OSError):
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            return result.stdout.strip()
    return None


def base_env(args: argparse.Namespace, data_dir: Path) -> dict[str, str]:
    """The server's (and seeder's) environment: ours minus CRM_*/MONGODB_URI, plus the bench's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MONGODB_URI"))}
    env.pop("VIRTUAL_ENV", None)  # `uv run` sets it; a --repo checkout has its own venv
    env.update(
        CRM_DATA_DIR=str(data_dir),
        CRM_DB_NAME=args.db_name,
        CRM_JWT_SECRET=args.jwt_secret,
        CRM_BENCH="1",
        # Eight clients as one admin go far past a team's rate limit; a limit no run reaches
        # keeps the limiter's bookkeeping in what is measured (`--env` may set another).
        CRM_RATE_LIMIT_PER_MINUTE="1000000000",
    )
    if args.mongodb_uri:
        env["MONGODB_URI"] = args.mongodb_uri
    for assignment in args.env:
        name, _, value = assignment.partition("=")
        env[name] = value
    return env


def drop_database(args: argparse.Namespace) -> None:
    from pymongo import MongoClient

    with MongoClient(args.mongodb_uri, serverSelectionTimeoutMS=10_000) as client:
        client.drop_database(args.db_name)


def mongodb_description(uri: str) -> dict[str, Any]:
    from pymongo import MongoClient
    from pymongo.errors import OperationFailure
    from pymongo.uri_parser import parse_uri

    hosts = [f"{host}:{port}" for host, port in parse_uri(uri)["nodelist"]]  # no credentials
    with MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
        try:
            version = client.admin.command("buildInfo").get("version")
        except OperationFailure:  # a MongoDB-compatible server without buildInfo
            version = None
    return {"kind": "mongodb", "hosts": hosts, "version": version}


def seed(args: argparse.Namespace, env: dict[str, str], work: Path) -> tuple[list[str], float]:
    """`crm seed-demo` (always this checkout's, so every run gets the same data set)."""
    crm = ROOT / ".venv" / "bin" / "crm"
    if not crm.exists():
        crm = Path(sys.executable).parent / "crm"
    command = [str(crm), "seed-demo", "--leads", str(args.leads), "--seed", str(args.seed)]
    print(f"seeding {args.leads} leads (crm seed-demo --seed {args.seed}) …", file=sys.stderr)
    started = time.perf_counter()
    progress = None if args.verbose else subprocess.PIPE
    result = subprocess.run(
        command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=progress, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"crm seed-demo failed ({result.returncode}):\n{result.stderr or ''}")
    match = ADDED.search(result.stdout)
    first, last = (int(m.split("-")[1]) for m in match.groups()) if match else (1, args.leads)
    return [f"LEAD-{number:03d}" for number in range(first, last + 1)], elapsed


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Snapshot:
    wall: float
    harness_cpu: float
    process_cpu: float | None
    stats: dict[str, Any] | None


async def snapshot(client: httpx.AsyncClient, server: ServerProcess) -> Snapshot:
    stats: dict[str, Any] | None = None
    response = await client.get(f"{server.base_url}/debug/stats")
    if response.status_code == 200:
        stats = orjson.loads(response.content)
    return Snapshot(time.perf_counter(), time.process_time(), server.process_cpu_seconds(), stats)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(message[:300])


async def execute(client: httpx.AsyncClient, url: str, request: Request) -> str | None:
    """One GraphQL request; the problem with its response, or None when it is all fine."""
    query, variables = request
    try:
        response = await client.post(
            url, content=orjson.dumps({"query": query, "variables": variables})
        )
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    body = orjson.loads(response.content)
    if body.get("errors"):
        return f"errors: {orjson.dumps(body['errors']).decode()[:200]}"
    data = body.get("data") or {}
    if not data or any(value is None for value in data.values()):
        return f"no data: {response.text[:200]}"
    return None


async def drive(
    op: Operation,
    clients: list[httpx.AsyncClient],
    url: str,
    leads: list[str],
    *,
    until: float | None = None,
    counts: list[int] | None = None,
    salt: str = "",
) -> Tally:
    """Each client runs `op` back to back, until `until` (perf_counter) or its `counts[i]`."""
    tally = Tally(counts=[0] * len(clients))
    # The lead page and the seed flow visit the same leads in the same order.
    stream = "page" if op.key in ("lead_page", "seed_flow") else op.key

    async def worker(index: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(f"{stream}:{salt}:{index}")
        n = 0
        while (counts is not None and n < counts[index]) or (
            until is not None and time.perf_counter() < until
        ):
            started = time.perf_counter()
            problem = None
            for request in op.requests(rng, leads, index, n):
                if (problem := await execute(client, url, request)) is not None:
                    break
            if problem is None:
                tally.latencies.append(time.perf_counter() - started)
            else:
                tally.error(problem)
            n += 1
        tally.counts[index] = n

    await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
    return tally


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def per_op(before: float | None, after: float | None, ops: int, scale: float = 1.0) -> Any:
    if before is None or after is None or ops == 0:
        return None
    return (after - before) * scale / ops


def summarize(
    op: Operation, tally: Tally, before: Snapshot, after: Snapshot, *, embedded: bool
) -> dict[str, Any]:
    ops = sum(tally.counts)
    wall = after.wall - before.wall
    latencies = sorted(tally.latencies)
    ms = [value * 1000 for value in latencies]
    stats_before, stats_after = before.stats or {}, after.stats or {}
    stats = before.stats is not None and after.stats is not None

    def stat(name: str, scale: float = 1.0) -> Any:
        return per_op(stats_before.get(name), stats_after.get(name), ops, scale) if stats else None

    server_cpu = stat("cpu_seconds", 1000)
    if server_cpu is None:  # no /debug/stats: the process's CPU from /proc, clock-tick precise
        server_cpu = per_op(before.process_cpu, after.process_cpu, ops, 1000)
    engine_cpu = stat("embedded_cpu_seconds", 1000)
    if not embedded:  # MongoDB elsewhere: every CPU second of this process is the app's
        app_cpu = server_cpu
    elif engine_cpu is not None and server_cpu is not None:
        app_cpu = server_cpu - engine_cpu  # the embedded engine's threads taken out
    else:
        app_cpu = None
    return {
        "label": op.label,
        "http_requests_per_op": op.requests_per_op,
        "ops": ops,
        "ok": len(latencies),
        "errors": tally.errors,
        "error_samples": tally.samples,
        "seconds": wall,
        "ops_per_second": ops / wall if wall > 0 else None,
        "http_requests_per_second": ops * op.requests_per_op / wall if wall > 0 else None,
        "latency_ms": {
            "p50": percentile(ms, 0.50),
            "p90": percentile(ms, 0.90),
            "p99": percentile(ms, 0.99),
            "mean": sum(ms) / len(ms) if ms else None,
            "min": ms[0] if ms else None,
            "max": ms[-1] if ms else None,
        },
        "commands_per_op": stat("commands"),
        "db_ms_per_op": stat("command_seconds", 1000),
        "server_cpu_ms_per_op": server_cpu,
        "engine_cpu_ms_per_op": engine_cpu,
        "app_cpu_ms_per_op": app_cpu,
        "server_cpu_cores": (
            (after.process_cpu - before.process_cpu) / wall
            if after.process_cpu is not None and before.process_cpu is not None and wall > 0
            else None
        ),
        "harness_cpu_ms_per_op": per_op(before.harness_cpu, after.harness_cpu, ops, 1000),
    }


async def benchmark(
    args: argparse.Namespace, server: ServerProcess, leads: list[str]
) -> dict[str, dict[str, Any]]:
    embedded = not args.mongodb_uri
    token = jwt.encode(
        {
            "sub": "bench",
            "name": "Bench Runner",
            "email": "bench@bench.example",
            "role": "admin",
            "exp": datetime.now(UTC) + timedelta(hours=6),
        },
        args.jwt_secret,
        algorithm="HS256",
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = f"{server.base_url}/graphql"
    results: dict[str, dict[str, Any]] = {}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(headers=headers, timeout=REQUEST_TIMEOUT, limits=limits)
        for _ in range(args.clients)
    ]
    monitor = httpx.AsyncClient(timeout=30)
    try:

        async def phase(op: Operation, counts: list[int] | None = None) -> list[int]:
            if args.warmup > 0:
                until = time.perf_counter() + args.warmup
                warm = await drive(op, clients, url, leads, until=until, salt="warmup")
                if not warm.latencies:
                    raise SystemExit(f"{op.label}: every warm-up request failed: {warm.samples}")
            before = await snapshot(monitor, server)
            if counts is None and args.requests is not None:
                share, extra = divmod(args.requests, args.clients)
                counts = [share + (1 if i < extra else 0) for i in range(args.clients)]
            until = None if counts is not None else time.perf_counter() + args.seconds
            tally = await drive(op, clients, url, leads, until=until, counts=counts)
            after = await snapshot(monitor, server)
            results[op.key] = summarize(op, tally, before, after, embedded=embedded)
            print_row(results[op.key], file=sys.stderr, prefix="  done: ")
            return tally.counts

        # Reads first, on the data set as seeded; then the writes, which change it.
        await phase(LIST_OP)
        await phase(LIST_NESTED_OP)
        # The seed flow for the time (or count), then the one-request page as many times
        # per client, over the same leads in the same order.
        flows = await phase(SEED_FLOW_OP)
        await phase(PAGE_OP, counts=flows)
        for op in MUTATIONS:
            await phase(op)
    finally:
        for client in clients:
            await client.aclose()
        await monitor.aclose()
    return results


# --- reporting ---------------------------------------------------------------------------

COLUMNS = (
    ("operation", 30),
    ("n", 6),
    ("req/s", 8),
    ("p50 ms", 8),
    ("p99 ms", 8),
    ("cmds/req", 8),
    ("DB ms/req", 9),
    ("server CPU ms", 13),
    ("app CPU ms", 10),
    ("err", 4),
)


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def header() -> str:
    return " | ".join(
        name.ljust(width) if i == 0 else name.rjust(width)
        for i, (name, width) in enumerate(COLUMNS)
    )


def row(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    cells = (
        result["label"],
        fmt(result["ops"]),
        fmt(result["ops_per_second"]),
        fmt(latency["p50"]),
        fmt(latency["p99"]),
        fmt(result["commands_per_op"]),
        fmt(result["db_ms_per_op"]),
        fmt(result["server_cpu_ms_per_op"], 2),
        fmt(result["app_cpu_ms_per_op"], 2),
        fmt(result["errors"]),
    )
    return " | ".join(
        cell.ljust(width) if i == 0 else cell.rjust(width)
        for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS, strict=True))
    )


def print_row(result: dict[str, Any], file: Any = None, prefix: str = "") -> None:
    print(prefix + row(result), file=file or sys.stdout, flush=True)


def ratio(new: Any, old: Any) -> float | None:
    if new is None or old is None or old == 0:
        return None
    return float(new) / float(old)


def seed_flow_ratio(results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    flow, page = results.get("seed_flow"), results.get("lead_page")
    if not flow or not page:
        return None
    return {
        "requests": {"seed_flow": 5, "graphql": 1},
        "p50": ratio(flow["latency_ms"]["p50"], page["latency_ms"]["p50"]),
        "p99": ratio(flow["latency_ms"]["p99"], page["latency_ms"]["p99"]),
        "mean": ratio(flow["latency_ms"]["mean"], page["latency_ms"]["mean"]),
        "throughput": ratio(page["ops_per_second"], flow["ops_per_second"]),
        "commands": {"seed_flow": flow["commands_per_op"], "graphql": page["commands_per_op"]},
        "server_cpu_ms": {
            "seed_flow": flow["server_cpu_ms_per_op"],
            "graphql": page["server_cpu_ms_per_op"],
        },
    }


def machine() -> dict[str, Any]:
    model = None
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "platform": platform.platform(),
        "harness_python": platform.python_version(),
    }


def report(document: dict[str, Any]) -> None:
    results = document["operations"]
    print()
    print(header())
    print("-+-".join("-" * width for _, width in COLUMNS))
    for key in DISPLAY_ORDER:
        if key in results:
            print_row(results[key])
    m, engine, target = document["machine"], document["engine"], document["target"]
    if engine["kind"] == "embedded":
        cpu_text = (
            "server CPU = the server process's CPU time, the embedded engine's threads included;"
            "\napp CPU = server CPU minus the embedded engine's threads"
        )
    else:
        cpu_text = "server CPU = app CPU = the server process's CPU time (MongoDB's is elsewhere)"
    print(
        "per request: cmds = MongoDB commands; DB ms = their durations as the driver saw them,"
        f" summed;\n{cpu_text}\n"
        "* per flow of 5 sequential requests (lead + activities, emails, calls, tasks, notes),"
        " each a GraphQL query"
    )
    if (flow := document["seed_flow"]) is not None:
        commands = flow["commands"]
        print(
            f"seed flow: 5 sequential requests take {fmt(flow['p50'], 2)}x the time of one"
            f" request at p50 ({fmt(flow['p99'], 2)}x at p99, {fmt(flow['mean'], 2)}x mean)"
            + (
                f"; {fmt(commands['seed_flow'])} vs {fmt(commands['graphql'])} MongoDB commands"
                if commands["graphql"] is not None
                else ""
            )
        )
    if engine["kind"] == "embedded":
        engine_text = f"embedded (mongoeco {target.get('packages', {}).get('mongoeco')}, SQLite)"
    else:
        version = f" {engine['version']}" if engine.get("version") else ""
        engine_text = f"MongoDB{version} at {', '.join(engine['hosts'])}"
    commit = target["path"]
    if target.get("commit"):
        commit += f" @ {target['commit'][:10]}" + (" (dirty)" if target["dirty"] else "")
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_average'][0]:.1f} at start;"
        f" server Python {target.get('python')}; engine: {engine_text};"
        f" {document['config']['leads']} leads seeded in {document['seeding_seconds']:.0f} s;"
        f" {document['config']['clients']} clients; checkout {commit}"
    )
    if not document["stats_available"]:
        print("this checkout has no /debug/stats: commands, DB time, app CPU are n/a")


def compare(new: dict[str, Any], old: dict[str, Any], old_name: str) -> None:
    print(f"\nnew / old ({old_name}): req/s > 1 is faster; latency, commands, CPU < 1 is better")
    setups = [
        {**run["config"], "engine": run["engine"]["kind"], "cores": run["machine"]["cores"]}
        for run in (new, old)
    ]
    if differ := [key for key in setups[0] if setups[0][key] != setups[1].get(key)]:
        print("  careful, the runs differ in: " + ", ".join(differ))
    names = ("req/s", "p50", "p99", "cmds/req", "DB ms", "CPU ms", "app CPU")
    print(" | ".join(["operation".ljust(30), *(name.rjust(8) for name in names)]))
    for key in DISPLAY_ORDER:
        a, b = new["operations"].get(key), old["operations"].get(key)
        if not a or not b:
            continue
        pairs = (
            (a["ops_per_second"], b["ops_per_second"]),
            (a["latency_ms"]["p50"], b["latency_ms"]["p50"]),
            (a["latency_ms"]["p99"], b["latency_ms"]["p99"]),
            (a["commands_per_op"], b["commands_per_op"]),
            (a["db_ms_per_op"], b["db_ms_per_op"]),
            (a["server_cpu_ms_per_op"], b["server_cpu_ms_per_op"]),
            (a["app_cpu_ms_per_op"], b["app_cpu_ms_per_op"]),
        )
        cells = [fmt(ratio(x, y), 2).rjust(8) for x, y in pairs]
        print(" | ".join([a["label"].ljust(30), *cells]))
    flows = new.get("seed_flow"), old.get("seed_flow")
    if all(flows):
        new_ratio, old_ratio = (fmt(flow["p50"], 2) for flow in flows)
        print(f"seed-flow ratio (p50): new {new_ratio}x, old {old_ratio}x")


# --- main --------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=300, help="demo leads to seed (300)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data set (1)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--seconds", type=float, default=10.0, help="per operation (10)")
    amount.add_argument("--requests", type=int, default=None, help="per operation, all clients")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per operation (1)")
    parser.add_argument("--json", type=Path, default=None, help="results file (bench/results/…)")
    parser.add_argument("--compare", type=Path, default=None, help="earlier results to compare")
    parser.add_argument(
        "--current", type=Path, default=None, help="with --compare: compare this file, no run"
    )
    parser.add_argument("--repo", type=Path, default=None, help="benchmark another checkout")
    parser.add_argument(
        "--db-name", default="crm_bench", help="with MONGODB_URI: database (dropped!)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra server env"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data dir / database")
    parser.add_argument("--verbose", action="store_true", help="show seeding progress")
    args = parser.parse_args(argv)
    if args.current and not args.compare:
        parser.error("--current needs --compare")
    if args.clients < 1 or args.leads < 1 or (args.requests is not None and args.requests < 1):
        parser.error("--clients, --leads and --requests must be at least 1")
    if "bench" not in args.db_name:
        parser.error("--db-name must contain 'bench': it is dropped before and after the run")
    args.mongodb_uri = os.environ.get("MONGODB_URI") or None
    args.jwt_secret = secrets.token_urlsafe(32)
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    checkout = Checkout(args.repo.resolve() if args.repo else ROOT)
    if not checkout.python.exists():
        raise SystemExit(f"{checkout.root}: no .venv; run `uv sync` there first")
    started_at = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    env = base_env(args, work / "data")
    document: dict[str, Any] = {
        "format": 1,
        "started_at": started_at.isoformat(),
        "config": {
            "leads": args.leads,
            "seed": args.seed,
            "clients": args.clients,
            "seconds": None if args.requests else args.seconds,
            "requests": args.requests,
            "warmup": args.warmup,
            "server_env": args.env,
        },
        "machine": machine(),
        "target": checkout.describe(),
    }
    try:
        if args.mongodb_uri:
            document["engine"] = mongodb_description(args.mongodb_uri)
            drop_database(args)
        else:
            document["engine"] = {"kind": "embedded"}
        leads, seconds = seed(args, env, work)
        document["seeding_seconds"] = seconds
        print(f"seeded in {seconds:.1f} s; starting the server …", file=sys.stderr)
        started = time.perf_counter()
        with run_server(checkout.serve_command(), env, work, stop_timeout=20.0) as server:
            document["server_start_seconds"] = time.perf_counter() - started
            print(f"server ready in {document['server_start_seconds']:.1f} s", file=sys.stderr)
            operations = asyncio.run(benchmark(args, server, leads))
        document["operations"] = operations
        document["stats_available"] = all(
            result["commands_per_op"] is not None for result in operations.values()
        )
        document["seed_flow"] = seed_flow_ratio(operations)
        document["errors_total"] = sum(result["errors"] for result in operations.values())
        document["finished_at"] = datetime.now(UTC).isoformat()
        return document
    finally:
        if args.keep:
            print(f"kept {work}" + (f" and database {args.db_name}" if args.mongodb_uri else ""))
        else:
            shutil.rmtree(work, ignore_errors=True)
            if args.mongodb_uri:
                with suppress(Exception):
                    drop_database(args)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.current:
        document = orjson.loads(args.current.read_bytes())
        report(document)
        compare(document, orjson.loads(args.compare.read_bytes()), str(args.compare))
        return 0
    document = run(args)
    report(document)
    path = args.json or RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"results: {path}")
    if args.compare:
        compare(document, orjson.loads(args.compare.read_bytes()), str(args.compare))
    if document["errors_total"]:
        print(f"{document['errors_total']} requests failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
