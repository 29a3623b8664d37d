"""Search and duplicate-check latency at growing lead counts: flat, by the stored keys.

    uv run python bench/search.py [--sizes 1000,10000,50000] [--repeat 15]
    MONGODB_URI=mongodb://localhost:27017 uv run python bench/search.py

One database grows through the sizes (leads inserted in batches of 1,000 with their keys, as
the import writes them); at each size every query below runs `--repeat` times through the
services (services/search.py, services/leads.py: what searchLeads, findDuplicates and
`leads(filter: {search})` call). Prints each query's p50 in ms, its database commands and its
hits (leads returned), and the ratio of the largest size's p50 to the smallest's (the target:
at most 2). A query's time includes reading and ranking its candidates: where the hits grow
with the collection (a name prefix shared by 1 lead in 1,000 and 15 in 50,000), so does the
work; the rows with the same hits at every size show the cost of the collection's size alone.
"""

import argparse
import asyncio
import os
import random
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


async def grow(to: int, have: int, rng: random.Random) -> None:
    now = utc_now()
    for start in range(have, to, BATCH):
        documents = []
        for n in range(start + 1, min(start + BATCH, to) + 1):
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


async def measure(
    call: Callable[[], Awaitable[Any]], repeat: int, counter: CommandCounter
) -> tuple[float, int, int]:
    """p50 ms, database commands, and hits (leads returned) of one query."""
    await call()  # warm
    counter.reset()
    found = await call()
    commands = counter.count
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    hits = len(found.documents) if isinstance(found, Page) else len(found)
    return statistics.median(times), commands, hits


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
    name = f"crm_bench_search_{uuid.uuid4().hex[:8]}"
    rng = random.Random(11)
    results: dict[str, dict[int, tuple[float, int, int]]] = {}
    try:
        await init_beanie(database=client[name], document_models=DOCUMENT_MODELS)
        have = 0
        for size in sizes:
            started = time.monotonic()
            await grow(size, have, rng)
            print(f"{size} leads ({size - have} added in {time.monotonic() - started:.0f} s)")
            have = size
            raw = await LeadDocument.get_pymongo_collection().find_one(
                {"lead_id": f"LEAD-{size // 2:06d}"}
            )
            assert raw is not None
            sample = {
                "lead_id": raw["lead_id"],
                "first_name": raw["firstName"],
                "last_name": raw["lastName"],
                "email": raw["email"],
                "mobile": raw["mobile"],
            }
            for label, call in queries(sample).items():
                results.setdefault(label, {})[size] = await measure(call, repeat, counter)
    finally:
        await client.drop_database(name)
        await client.close()
        if embedded is not None:
            await embedded.stop()
    engine = "embedded (mongoeco, SQLite)" if embedded else uri.split("@")[-1]
    print(f"\nengine: {engine}; p50 ms (commands, hits) over {repeat} runs")
    print(
        "| query | "
        + " | ".join(f"{size:,}" for size in sizes)
        + f" | {sizes[-1]:,}/{sizes[0]:,} |"
    )
    print("|---" * (len(sizes) + 2) + "|")
    for label, by_size in results.items():
        cells = [f"{p50:.1f} ({commands}, {hits})" for p50, commands, hits in by_size.values()]
        ratio = by_size[sizes[-1]][0] / by_size[sizes[0]][0]
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(run([int(size) for size in args.sizes.split(",")], args.repeat))


if __name__ == "__main__":
    main()
