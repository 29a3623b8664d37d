"""No lost updates: `expectedUpdatedAt` makes a write based on a stale read a CONFLICT that
writes nothing, and concurrent timeline writers and conversions lose and duplicate nothing."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

import services.leads
from models.contact import ContactDocument
from models.deal import DealDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.organization import OrganizationDocument
from models.task import TaskDocument
from tests.conftest import GraphQLClient
from tests.documents import (
    CONVERT_LEAD,
    CREATE_LEAD,
    CREATE_TASK,
    GET_LEAD,
    LEAD_FIELDS,
    SEND_EMAIL,
    UPDATE_LEAD_STATUS,
)

UPDATE_LEAD = f"""
mutation UpdateLead($leadId: String!, $input: UpdateLeadInput!, $expectedUpdatedAt: DateTime) {{
  updateLead(leadId: $leadId, input: $input, expectedUpdatedAt: $expectedUpdatedAt) {{
    lead {{ {LEAD_FIELDS} }}
  }}
}}
"""
UPDATE_TASK = """
mutation UpdateTask($id: ID!, $input: UpdateTaskInput!, $expectedUpdatedAt: DateTime) {
  updateTask(id: $id, input: $input, expectedUpdatedAt: $expectedUpdatedAt) {
    task { id title status priority assignedTo updatedAt }
    lead { leadId activitiesCount }
  }
}
"""
TASKS = """
query Tasks($leadId: String!) {
  lead(leadId: $leadId) { activitiesCount tasks { id title status priority assignedTo updatedAt } }
}
"""


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def new_lead(gql: GraphQLClient) -> dict[str, Any]:
    data = await gql(CREATE_LEAD, {"input": {"firstName": "Jane", "email": "jane@acme.com"}})
    return dict(data["createLead"]["lead"])


async def read_lead(gql: GraphQLClient, lead_id: str = "LEAD-001") -> dict[str, Any]:
    return dict((await gql(GET_LEAD, {"leadId": lead_id}))["lead"])


async def new_task(gql: GraphQLClient) -> dict[str, Any]:
    await new_lead(gql)
    await gql(CREATE_TASK, {"leadId": "LEAD-001", "input": {"title": "Call back"}})
    return await read_task(gql)


async def read_task(gql: GraphQLClient) -> dict[str, Any]:
    (task,) = (await gql(TASKS, {"leadId": "LEAD-001"}))["lead"]["tasks"]
    return dict(task)


async def update_lead(gql: GraphQLClient, expected: str | None, **input: Any) -> dict[str, Any]:
    variables = {"leadId": "LEAD-001", "input": input, "expectedUpdatedAt": expected}
    body: dict[str, Any] = (await gql.post(UPDATE_LEAD, variables)).json()
    return body


async def update_task(
    gql: GraphQLClient, task_id: str, expected: str | None, **input: Any
) -> dict[str, Any]:
    variables = {"id": task_id, "input": input, "expectedUpdatedAt": expected}
    body: dict[str, Any] = (await gql.post(UPDATE_TASK, variables)).json()
    return body


def hold_reads(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, readers: int) -> None:
    """The worst interleaving, every time: the first `readers` reads of `target.name` (the
    mutations' own reads before their writes) wait for each other, so each of the concurrent
    writers has read the same version before any of them writes."""
    read: Callable[..., Awaitable[Any]] = getattr(target, name)
    barrier = asyncio.Barrier(readers)
    calls = 0

    async def held(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        result = await read(*args, **kwargs)
        if calls <= readers:
            await barrier.wait()
        return result

    monkeypatch.setattr(target, name, held)


async def test_a_stale_expected_updated_at_is_a_conflict_that_writes_nothing(
    gql: GraphQLClient,
) -> None:
    read = await new_lead(gql)

    fresh = await update_lead(gql, read["updatedAt"], jobTitle="CTO")
    assert codes(fresh) == []
    current = fresh["data"]["updateLead"]["lead"]
    assert current["jobTitle"] == "CTO"
    assert current["updatedAt"] != read["updatedAt"]

    stale = await update_lead(gql, read["updatedAt"], jobTitle="CEO", territory="EU")
    assert codes(stale) == ["CONFLICT"]
    assert stale["data"] is None
    message = stale["errors"][0]["message"]
    assert current["updatedAt"] in message
    assert read["updatedAt"] in message
    after = await read_lead(gql)
    assert {k: after[k] for k in current} == current  # fields, updatedAt, timeline: unchanged


async def test_a_stale_version_is_a_conflict_even_when_nothing_would_change(
    gql: GraphQLClient,
) -> None:
    read = await new_lead(gql)
    await update_lead(gql, None, jobTitle="CTO")

    stale = await update_lead(gql, read["updatedAt"], firstName="Jane")

    assert codes(stale) == ["CONFLICT"]


async def test_without_expected_updated_at_the_last_write_wins(gql: GraphQLClient) -> None:
    read = await new_lead(gql)
    await update_lead(gql, read["updatedAt"], jobTitle="CTO")

    assert codes(await update_lead(gql, None, jobTitle="CEO")) == []
    assert (await read_lead(gql))["jobTitle"] == "CEO"


async def test_of_clients_that_read_the_same_lead_exactly_one_writes(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Different fields, so only the version (not the pinned old field values) can tell the
    writes apart: every loser must get CONFLICT, not a retry on top of the winner."""
    version = (await new_lead(gql))["updatedAt"]
    changes = [{"jobTitle": "CTO"}, {"territory": "EU"}, {"source": "Web"}, {"lastName": "Roe"}]
    hold_reads(monkeypatch, services.leads, "get_lead", len(changes))

    results = await asyncio.gather(*(update_lead(gql, version, **c) for c in changes))

    assert sorted(codes(body) for body in results) == [[]] + [["CONFLICT"]] * 3
    (won,) = [change for change, body in zip(changes, results, strict=True) if "errors" not in body]
    lead = await read_lead(gql)
    assert [a["field"] for a in lead["activities"] if a["type"] == "UPDATED"] == list(won)
    assert lead["activitiesCount"] == 2
    assert {k: lead[k] for k in ("jobTitle", "territory", "source", "lastName")} == {
        "jobTitle": None,
        "territory": None,
        "source": None,
        "lastName": None,
    } | won


async def test_writes_in_one_millisecond_still_make_new_versions(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """updatedAt is the version: a write must change it even when the clock has not moved."""
    read = await new_lead(gql)
    frozen = datetime.fromisoformat(read["updatedAt"])
    monkeypatch.setattr(services.leads, "utc_now", lambda: frozen)

    first = await update_lead(gql, read["updatedAt"], jobTitle="CTO")
    written = datetime.fromisoformat(first["data"]["updateLead"]["lead"]["updatedAt"])
    assert written - frozen == timedelta(milliseconds=1)
    assert codes(await update_lead(gql, read["updatedAt"], jobTitle="CEO")) == ["CONFLICT"]


async def test_a_stale_task_version_is_a_conflict_that_writes_nothing(
    gql: GraphQLClient,
) -> None:
    read = await new_task(gql)
    assert read["updatedAt"] is not None

    fresh = await update_task(gql, read["id"], read["updatedAt"], status="TODO")
    assert codes(fresh) == []
    current = fresh["data"]["updateTask"]["task"]
    assert current["updatedAt"] != read["updatedAt"]
    lead_before = await read_lead(gql)

    stale = await update_task(gql, read["id"], read["updatedAt"], status="DONE", priority="HIGH")
    assert codes(stale) == ["CONFLICT"]
    assert current["updatedAt"] in stale["errors"][0]["message"]
    assert await read_task(gql) == current
    assert await read_lead(gql) == lead_before  # no TASK_UPDATED entry either


async def test_of_clients_that_read_the_same_task_exactly_one_writes(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = await new_task(gql)
    changes = [{"status": "TODO"}, {"priority": "HIGH"}, {"assignedTo": "Ann"}]
    hold_reads(monkeypatch, TaskDocument, "get", len(changes))

    results = await asyncio.gather(
        *(update_task(gql, read["id"], read["updatedAt"], **c) for c in changes)
    )

    assert sorted(codes(body) for body in results) == [[]] + [["CONFLICT"]] * 2
    (won,) = [change for change, body in zip(changes, results, strict=True) if "errors" not in body]
    task = await read_task(gql)
    assert {k: task[k] for k in ("status", "priority", "assignedTo")} == {
        "status": "BACKLOG",
        "priority": "MEDIUM",
        "assignedTo": None,
    } | won
    lead = await read_lead(gql)
    assert [a["type"] for a in lead["activities"]].count("TASK_UPDATED") == 1


async def test_a_task_stored_without_updated_at_has_its_creation_as_version(
    gql: GraphQLClient,
) -> None:
    """Tasks stored before they were stamped (or imported) have no updatedAt: never changed,
    so the API shows createdAt, and that is the version to pass back."""
    await new_lead(gql)
    created = datetime(2024, 5, 1, 9, 30, 0, 123000, tzinfo=UTC)
    task_id = ObjectId()
    await TaskDocument.get_pymongo_collection().insert_one(
        {
            "_id": task_id,
            "lead_id": "LEAD-001",
            "title": "Old",
            "status": "Todo",
            "priority": "Low",
            "createdAt": created,
        }
    )
    read = await read_task(gql)
    assert read["updatedAt"] == "2024-05-01T09:30:00.123Z"

    stale = await update_task(gql, str(task_id), "2024-05-01T09:30:00.124Z", status="DONE")
    assert codes(stale) == ["CONFLICT"]
    fresh = await update_task(gql, str(task_id), read["updatedAt"], status="DONE")
    assert codes(fresh) == []
    assert fresh["data"]["updateTask"]["task"]["updatedAt"] != read["updatedAt"]
    stored = await TaskDocument.get_pymongo_collection().find_one({"_id": task_id})
    assert stored is not None
    assert stored["updatedAt"] > created


@pytest.mark.parametrize("kind", ["lead", "task"])
async def test_an_expected_updated_at_without_offset_is_bad_input(
    gql: GraphQLClient, kind: str
) -> None:
    task = await new_task(gql)
    before = (await read_lead(gql), await read_task(gql))
    naive = "2025-01-20T10:00:00"

    if kind == "lead":
        body = await update_lead(gql, naive, jobTitle="CTO")
    else:
        body = await update_task(gql, task["id"], naive, status="DONE")

    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["fieldErrors"][0]["field"] == "expectedUpdatedAt"
    assert "offset" in body["errors"][0]["message"]
    assert (await read_lead(gql), await read_task(gql)) == before


async def test_concurrent_status_changes_and_emails_lose_no_entry(gql: GraphQLClient) -> None:
    """20 timeline writers of two kinds at once on one lead: 20 new entries, none lost."""
    await new_lead(gql)
    statuses = [
        gql.post(UPDATE_LEAD_STATUS, {"leadId": "LEAD-001", "status": s})
        for s in ["CONTACTED", "NURTURE"] * 5
    ]
    emails = [
        gql.post(SEND_EMAIL, {"leadId": "LEAD-001", "input": {"subject": f"M{i}", "body": "b"}})
        for i in range(10)
    ]

    results = await asyncio.gather(
        *(item for pair in zip(statuses, emails, strict=True) for item in pair)
    )

    assert [codes(response.json()) for response in results] == [[]] * 20
    lead = await read_lead(gql)
    kinds = [a["type"] for a in lead["activities"]]
    assert lead["activitiesCount"] == 21
    assert (kinds.count("STATUS_CHANGED"), kinds.count("EMAIL_SENT")) == (10, 10)
    assert await EmailDocument.get_pymongo_collection().count_documents({}) == 10
    changes = [a for a in reversed(lead["activities"]) if a["type"] == "STATUS_CHANGED"]
    assert [c["oldValue"] for c in changes] == ["New", *(c["newValue"] for c in changes[:-1])]


async def test_concurrent_conversions_log_one_conversion(gql: GraphQLClient) -> None:
    await gql(
        CREATE_LEAD,
        {"input": {"firstName": "Jane", "email": "jane@acme.com", "organization": "Acme"}},
    )

    results = await asyncio.gather(
        *(gql.post(CONVERT_LEAD, {"leadId": "LEAD-001"}) for _ in range(10))
    )

    assert sorted(codes(r.json()) for r in results) == [[]] + [["CONFLICT"]] * 9
    for document in (DealDocument, OrganizationDocument, ContactDocument):
        assert await document.get_pymongo_collection().count_documents({}) == 1, document
    kinds = [a["type"] for a in (await read_lead(gql))["activities"]]
    assert kinds == ["CONVERTED_TO_DEAL", "STATUS_CHANGED", "CREATED"]
    lead = await LeadDocument.get_pymongo_collection().find_one({"lead_id": "LEAD-001"})
    deal = await DealDocument.get_pymongo_collection().find_one({})
    assert lead is not None
    assert deal is not None
    assert lead["dealId"] == deal["deal_id"]
