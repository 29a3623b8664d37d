"""Search and duplicate-check latency at growing lead counts: flat, by the stored keys.

    uv run python bench/search.py [--sizes 1000,10000,50000] [--repeat 15]
    MONGODB_URI=mongodb://localhost:27017 uv run python bench/search.py

One database per size (leads inserted in batches of 1,000 with their keys, as the import
writes them; a smaller size's leads are the first ones of a larger). Each query is built from
one lead that every size holds, so it is the same query at every size; it runs `--repeat`
times at every size through the services (services/search.py, services/leads.py: what
searchLeads, findDuplicates and `leads(filter: {search})` call), the sizes taking turns, one
call each, so that a change in the machine's load weighs on every size alike. Prints each
query's p50 in ms, its database commands and its hits (leads returned), and the ratio of the
largest size's p50 to the smallest's (the target: at most 2). Where a query's hits grow with
the collection (a short prefix shared by 4 leads in 1,000 and hundreds in 50,000), the time
includes reading the hits it shows.
"""

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beanie import init_beanie
from pymongo import AsyncMongoClient

from models import DOCUMENT_MODELS
from models.base import utc_now
from models.database import CommandCounter, EmbeddedMongo
from models.lead import LeadDocument
from services import leads, normalize, search
from services.pagination import Order, Page
from services.viewer import Viewer

BATCH = 1000
ADMIN = Viewer(id="bench", name="Bench", email=None, role="admin")
FIRST = ["James", "Mary", "José", "Zoë", "Aiko", "Liam", "Olivia", "Noah", "Emma", "Ravi",
         "Chen", "Fatima", "Lars", "Ana", "Omar", "Sofia", "Ivan", "Mei", "Pierre"]  # fmt: skip
SYLLABLES = ["ka", "mo", "ri", "sen", "dal", "ber", "lin", "to", "van", "mar", "es", "gu",
             "no", "pe", "stro", "wic", "ha", "zo", "lu", "ter"]  # fmt: skip
COMPANIES = 2000


def person(rng: random.Random, n: int) -> dict[str, Any]:
    """A lead: common first names, surnames from syllables (thousands of them, skewed)."""
    first = rng.choice(FIRST)
    last = "".join(rng.choice(SYLLABLES[: rng.randint(4, 20)]) for _ in range(3)).title()
    company = f"Company{int(rng.paretovariate(1.2)) % COMPANIES}"
    return {
        "lead_id": f"LEAD-{n:06d}",
        "first_name": first,
        "last_name": last,
        "email": f"{normalize.fold(first)}.{last.lower()}{n}@{company.lower()}.com",
        "mobile": f"+1 {rng.randint(200, 989)} 555 {n % 10000:04d}",
        "organization": company,
    }


async def seed(count: int, rng: random.Random) -> None:
    now = utc_now()
    for start in range(0, count, BATCH):
        documents = []
        for n in range(start + 1, min(start + BATCH, count) + 1):
            values = person(rng, n)
            lead = LeadDocument.model_validate(
                {
                    **values,
                    **normalize.lead_keys(values),
                    "lead_number": n,
                    "created_at": now,
                    "updated_at": now,
                    "activities": [],
                }
            )
            documents.append(lead)
        await LeadDocument.insert_many(documents)


async def warm(call: Callable[[], Awaitable[Any]], counter: CommandCounter) -> tuple[int, int]:
    """Database commands and hits (leads returned) of one query, after a first call."""
    await call()
    counter.reset()
    found = await call()
    hits = len(found.documents) if isinstance(found, Page) else len(found)
    return counter.count, hits


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


def queries(sample: dict[str, Any]) -> dict[str, Callable[[], Awaitable[Any]]]:
    first, last = sample["first_name"], sample["last_name"]
    typo = last[:2] + last[3] + last[2] + last[4:]
    local, domain = sample["email"].split("@")
    return {
        "email (+tag, case)": lambda: search.search_leads(ADMIN, f"{local}+x@{domain}".upper(), 20),
        "phone (other format)": lambda: search.search_leads(
            ADMIN, sample["mobile"].replace(" ", "-"), 20
        ),
        "full name, swapped": lambda: search.search_leads(ADMIN, f"{last} {first}", 20),
        "two prefixes": lambda: search.search_leads(ADMIN, f"{first[:3]} {last[:4]}", 20),
        "two short prefixes": lambda: search.search_leads(ADMIN, f"{first[:2]} {last[:2]}", 20),
        "surname typo": lambda: search.search_leads(ADMIN, f"{first} {typo}", 20),
        "one letter": lambda: search.search_leads(ADMIN, first[0], 20),
        "findDuplicates": lambda: search.find_duplicates(ADMIN, sample["lead_id"]),
        "filter page": lambda: page(f"{first[:3]} {last[:4]}"),
        "filter page, first name": lambda: page(first),
    }


def page(text: str) -> Awaitable[Page[LeadDocument]]:
    """The first page of `leads(filter: {search: text})`, as GraphQL reads it for a list."""
    return leads.list_leads(
        ADMIN,
        first=50,
        after=None,
        filters={"search": text},
        order=Order("createdAt", descending=True),
        with_timeline=False,
        with_counts=False,
    )


async def use(client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
    """Point the documents (and so the services) at `database`."""
    await init_beanie(database=client[database], document_models=DOCUMENT_MODELS, skip_indexes=True)


async def run(sizes: list[int], repeat: int) -> None:
    embedded = None
    uri = os.environ.get("MONGODB_URI")
    if uri is None:
        embedded = EmbeddedMongo(Path(tempfile.mkdtemp(prefix="crm-bench-search-")))
        uri = await embedded.start()
    counter = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, tz_aware=True, event_listeners=[counter]
    )
    prefix = f"crm_bench_search_{uuid.uuid4().hex[:8]}"
    databases = {size: f"{prefix}_{size}" for size in sizes}
    calls: dict[int, dict[str, Callable[[], Awaitable[Any]]]] = {}
    shape: dict[str, dict[int, tuple[int, int]]] = {}
    times: dict[str, dict[int, list[float]]] = {}
    try:
        for size, database in databases.items():
            await init_beanie(database=client[database], document_models=DOCUMENT_MODELS)
            started = time.monotonic()
            await seed(size, random.Random(11))  # the same leads at every size
            print(f"{size} leads (added in {time.monotonic() - started:.0f} s)")
            # One lead that every size holds: each query is the same at every size.
            raw = await LeadDocument.get_pymongo_collection().find_one(
                {"lead_id": f"LEAD-{min(sizes) // 2:06d}"}
            )
            assert raw is not None
            sample = {
                "lead_id": raw["lead_id"],
                "first_name": raw["firstName"],
                "last_name": raw["lastName"],
                "email": raw["email"],
                "mobile": raw["mobile"],
            }
            calls[size] = queries(sample)
            for label, call in calls[size].items():
                shape.setdefault(label, {})[size] = await warm(call, counter)
        # The sizes take turns, one call of each query at a time.
        for _ in range(repeat):
            for size, database in databases.items():
                await use(client, database)
                for label, call in calls[size].items():
                    times.setdefault(label, {}).setdefault(size, []).append(await timed(call))
    finally:
        for database in databases.values():
            await client.drop_database(database)
        await client.close()
        if embedded is not None:
            await embedded.stop()
            shutil.rmtree(embedded.path.parent, ignore_errors=True)  # its temporary data
    engine = "embedded (mongoeco, SQLite)" if embedded else uri.split("@")[-1]
    print(f"\nengine: {engine}; p50 ms (commands, hits) over {repeat} runs")
    print(
        "| query | "
        + " | ".join(f"{size:,}" for size in sizes)
        + f" | {sizes[-1]:,}/{sizes[0]:,} |"
    )
    print("|---" * (len(sizes) + 2) + "|")
    for label, by_size in times.items():
        p50 = {size: statistics.median(values) for size, values in by_size.items()}
        cells = [
            f"{p50[size]:.1f} ({shape[label][size][0]}, {shape[label][size][1]})" for size in sizes
        ]
        print(f"| {label} | " + " | ".join(cells) + f" | {p50[sizes[-1]] / p50[sizes[0]]:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(run([int(size) for size in args.sizes.split(",")], args.repeat))


if __name__ == "__main__":
    main()
