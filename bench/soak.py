"""Soak: a bounded mixed read/write load on a real `crm serve`, watching errors and memory.

    uv run python bench/soak.py [--seconds 60] [--clients 8] [--leads 60] [--seed 1]

Starts `crm serve` on loopback in a temporary data dir (the embedded database, or a throwaway
database on MONGODB_URI when that is set), seeds it with `crm seed-demo`, then runs
`--clients` concurrent keep-alive clients for `--seconds`. Each client does what a CRM user
does: lists leads (first: 20, with their emails and tasks), opens lead pages, searches, and
writes (createLead, sendEmail, updateLeadStatus, createNote, logCall, now and then
deleteLead of a lead it created itself) about a quarter of the time. Every response must be
HTTP 200 without `errors`. The server's resident memory is sampled throughout.

Prints requests, req/s, errors and p50/p95/p99 latency per operation and overall, the
server's RSS at start, peak and end, and a verdict on memory growth over the second half of
the run. Exits 1 if any request failed (or the server logged an error), 2 if memory grew by
`--max-growth` or more over the second half.
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
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/soak.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.server_process import ServerProcess, run_server  # noqa: E402

REQUEST_TIMEOUT = 60.0
MIB = 1024 * 1024
ADDED = re.compile(r"added (LEAD-\d+) … (LEAD-\d+)")

# --- what the clients send -----------------------------------------------------------------

LIST = """query SoakList {
  leads(first: 20) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id leadId fullName email organization status leadOwner updatedAt activitiesCount
      emails { id subject timestamp status }
      tasks { id title status priority dueDate }
    }
  }
}"""
LEAD_PAGE = """query SoakLeadPage($leadId: String!) {
  lead(leadId: $leadId) {
    id leadId salutation firstName lastName fullName email mobile organization website
    jobTitle industry source status gender noOfEmployees annualRevenue territory leadOwner
    createdAt createdBy updatedAt convertedToDeal activitiesCount
    activities { id type description by timestamp field oldValue newValue }
    emails { id from to cc subject body timestamp status sentBy }
    calls { id type duration to phone timestamp status loggedBy }
    tasks { id title description status assignedTo dueDate priority createdAt updatedAt }
    notes { id title content createdAt createdBy }
    deal { id dealId status }
  }
}"""
SEARCH = """query SoakSearch($search: String!, $status: [LeadStatus!]) {
  leads(first: 20, filter: {search: $search, status: $status}) {
    totalCount
    nodes { id leadId fullName organization status }
  }
}"""
LEAD_RESULT = "lead { id status activitiesCount updatedAt }"
CREATE_LEAD = """mutation SoakCreateLead($input: CreateLeadInput!) {
  createLead(input: $input) { lead { id leadId status activitiesCount } }
}"""
SEND_EMAIL = f"""mutation SoakSendEmail($leadId: String!, $input: SendEmailInput!) {{
  sendEmail(leadId: $leadId, input: $input) {{ email {{ id to status }} {LEAD_RESULT} }}
}}"""
UPDATE_STATUS = f"""mutation SoakUpdateStatus($leadId: String!, $status: LeadStatus!) {{
  updateLeadStatus(leadId: $leadId, status: $status) {{ {LEAD_RESULT} }}
}}"""
ADD_NOTE = f"""mutation SoakAddNote($leadId: String!, $input: CreateNoteInput!) {{
  createNote(leadId: $leadId, input: $input) {{ note {{ id }} {LEAD_RESULT} }}
}}"""
LOG_CALL = f"""mutation SoakLogCall($leadId: String!, $input: LogCallInput!) {{
  logCall(leadId: $leadId, input: $input) {{ call {{ id duration }} {LEAD_RESULT} }}
}}"""
DELETE_LEAD = """mutation SoakDeleteLead($leadId: String!) {
  deleteLead(leadId: $leadId) { leadId deletedEmails deletedCalls deletedTasks deletedNotes }
}"""

STATUSES = ("NEW", "CONTACTED", "NURTURE", "QUALIFIED", "UNQUALIFIED", "JUNK")
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
COMPANIES = ("Acme Corp", "Globex", "Initech", "Hooli", "Pied Piper", "Cyberdyne")
SEARCHES = ("ada", "acme", "grace hopper", "globex", "lead-0", "example", "zz-no-match")
NOTES = (
    "Interested in the enterprise plan; budget approval expected next quarter.",
    "Asked for SSO and an audit log before a pilot.",
    "Prefers calls in the morning.",
)


@dataclass(frozen=True)
class Operation:
    name: str
    weight: int  # share of all requests, in percent
    write: bool


# About a quarter writes: enough to grow the database and its caches while memory is watched.
MIX = (
    Operation("leads(first:20)+nested", 35, write=False),
    Operation("lead page", 30, write=False),
    Operation("search", 10, write=False),
    Operation("createLead", 5, write=True),
    Operation("sendEmail", 6, write=True),
    Operation("updateLeadStatus", 5, write=True),
    Operation("createNote", 4, write=True),
    Operation("logCall", 4, write=True),
    Operation("deleteLead", 1, write=True),
)
WEIGHTS = [operation.weight for operation in MIX]


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    examples: list[str] = field(default_factory=list)  # the first few failures, verbatim

    def record(self, name: str, seconds: float, error: str | None, detail: str) -> None:
        self.latencies[name].append(seconds)
        if error is not None:
            self.errors[name][error] += 1
            if len(self.examples) < 5:
                self.examples.append(f"{name}: {error}: {detail[:300]}")


class Client:
    """One user: a keep-alive connection, working through the mix until the deadline."""

    def __init__(
        self, index: int, url: str, token: str, seeded: list[str], seed: int, results: Results
    ) -> None:
        self.index = index
        self.url = url
        self.token = token
        self.seeded = seeded  # shared by all clients, never deleted
        self.own: list[str] = []  # leads this client created: only it writes or deletes them
        self.rng = random.Random(seed * 1000 + index)
        self.results = results
        self.n = 0

    def lead(self) -> str:
        return self.rng.choice(self.seeded + self.own)

    async def run(self, deadline: float) -> None:
        headers = {"authorization": f"Bearer {self.token}"}
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            headers=headers, timeout=REQUEST_TIMEOUT, limits=limits
        ) as http:
            while time.monotonic() < deadline:
                operation = self.rng.choices(MIX, WEIGHTS)[0]
                await self.do(http, operation.name)

    async def do(self, http: httpx.AsyncClient, name: str) -> None:
        self.n += 1
        rng = self.rng
        variables: dict[str, Any]
        if name == "deleteLead" and len(self.own) < 2:
            name = "createLead"  # keep at least one lead of our own to write to
        match name:
            case "leads(first:20)+nested":
                query, variables = LIST, {}
            case "lead page":
                query, variables = LEAD_PAGE, {"leadId": self.lead()}
            case "search":
                statuses = rng.choice([None, ["NEW", "CONTACTED"], ["QUALIFIED"]])
                query, variables = SEARCH, {"search": rng.choice(SEARCHES), "status": statuses}
            case "createLead":
                first = rng.choice(FIRST_NAMES)
                query = CREATE_LEAD
                variables = {
                    "input": {
                        "firstName": first,
                        "lastName": f"Soak{self.index}x{self.n}",
                        "email": f"{first.lower()}.{self.index}.{self.n}@soak.example",
                        "mobile": f"+1 555 {rng.randint(1000, 9999)}",
                        "organization": rng.choice(COMPANIES),
                        "source": "Website",
                        "annualRevenue": float(rng.randrange(100_000, 5_000_000, 50_000)),
                    }
                }
            case "sendEmail":
                query = SEND_EMAIL
                email = {"subject": f"Following up ({self.n})", "body": "Hello,\n\nChecking in."}
                variables = {"leadId": self.lead(), "input": email}
            case "updateLeadStatus":
                query, variables = (
                    UPDATE_STATUS,
                    {"leadId": self.lead(), "status": rng.choice(STATUSES)},
                )
            case "createNote":
                note = {"title": "Call notes", "content": rng.choice(NOTES)}
                query, variables = ADD_NOTE, {"leadId": self.lead(), "input": note}
            case "logCall":
                call = {
                    "duration": rng.randint(30, 1800),
                    "type": rng.choice(["OUTBOUND", "INBOUND"]),
                }
                query, variables = LOG_CALL, {"leadId": self.lead(), "input": call}
            case "deleteLead":
                query, variables = DELETE_LEAD, {"leadId": self.own.pop(0)}
            case _:
                raise ValueError(name)
        data = await self.send(http, name, query, variables)
        if name == "createLead" and data is not None:
            self.own.append(data["createLead"]["lead"]["leadId"])

    async def send(
        self, http: httpx.AsyncClient, name: str, query: str, variables: dict[str, Any]
    ) -> dict[str, Any] | None:
        started = time.perf_counter()
        error: str | None = None
        detail = ""
        data: dict[str, Any] | None = None
        try:
            response = await http.post(self.url, json={"query": query, "variables": variables})
        except httpx.TimeoutException as exc:
            error, detail = "timeout", repr(exc)
        except httpx.HTTPError as exc:
            error, detail = type(exc).__name__, repr(exc)
        else:
            detail = response.text
            try:
                body = response.json()
            except ValueError:
                body = None
            if response.status_code != 200:
                error = f"HTTP {response.status_code}"
            elif not isinstance(body, dict):
                error = "not JSON"
            elif body.get("errors"):
                codes = {(e.get("extensions") or {}).get("code", "no code") for e in body["errors"]}
                error = "+".join(sorted(codes))
            else:
                data = body.get("data")
        self.results.record(name, time.perf_counter() - started, error, detail)
        return data


# --- the server ----------------------------------------------------------------------------


def crm_command() -> str:
    crm = ROOT / ".venv" / "bin" / "crm"
    return str(crm if crm.exists() else Path(sys.executable).parent / "crm")


def crm(env: dict[str, str], work: Path, *args: str) -> str:
    """Run a `crm` command with the server's configuration; its stdout."""
    result = subprocess.run(
        [crm_command(), *args], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"crm {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


# --- measuring and reporting ---------------------------------------------------------------


async def sample_memory(
    server: ServerProcess, started: float, every: float, samples: list[tuple[float, int]]
) -> None:
    while True:
        await asyncio.sleep(every)
        if (rss := server.rss()) is not None:
            samples.append((time.monotonic() - started, rss))


async def report_progress(
    results: Results, started: float, samples: list[tuple[float, int]]
) -> None:
    while True:
        await asyncio.sleep(10)
        done = sum(len(values) for values in results.latencies.values())
        failed = sum(sum(counter.values()) for counter in results.errors.values())
        rss = f"{samples[-1][1] / MIB:.1f} MiB" if samples else "n/a"
        elapsed = time.monotonic() - started
        print(f"  {elapsed:5.0f} s: {done} requests, {failed} errors, RSS {rss}", flush=True)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def row(name: str, values: list[float], errors: int, seconds: float) -> str:
    ms = sorted(value * 1000 for value in values)
    if not ms:
        return f"{name:<24} {0:>8} {0:>7.1f} {errors:>6}"
    return (
        f"{name:<24} {len(ms):>8} {len(ms) / seconds:>7.1f} {errors:>6} "
        f"{percentile(ms, 0.50):>8.1f} {percentile(ms, 0.95):>8.1f} "
        f"{percentile(ms, 0.99):>8.1f} {ms[-1]:>8.1f}"
    )


def memory_verdict(
    start: int | None, samples: list[tuple[float, int]], seconds: float, max_growth: float
) -> tuple[list[str], bool]:
    """Lines about RSS, and whether it stayed flat over the second half of the run."""
    if start is None or not samples:
        return ["server RSS: n/a (no /proc and no psutil)"], True
    peak = max(rss for _, rss in samples)
    end = samples[-1][1]
    second_half = [rss for t, rss in samples if t >= seconds / 2] or [end]
    middle = second_half[0]
    growth = (end - middle) / middle
    flat = growth < max_growth
    timeline = " ".join(f"{rss / MIB:.0f}" for _, rss in samples[:: max(1, len(samples) // 12)])
    return [
        f"server RSS (MiB): start {start / MIB:.1f}, peak {peak / MIB:.1f}, end {end / MIB:.1f}"
        f"  (samples: {timeline})",
        f"memory over the second half: {middle / MIB:.1f} -> {end / MIB:.1f} MiB "
        f"({growth:+.1%}): {'flat' if flat else 'GROWING'} (threshold {max_growth:.0%})",
    ], flat


def machine_line() -> str:
    load = (
        " ".join(f"{value:.1f}" for value in os.getloadavg())
        if hasattr(os, "getloadavg")
        else "n/a"
    )
    return (
        f"machine: {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.release()} "
        f"{platform.machine()}; load average before the run: {load}"
    )


async def soak(
    args: argparse.Namespace, server: ServerProcess, token: str, seeded: list[str]
) -> int:
    results = Results()
    samples: list[tuple[float, int]] = []
    rss_start = server.rss()
    started = time.monotonic()
    deadline = started + args.seconds
    url = f"{server.base_url}/graphql"
    clients = [Client(i, url, token, seeded, args.seed, results) for i in range(args.clients)]
    background = [
        asyncio.create_task(sample_memory(server, started, args.sample_every, samples)),
        asyncio.create_task(report_progress(results, started, samples)),
    ]
    await asyncio.gather(*(client.run(deadline) for client in clients))
    seconds = time.monotonic() - started
    for task in background:
        task.cancel()
    if (rss_end := server.rss()) is not None:
        samples.append((seconds, rss_end))

    print()
    print(f"{'operation':<24} {'requests':>8} {'req/s':>7} {'errors':>6} "
          f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")  # fmt: skip
    for operation in MIX:
        values = results.latencies.get(operation.name, [])
        errors = sum(results.errors[operation.name].values())
        print(row(operation.name, values, errors, seconds))
    everything = [value for values in results.latencies.values() for value in values]
    failed = sum(sum(counter.values()) for counter in results.errors.values())
    print(row("all", everything, failed, seconds))
    writes = sum(len(results.latencies.get(op.name, [])) for op in MIX if op.write)
    print(
        f"\nwrites: {writes} of {len(everything)} requests ({writes / max(1, len(everything)):.1%})"
    )
    by_code = Counter[str]()
    for counter in results.errors.values():
        by_code.update(counter)
    print("errors: " + (", ".join(f"{n} {code}" for code, n in by_code.most_common()) or "none"))
    for example in results.examples:
        print(f"  e.g. {example}")
    log = server.log.read_text(errors="replace")
    logged = log.count('"level":"ERROR"') + log.count("Traceback")
    print(f"server log: {logged} error entries" + (f" (see {server.log})" if logged else ""))
    lines, flat = memory_verdict(rss_start, samples, seconds, args.max_growth)
    print("\n".join(lines))
    status = 1 if failed or logged else 0 if flat else 2
    verdict = {0: "PASS", 1: "FAIL: errors", 2: "FAIL: memory grew"}[status]
    print(f"verdict: {verdict}")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients")
    parser.add_argument("--leads", type=int, default=60, help="demo leads seeded before the run")
    parser.add_argument("--seed", type=int, default=1, help="random seed (data and mix)")
    parser.add_argument("--sample-every", type=float, default=2.0, help="RSS sampling, seconds")
    parser.add_argument(
        "--max-growth", type=float, default=0.10, help="RSS growth over the second half that fails"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data dir and server log")
    args = parser.parse_args()

    print(machine_line())
    work = Path(tempfile.mkdtemp(prefix="crm-soak-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MONGODB_URI"))}
    env.update(
        CRM_DATA_DIR=str(work / "data"),
        CRM_JWT_SECRET=secrets.token_urlsafe(32),
        # Every client is one admin: a team's rate limit would answer most of the load with 429.
        CRM_RATE_LIMIT_PER_MINUTE="0",
    )
    uri = os.environ.get("MONGODB_URI")
    if uri:
        env.update(MONGODB_URI=uri, CRM_DB_NAME=f"crm_soak_{secrets.token_hex(4)}")
        print(f"database: MONGODB_URI, throwaway database {env['CRM_DB_NAME']}")
    else:
        print(f"database: embedded (mongoeco on SQLite) in {work / 'data'}")
    status = 1
    try:
        print(f"seeding {args.leads} demo leads (crm seed-demo) ...", flush=True)
        added = ADDED.search(
            crm(env, work, "seed-demo", "--leads", str(args.leads), "--seed", str(args.seed))
        )
        first, last = (int(m.split("-")[1]) for m in added.groups()) if added else (1, args.leads)
        seeded = [f"LEAD-{number:03d}" for number in range(first, last + 1)]
        token = crm(env, work, "token", "--sub", "soak", "--name", "Soak Client", "--hours", "2")
        with run_server([crm_command(), "serve"], env, work) as server:
            print(
                f"soak: {args.clients} clients for {args.seconds:.0f} s "
                f"against {server.base_url}/graphql, "
                f"{len(seeded)} seeded leads, planned write share "
                f"{sum(op.weight for op in MIX if op.write)}%",
                flush=True,
            )
            status = asyncio.run(soak(args, server, token.strip(), seeded))
            return status
    finally:
        if uri:
            from pymongo import MongoClient

            with MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
                client.drop_database(env["CRM_DB_NAME"])
        if args.keep or status != 0:
            print(f"kept {work} (data and server.log)")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
