"""Every LeadFilter field and LeadOrder field is served by an index.

Two checks: the index exists (any engine), and the query plan uses it where the engine's
planner can. Real MongoDB reports `queryPlanner.winningPlan`: no COLLSCAN, and no blocking
SORT for an order. The embedded engine reports its SQLite plan: it answers equality filters
from our indexes, but sorts and ranges with a scan (a documented limit of that engine).
"""

import re
from datetime import UTC, datetime
from typing import Any

from models.fields import LeadStatus
from models.lead import LeadDocument
from services.demo import add_demo_leads
from services.leads import LeadOrderField, lead_query

EQUALITY_FILTERS: dict[str, dict[str, Any]] = {
    "status": {"status": [LeadStatus.NEW, LeadStatus.CONTACTED]},
    "leadOwner": {"lead_owner": "Sam Seller"},
    "source": {"source": "Website"},
    "industry": {"industry": "Software"},
    "territory": {"territory": "EMEA"},
    "convertedToDeal": {"converted_to_deal": True},
}
RANGE_FILTERS: dict[str, dict[str, Any]] = {
    "createdAt": {
        "created_after": datetime(2026, 1, 1, tzinfo=UTC),
        "created_before": datetime(2026, 6, 1, tzinfo=UTC),
    },
}


def stages(plan: Any) -> set[str]:
    """Every stage name in a MongoDB plan tree."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "stage" in plan:
            found.add(plan["stage"])
        for value in plan.values():
            found |= stages(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= stages(value)
    return found


async def explain(query: dict[str, Any], sort: list[tuple[str, int]] | None) -> dict[str, Any]:
    cursor = LeadDocument.get_pymongo_collection().find(query).limit(21)
    plan: dict[str, Any] = await (cursor.sort(sort) if sort else cursor).explain()
    return plan


def index_keys() -> list[list[str]]:
    return [[field for field, _ in index.document["key"].items()] for index in INDEXES]


INDEXES = LeadDocument.Settings.indexes


async def test_every_filter_has_an_index_the_plan_uses() -> None:
    await add_demo_leads(10, random_seed=1)  # an engine may not plan an empty collection
    for field, filters in (EQUALITY_FILTERS | RANGE_FILTERS).items():
        assert any(keys[0] == field for keys in index_keys()), f"no index starts with {field}"

        # Unsorted, as `totalCount` counts it (sorted pages are the order test's concern).
        plan = await explain(lead_query(filters), None)

        if "queryPlanner" in plan:
            assert "COLLSCAN" not in stages(plan["queryPlanner"]["winningPlan"]), plan
        elif field in EQUALITY_FILTERS:
            details = " ".join(plan["details"]["engine_details"])
            # Answered from the field's index: scalar entries, or multikey ones for `$in`.
            assert re.search(r"(scalar_index|multikey)_entries USING", details), (field, plan)


async def test_every_order_has_a_keyset_index_the_plan_uses() -> None:
    for order in LeadOrderField:
        assert [order.value, "_id"] in index_keys(), f"no ({order.value}, _id) index"
        for direction in (1, -1):
            plan = await explain({}, [(order.value, direction), ("_id", direction)])
            if "queryPlanner" in plan:
                used = stages(plan["queryPlanner"]["winningPlan"])
                assert "COLLSCAN" not in used, plan
                assert "SORT" not in used, plan  # the index delivers the order


async def test_the_seeds_indexes_exist_in_the_database() -> None:
    names = set(await LeadDocument.get_pymongo_collection().index_information())
    assert {"lead_id_1", "email_1", "status_1", "createdAt_-1"} <= names
