"""The `leads` connection: keyset paging in every order, cursors, page sizes and filters."""

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from models.database import CommandCounter
from models.lead import LeadDocument
from services.migration import migrate
from tests.conftest import GraphQLClient
from tests.documents import CREATE_LEAD, LIST_LEADS

PAGE = """
query Page($first: Int, $after: String, $filter: LeadFilter, $orderBy: LeadOrder) {
  leads(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    nodes { leadId firstName annualRevenue createdAt updatedAt }
  }
}
"""

BASE = datetime(2025, 1, 1, tzinfo=UTC)
NAMES = ("Cara", "Ann", "Bob", "Dan")
# Sort key of a returned node; None sorts lowest, as in MongoDB.
SORT_KEYS = {
    "CREATED_AT": lambda node: node["createdAt"],
    "UPDATED_AT": lambda node: node["updatedAt"],
    "LEAD_ID": lambda node: int(node["leadId"].removeprefix("LEAD-")),
    "ANNUAL_REVENUE": lambda node: node["annualRevenue"],
    "FIRST_NAME": lambda node: node["firstName"],
}


def lead(number: int, **fields: Any) -> dict[str, Any]:
    """A stored lead document (seed field names) for direct set-up."""
    return {
        "lead_id": f"LEAD-{number:03d}",
        "leadNumber": number,
        "firstName": f"Lead{number}",
        "status": "New",
        "createdAt": BASE + timedelta(days=number),
        "updatedAt": BASE + timedelta(days=number),
        "convertedToDeal": False,
        "activities": [],
        **fields,
    }


async def store(*leads: dict[str, Any]) -> None:
    """Store leads as the seed's backend did; the start-up migration adds their keys."""
    await LeadDocument.get_pymongo_collection().insert_many([dict(lead) for lead in leads])
    await migrate()


def tied_lead(i: int) -> dict[str, Any]:
    """Lead i of 23 whose sort keys repeat, so ties straddle page boundaries."""
    fields = lead(
        i + 1,
        firstName=NAMES[i % len(NAMES)],
        createdAt=BASE + timedelta(minutes=i // 4),
        updatedAt=BASE + timedelta(hours=i % 3),
        annualRevenue=None if i % 5 == 0 else float(i % 3 * 1000),
    )
    if i == 7:
        del fields["annualRevenue"]  # a missing field sorts like null
    return fields


async def all_pages(
    gql: GraphQLClient, order_by: dict[str, str], first: int = 5
) -> list[dict[str, Any]]:
    pages = []
    variables: dict[str, Any] = {"first": first, "orderBy": order_by}
    while True:
        page = (await gql(PAGE, variables))["leads"]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        variables["after"] = page["pageInfo"]["endCursor"]


def error_code(errors: list[dict[str, Any]]) -> str:
    return str(errors[0]["extensions"]["code"])


def bad_fields(errors: list[dict[str, Any]]) -> list[str]:
    return [error["field"] for error in errors[0]["extensions"]["fieldErrors"]]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("field", list(SORT_KEYS))
async def test_paging_returns_every_lead_once_in_order(
    gql: GraphQLClient, field: str, direction: str
) -> None:
    await store(*(tied_lead(i) for i in range(23)))

    pages = await all_pages(gql, {"field": field, "direction": direction})

    nodes = [node for page in pages for node in page["nodes"]]
    lead_ids = [node["leadId"] for node in nodes]
    assert sorted(lead_ids) == sorted(f"LEAD-{n:03d}" for n in range(1, 24))
    assert len(pages) == 5
    keys = [(value is not None, value) for value in map(SORT_KEYS[field], nodes)]
    assert keys == sorted(keys, reverse=direction == "DESC")
    assert [page["pageInfo"]["hasPreviousPage"] for page in pages] == [False, *[True] * 4]
    assert {page["totalCount"] for page in pages} == {23}


async def test_null_annual_revenue_sorts_first_ascending_and_last_descending(
    gql: GraphQLClient,
) -> None:
    await store(lead(1, annualRevenue=5.0), lead(2, annualRevenue=None), lead(3, annualRevenue=1.0))

    ascending = await all_pages(gql, {"field": "ANNUAL_REVENUE", "direction": "ASC"}, first=1)
    descending = await all_pages(gql, {"field": "ANNUAL_REVENUE", "direction": "DESC"}, first=1)

    assert [page["nodes"][0]["annualRevenue"] for page in ascending] == [None, 1.0, 5.0]
    assert [page["nodes"][0]["annualRevenue"] for page in descending] == [5.0, 1.0, None]


async def test_lead_id_order_is_numeric(gql: GraphQLClient) -> None:
    await store(lead(1000), lead(998), lead(1001), lead(999))

    data = await gql(LIST_LEADS, {"orderBy": {"field": "LEAD_ID", "direction": "ASC"}})

    ids = [node["leadId"] for node in data["leads"]["nodes"]]
    assert ids == ["LEAD-998", "LEAD-999", "LEAD-1000", "LEAD-1001"]


async def test_default_order_is_newest_created_first(gql: GraphQLClient) -> None:
    await store(lead(1, createdAt=BASE), lead(2, createdAt=BASE + timedelta(days=2)))
    await store(lead(3, createdAt=BASE + timedelta(days=1)))

    data = await gql(LIST_LEADS)

    assert [node["leadId"] for node in data["leads"]["nodes"]] == [
        "LEAD-002",
        "LEAD-003",
        "LEAD-001",
    ]


async def test_edges_match_nodes_and_end_with_the_end_cursor(gql: GraphQLClient) -> None:
    await store(*(lead(n) for n in range(1, 8)))

    connection = (await gql(LIST_LEADS, {"first": 4}))["leads"]

    edges, nodes, page_info = connection["edges"], connection["nodes"], connection["pageInfo"]
    assert [edge["node"]["leadId"] for edge in edges] == [node["leadId"] for node in nodes]
    assert len(nodes) == 4
    assert edges[0]["cursor"] == page_info["startCursor"]
    assert edges[-1]["cursor"] == page_info["endCursor"]


async def test_an_edge_cursor_resumes_right_after_its_edge(gql: GraphQLClient) -> None:
    await store(*(lead(n) for n in range(1, 8)))
    everything = (await gql(LIST_LEADS, {"first": 7}))["leads"]

    rest = (await gql(LIST_LEADS, {"after": everything["edges"][2]["cursor"]}))["leads"]

    assert [node["leadId"] for node in rest["nodes"]] == [
        node["leadId"] for node in everything["nodes"][3:]
    ]


@pytest.mark.parametrize(
    "other_order",
    [
        pytest.param({"field": "FIRST_NAME", "direction": "DESC"}, id="other-field"),
        pytest.param({"field": "UPDATED_AT", "direction": "DESC"}, id="other-date-field"),
        pytest.param({"field": "CREATED_AT", "direction": "ASC"}, id="other-direction"),
    ],
)
async def test_a_cursor_is_rejected_under_another_order(
    gql: GraphQLClient, other_order: dict[str, str]
) -> None:
    await store(*(lead(n) for n in range(1, 4)))
    cursor = (await gql(LIST_LEADS, {"first": 1}))["leads"]["pageInfo"]["endCursor"]

    errors = await gql.errors(LIST_LEADS, {"after": cursor, "orderBy": other_order})

    assert error_code(errors) == "BAD_USER_INPUT"
    assert bad_fields(errors) == ["after"]


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor", id="text"),
        pytest.param("", id="empty"),
        pytest.param(b64(json.dumps({"hello": "world"})), id="json-object"),
        pytest.param(b64(json.dumps([1, 2, 3])), id="json-list"),
        pytest.param(b64(json.dumps("createdAt")), id="json-string"),
        pytest.param(
            b64(json.dumps({"f": "createdAt", "v": {"$date": 0}, "id": "not-an-object-id"})),
            id="bad-id",
        ),
        pytest.param(
            b64(json.dumps({"f": "createdAt", "v": {"$gt": 0}, "id": str(ObjectId())})),
            id="operator-as-value",
        ),
    ],
)
async def test_a_garbage_cursor_is_bad_user_input(gql: GraphQLClient, cursor: str) -> None:
    await store(lead(1))

    errors = await gql.errors(LIST_LEADS, {"after": cursor})

    assert error_code(errors) == "BAD_USER_INPUT"
    assert bad_fields(errors) == ["after"]


@pytest.mark.parametrize("first", [-1, 101])
async def test_page_size_out_of_range_is_bad_user_input(gql: GraphQLClient, first: int) -> None:
    errors = await gql.errors(LIST_LEADS, {"first": first})

    assert error_code(errors) == "BAD_USER_INPUT"
    assert bad_fields(errors) == ["first"]


async def test_first_zero_counts_without_returning_leads(gql: GraphQLClient) -> None:
    await store(lead(1), lead(2), lead(3))

    connection = (await gql(LIST_LEADS, {"first": 0}))["leads"]

    assert connection["nodes"] == []
    assert connection["edges"] == []
    assert connection["totalCount"] == 3
    assert connection["pageInfo"]["hasNextPage"] is True


async def test_a_count_alone_reads_no_lead_and_checks_its_arguments(
    gql: GraphQLClient, commands: CommandCounter
) -> None:
    await store(lead(1), lead(2), lead(3))
    count = (
        "query($first: Int, $after: String) { leads(first: $first, after: $after) { totalCount } }"
    )

    commands.reset()
    assert (await gql(count, {"first": 0}))["leads"]["totalCount"] == 3
    assert "find" not in commands.names  # only the count; no page of leads
    assert bad_fields(await gql.errors(count, {"first": 101})) == ["first"]
    assert bad_fields(await gql.errors(count, {"after": "not-a-cursor"})) == ["after"]


async def test_null_first_and_order_by_mean_the_defaults(gql: GraphQLClient) -> None:
    await store(*(lead(n) for n in range(1, 24)))

    data = await gql(LIST_LEADS, {"first": None, "orderBy": None})

    numbers = [int(node["leadId"].split("-")[1]) for node in data["leads"]["nodes"]]
    assert numbers == list(range(23, 3, -1))  # 20 newest first
    assert data["leads"]["pageInfo"]["hasNextPage"] is True


FILTER_LEADS = [
    lead(
        1,
        firstName="Jane",
        lastName="Doe",
        email="jane@acme.com",
        organization="Acme Corp",
        status="New",
        leadOwner="Alice",
        source="Website",
        industry="Technology",
        territory="US",
        createdAt=datetime(2025, 1, 10, tzinfo=UTC),
    ),
    lead(
        2,
        firstName="Jane",
        lastName="Smith",
        email="jsmith@globex.com",
        organization="Globex",
        status="Contacted",
        leadOwner="Bob",
        source="Referral",
        industry="Finance",
        territory="EU",
        createdAt=datetime(2025, 1, 15, tzinfo=UTC),
    ),
    lead(
        3,
        firstName="John",
        lastName="Roe",
        email="jr@mail.example",
        organization="Initech",
        status="Qualified",
        leadOwner="Alice",
        source="Website",
        industry="Finance",
        territory="APAC",
        convertedToDeal=True,
        createdAt=datetime(2025, 1, 20, tzinfo=UTC),
    ),
    lead(
        4,
        firstName="Abc",
        lastName="Widget",
        organization="Abc Widgets",
        status="Junk",
        createdAt=datetime(2025, 1, 25, tzinfo=UTC),
    ),
    lead(
        5,
        firstName="Regex",
        lastName="Fan",
        organization="Dot.*Star",
        status="Nurture",
        territory="EU",
        createdAt=datetime(2025, 1, 12, tzinfo=UTC),
    ),
    lead(
        6,
        firstName="Odd",
        organization="Odd (Chars) [Ltd] \\ Co",
        status="New",
        createdAt=datetime(2025, 1, 30, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"status": ["CONTACTED", "QUALIFIED"]}, {2, 3}),
        ({"leadOwner": "Alice"}, {1, 3}),
        ({"source": "Referral"}, {2}),
        ({"industry": "Finance"}, {2, 3}),
        ({"territory": "EU"}, {2, 5}),
        ({"convertedToDeal": True}, {3}),
        ({"convertedToDeal": False}, {1, 2, 4, 5, 6}),
        ({"createdAfter": "2025-01-15T00:00:00Z"}, {2, 3, 4, 6}),
        ({"createdAfter": "2025-01-15T01:00:00+01:00"}, {2, 3, 4, 6}),
        ({"createdBefore": "2025-01-20T00:00:00Z"}, {1, 2, 5}),
        ({"createdAfter": "2025-01-15T00:00:00Z", "createdBefore": "2025-01-20T00:00:00Z"}, {2}),
        ({"status": ["NEW"], "leadOwner": "Alice"}, {1}),
        ({"search": "JANE"}, {1, 2}),
        ({"search": "roe"}, {3}),
        ({"search": "mail.example"}, {3}),
        ({"search": "globex"}, {2}),
        ({"search": "lead-003"}, {3}),
        ({"search": "jane acme"}, {1}),
        ({"search": "  Jane   GLOBEX "}, {2}),
        # Punctuation separates words, and is matched as nothing else (never as a pattern).
        ({"search": "a.c"}, {1}),
        ({"search": "star"}, {5}),
        ({"search": "chars ltd"}, {6}),
        ({"search": ".*"}, set()),
        ({"search": "("}, set()),
        ({"search": "\\"}, set()),
        ({"search": "^Jane$"}, {1, 2}),
        ({"search": "ane"}, set()),
    ],
)
async def test_filter(gql: GraphQLClient, filter: dict[str, Any], expected: set[int]) -> None:
    await store(*FILTER_LEADS)

    connection = (await gql(LIST_LEADS, {"filter": filter, "first": 100}))["leads"]

    found = [node["leadId"] for node in connection["nodes"]]
    assert sorted(found) == sorted(f"LEAD-{n:03d}" for n in expected)
    assert connection["totalCount"] == len(expected)


async def test_an_empty_status_list_matches_no_lead(gql: GraphQLClient) -> None:
    await store(*FILTER_LEADS)

    connection = (await gql(LIST_LEADS, {"filter": {"status": []}}))["leads"]

    assert connection["nodes"] == []
    assert connection["totalCount"] == 0


async def test_total_count_respects_the_filter_on_every_page(gql: GraphQLClient) -> None:
    await store(*FILTER_LEADS)
    variables: dict[str, Any] = {"filter": {"status": ["NEW", "JUNK", "NURTURE"]}, "first": 2}

    first_page = (await gql(LIST_LEADS, variables))["leads"]
    variables["after"] = first_page["pageInfo"]["endCursor"]
    second_page = (await gql(LIST_LEADS, variables))["leads"]

    assert [first_page["totalCount"], second_page["totalCount"]] == [4, 4]
    assert len(first_page["nodes"]) + len(second_page["nodes"]) == 4
    assert second_page["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize(
    "filter",
    [
        {"leadOwner": {"$ne": None}},
        {"search": {"$regex": ".*"}},
        {"status": {"$ne": "New"}},
    ],
)
async def test_an_operator_in_a_filter_variable_is_rejected(
    gql: GraphQLClient, filter: dict[str, Any]
) -> None:
    await store(*FILTER_LEADS)

    errors = await gql.errors(LIST_LEADS, {"filter": filter})

    assert error_code(errors) == "BAD_USER_INPUT"


async def test_a_lead_created_between_pages_does_not_shift_the_next_page(
    gql: GraphQLClient,
) -> None:
    await store(*(lead(n) for n in range(101, 111)))
    first_page = (await gql(LIST_LEADS, {"first": 5}))["leads"]

    await gql(CREATE_LEAD, {"input": {"firstName": "Newcomer"}})
    after = first_page["pageInfo"]["endCursor"]
    second_page = (await gql(LIST_LEADS, {"first": 5, "after": after}))["leads"]

    assert [node["leadId"] for node in first_page["nodes"]] == [
        f"LEAD-{n}" for n in (110, 109, 108, 107, 106)
    ]
    assert [node["leadId"] for node in second_page["nodes"]] == [
        f"LEAD-{n}" for n in (105, 104, 103, 102, 101)
    ]
    assert second_page["totalCount"] == 11
