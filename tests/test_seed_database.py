"""The seed's database, served as it is (docs/seed.md): a fixture written in the seed's exact
shapes (tests/seed_fixture.py) is migrated at start, then the seed's six test steps run
through REST and through GraphQL, and the stored documents keep the seed's shapes."""

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient
from starlette.applications import Starlette

from config import Settings
from models.counter import Counter
from models.lead import LeadDocument
from server import create_app
from services.doctor import unreadable_documents
from services.migration import LOCK_ID, LOCKS, migrate
from tests.conftest import GraphQLClient, mint
from tests.documents import (
    CONVERT_LEAD,
    CREATE_LEAD,
    CREATE_NOTE,
    CREATE_TASK,
    GET_LEAD,
    LIST_LEADS,
    LOG_CALL,
    SEND_EMAIL,
    UPDATE_LEAD_STATUS,
    UPDATE_TASK,
)
from tests.seed_fixture import (
    ADDED_LEAD_KEYS,
    SEED_INDEXES,
    SEED_LEAD_KEYS,
    UNKNOWN,
    load_seed_database,
    seed_children,
    seed_lead,
)

ACTIVITY_KEYS = {"type", "description", "by", "timestamp", "field", "oldValue", "newValue"}
SEED_EMAIL_KEYS = set(seed_children("LEAD-001", 1)["lead_emails"]) | {"_id"}
SEED_CALL_KEYS = set(seed_children("LEAD-001", 1)["lead_calls"]) | {"_id"}
SEED_TASK_KEYS = set(seed_children("LEAD-001", 1)["lead_tasks"]) | {"_id", "updatedAt"}
SEED_NOTE_KEYS = set(seed_children("LEAD-001", 1)["lead_notes"]) | {"_id"}


class Seeded:
    """The app over a freshly loaded seed database, and clients for both doors."""

    def __init__(self, app: Starlette, raw: Any, http: httpx.AsyncClient) -> None:
        self.app = app
        self.db = raw
        self.http = http
        self.headers = {"authorization": f"Bearer {mint(app)}"}
        self.gql = GraphQLClient(http, mint(app))

    async def rest(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = await self.http.request(
            method, f"/api/crm{path}", json=body, headers=self.headers
        )
        assert response.status_code == status, response.text
        return response.json()

    async def raw_lead(self, lead_id: str) -> dict[str, Any]:
        found = await self.db.leads.find_one({"lead_id": lead_id})
        assert found is not None
        return dict(found)


@pytest.fixture
async def seeded(settings: Settings) -> AsyncIterator[Seeded]:
    name = f"crm_seed_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    await load_seed_database(client[name])
    app = create_app(settings.model_copy(update={"db_name": name}))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as http:
                yield Seeded(app, client[name], http)
    finally:
        await client.drop_database(name)
        await client.close()


def assert_seed_shape(lead: dict[str, Any]) -> None:
    assert set(lead) <= SEED_LEAD_KEYS | ADDED_LEAD_KEYS | set(UNKNOWN), set(lead)
    for key in ("createdAt", "updatedAt"):
        assert isinstance(lead[key], datetime), (key, lead[key])
    for entry in lead.get("activities", []):
        assert set(entry) <= ACTIVITY_KEYS, entry
        assert isinstance(entry["timestamp"], datetime), entry


async def test_start_up_migrates_the_seed_database(seeded: Seeded) -> None:
    leads = await seeded.db.leads.find({}).sort("lead_id", 1).to_list()
    assert [lead["leadNumber"] for lead in leads] == list(range(1, 13))
    for lead in leads:
        assert_seed_shape(lead)
    assert (await seeded.db.leads.find_one({"lead_id": "LEAD-002"}))["customField"] == "kept"
    # Counters continue after the highest number in use.
    assert await Counter.get_pymongo_collection().find_one({"_id": "lead"}) == {
        "_id": "lead",
        "seq": 12,
    }
    for name in ("lead_emails", "lead_tasks", "lead_notes"):
        for child in await seeded.db[name].find({}).to_list():
            assert all(
                not isinstance(value, str) or "T10:00" not in value for value in child.values()
            )
    # The seed's indexes under their own names are used, not duplicated.
    for name, indexes in SEED_INDEXES.items():
        info = await seeded.db[name].index_information()
        keys = [tuple(details["key"]) for details in info.values()]
        assert len(keys) == len(set(keys)), (name, info)
        for _keys, options in indexes:
            assert options["name"] in info
    # Running it again changes nothing.
    again = await migrate()
    assert again.total == 0, again


async def test_the_seed_steps_over_rest(seeded: Seeded) -> None:
    # 1. Create a lead: the next number after LEAD-012, on the first try.
    created = await seeded.rest(
        "POST",
        "/leads",
        {
            "salutation": "Ms",
            "firstName": "Grace",
            "lastName": "Hopper",
            "email": "grace@example.com",
            "mobile": "+1 555 0100",
            "organization": "Navy",
            "status": "New",
            "annualRevenue": 1000000,
            "lead_id": "ignored",  # the frontend's form may send more than the server takes
        },
    )
    assert created["message"] == "Lead created successfully"
    assert created["lead_id"] == "LEAD-013"
    assert ObjectId.is_valid(created["id"])
    listed = await seeded.rest("GET", "/leads")
    assert next(lead["lead_id"] for lead in listed) == "LEAD-013"
    assert {lead["lead_id"] for lead in listed} == {f"LEAD-{n:03d}" for n in range(1, 14)}
    assert all("activities" not in lead and "activitiesCount" in lead for lead in listed)

    # 2.-5. On LEAD-001, the seed's own example document (string timestamps).
    lead = await seeded.rest("GET", "/leads/LEAD-001")
    assert lead["status"] == "New"
    assert lead["activitiesCount"] == 1
    assert lead["createdAt"].startswith("2025-01-01T10:00:00")
    email = await seeded.rest(
        "POST", "/leads/LEAD-001/emails", {"subject": "Follow up", "body": "Hello"}
    )
    assert email["message"] == "Email sent successfully"
    call = await seeded.rest(
        "POST",
        "/leads/LEAD-001/calls",
        {"type": "Outbound Call", "duration": 42, "status": "no-answer"},
    )
    assert call["message"] == "Call logged successfully"
    task = await seeded.rest(
        "POST",
        "/leads/LEAD-001/tasks",
        {"title": "Send proposal", "priority": "High", "dueDate": "2025-01-25T14:00:00"},
    )
    assert task["message"] == "Task created successfully"
    note = await seeded.rest(
        "POST", "/leads/LEAD-001/notes", {"title": "Call notes", "content": "Discussed"}
    )
    assert note["message"] == "Note created successfully"
    emails = await seeded.rest("GET", "/leads/LEAD-001/emails")
    assert [e["subject"] for e in emails] == ["Follow up", "Follow up meeting"]
    assert emails[1]["customField"] == "kept"  # unknown fields are served too
    assert [c["status"] for c in await seeded.rest("GET", "/leads/LEAD-001/calls")] == [
        "no-answer",
        "no-answer",
    ]
    tasks = await seeded.rest("GET", "/leads/LEAD-001/tasks")
    assert tasks[0]["dueDate"].startswith("2025-01-25T14:00:00")
    seed_task = tasks[1]
    updated = await seeded.rest("PUT", f"/tasks/{seed_task['id']}", {"status": "Done"})
    assert updated["message"] == "Task updated successfully"
    assert len(await seeded.rest("GET", "/leads/LEAD-001/notes")) == 2
    status = await seeded.rest("PUT", "/leads/LEAD-001/status", {"status": "Contacted"})
    assert status["status"] == "Contacted"

    # 6. Convert to a deal: Qualified, convertedToDeal; a second time is 400.
    converted = await seeded.rest("POST", "/leads/LEAD-001/convert-to-deal", {})
    assert converted["deal_id"] == "DEAL-001"
    again = await seeded.rest("POST", "/leads/LEAD-001/convert-to-deal", {}, status=400)
    assert again["code"] == "CONFLICT"
    lead = await seeded.rest("GET", "/leads/LEAD-001")
    assert lead["status"] == "Qualified"
    assert lead["convertedToDeal"] is True
    assert [a["type"] for a in lead["activities"]] == [
        "created",
        "email_sent",
        "call_logged",
        "task_created",
        "note_added",
        "task_updated",
        "status_changed",
        "status_changed",
        "converted_to_deal",
    ]

    # The stored documents keep the seed's shapes.
    assert_seed_shape(await seeded.raw_lead("LEAD-001"))
    assert_seed_shape(await seeded.raw_lead("LEAD-013"))
    for collection, keys in (
        ("lead_emails", SEED_EMAIL_KEYS),
        ("lead_calls", SEED_CALL_KEYS),
        ("lead_tasks", SEED_TASK_KEYS),
        ("lead_notes", SEED_NOTE_KEYS),
    ):
        for child in await seeded.db[collection].find({"lead_id": "LEAD-001"}).to_list():
            assert set(child) <= keys, (collection, child)

    # Delete with everything around it (the seed's children included).
    deleted = await seeded.rest("DELETE", "/leads/LEAD-003")
    assert deleted["deleted"] == {"emails": 1, "calls": 1, "tasks": 1, "notes": 1}
    await seeded.rest("GET", "/leads/LEAD-003", status=404)


async def test_the_seed_steps_over_graphql(seeded: Seeded) -> None:
    gql = seeded.gql
    created = await gql(CREATE_LEAD, {"input": {"firstName": "Grace", "email": "g@example.com"}})
    assert created["createLead"]["lead"]["leadId"] == "LEAD-013"
    # LEAD-002: datetimes, unknown fields, no timeline flags.
    lead = (await gql(GET_LEAD, {"leadId": "LEAD-002"}))["lead"]
    assert lead["status"] == "NURTURE"
    assert lead["convertedToDeal"] is False
    assert lead["emails"][0]["subject"] == "Follow up meeting"
    assert lead["calls"][0]["status"] == "NO_ANSWER"
    assert lead["calls"][0]["type"] == "OUTBOUND"
    assert lead["tasks"][0]["updatedAt"] == lead["tasks"][0]["createdAt"]
    await gql(SEND_EMAIL, {"leadId": "LEAD-002", "input": {"subject": "Hi", "body": "Hello"}})
    await gql(LOG_CALL, {"leadId": "LEAD-002", "input": {"duration": 60}})
    task = await gql(CREATE_TASK, {"leadId": "LEAD-002", "input": {"title": "Follow up"}})
    await gql(CREATE_NOTE, {"leadId": "LEAD-002", "input": {"content": "Met at the fair"}})
    await gql(
        UPDATE_TASK, {"id": lead["tasks"][0]["id"], "input": {"status": "DONE", "priority": "LOW"}}
    )
    assert task["createTask"]["lead"]["activitiesCount"] == 4
    await gql(UPDATE_LEAD_STATUS, {"leadId": "LEAD-002", "status": "CONTACTED"})
    converted = await gql(CONVERT_LEAD, {"leadId": "LEAD-002"})
    assert converted["convertLeadToDeal"]["deal"]["dealId"] == "DEAL-001"
    assert converted["convertLeadToDeal"]["lead"]["status"] == "QUALIFIED"
    stored = await seeded.raw_lead("LEAD-002")
    assert_seed_shape(stored)
    assert {key: stored[key] for key in UNKNOWN} == UNKNOWN  # unknown fields survive writes


@pytest.mark.parametrize(
    "field", ["CREATED_AT", "UPDATED_AT", "LEAD_ID", "ANNUAL_REVENUE", "FIRST_NAME"]
)
async def test_seed_leads_are_listed_in_every_order(seeded: Seeded, field: str) -> None:
    for direction in ("ASC", "DESC"):
        seen: list[str] = []
        after = None
        for _ in range(10):  # 12 leads, 5 a page: 3 pages
            page = (
                await seeded.gql(
                    LIST_LEADS,
                    {
                        "first": 5,
                        "after": after,
                        "orderBy": {"field": field, "direction": direction},
                    },
                )
            )["leads"]
            seen += [edge["node"]["leadId"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert sorted(seen) == [f"LEAD-{n:03d}" for n in range(1, 13)], (field, direction, seen)
        if field == "LEAD_ID":
            expected = [f"LEAD-{n:03d}" for n in range(1, 13)]
            assert seen == (expected if direction == "ASC" else expected[::-1])


async def test_seed_leads_are_filtered(seeded: Seeded) -> None:
    async def found(filter_: dict[str, Any]) -> set[str]:
        page = (await seeded.gql(LIST_LEADS, {"first": 100, "filter": filter_}))["leads"]
        return {node["leadId"] for node in page["nodes"]}

    assert await found({"status": ["NEW"]}) == {"LEAD-001", "LEAD-006", "LEAD-012"}
    assert len(await found({"convertedToDeal": False})) == 12
    assert await found({"createdAfter": "2025-01-11T00:00:00Z"}) == {"LEAD-011", "LEAD-012"}
    assert await found({"search": "doe1"}) == {"LEAD-001", "LEAD-010", "LEAD-011", "LEAD-012"}
    assert len(await found({"territory": "USA"})) == 8


async def test_a_seed_lead_written_after_start_is_served_before_any_migration(
    seeded: Seeded,
) -> None:
    """The seed's backend may still write while both run: no `leadNumber`, string dates."""
    await seeded.db.leads.insert_one(seed_lead(41))
    lead = (await seeded.gql(GET_LEAD, {"leadId": "LEAD-041"}))["lead"]
    assert lead["createdAt"] == "2025-02-10T10:00:00.000Z"
    page = (await seeded.gql(LIST_LEADS, {"first": 100}))["leads"]
    assert "LEAD-041" in {node["leadId"] for node in page["nodes"]}
    await seeded.rest("PUT", "/leads/LEAD-041/status", {"status": "Junk"})
    await migrate()
    assert (await seeded.raw_lead("LEAD-041"))["leadNumber"] == 41
    created = await seeded.rest("POST", "/leads", {"firstName": "Next"})
    assert created["lead_id"] == "LEAD-042"


async def test_an_unreadable_document_is_skipped_in_lists_and_named_alone(
    seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    broken = {**seed_lead(50), "status": "Won over"}  # not a status this server knows
    del broken["firstName"]
    inserted = await seeded.db.leads.insert_one(broken)
    await seeded.db.lead_emails.insert_one({"lead_id": "LEAD-004", "subject": None})
    with caplog.at_level(logging.WARNING, logger="crm.documents"):
        page = (await seeded.gql(LIST_LEADS, {"first": 100}))["leads"]
        assert len(page["nodes"]) == 12
        listed = await seeded.rest("GET", "/leads")
        assert len(listed) == 12
        lead = (await seeded.gql(GET_LEAD, {"leadId": "LEAD-004"}))["lead"]
        assert len(lead["emails"]) == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "crm.documents"]
    assert any(str(inserted.inserted_id) in w and "firstName" in w for w in warnings), warnings

    errors = await seeded.gql.errors(GET_LEAD, {"leadId": "LEAD-050"})
    assert errors[0]["extensions"]["code"] == "UNREADABLE_DOCUMENT"
    assert "LEAD-050" in errors[0]["message"]
    assert "firstName" in errors[0]["message"]
    body = await seeded.rest("GET", "/leads/LEAD-050", status=500)
    assert body["code"] == "UNREADABLE_DOCUMENT"
    assert str(inserted.inserted_id) in body["detail"]

    findings = [finding async for finding in unreadable_documents()]
    assert {(f.collection, f.human_id) for f in findings} == {
        ("leads", "LEAD-050"),
        ("lead_emails", "LEAD-004"),
    }


async def test_the_migration_resumes_after_an_instance_died_holding_it(seeded: Seeded) -> None:
    leads = seeded.db.leads
    await leads.update_many({}, {"$unset": {"leadNumber": ""}})
    await leads.update_one({"lead_id": "LEAD-005"}, {"$set": {"createdAt": "2025-01-05T10:00:00"}})
    # An instance that crashed mid-run: its lease still stands, expired.
    await seeded.db[LOCKS].update_one(
        {"_id": LOCK_ID},
        {"$set": {"owner": "dead:1", "leaseUntil": datetime(2025, 1, 1)}},
        upsert=True,
    )
    report = await migrate(owner="next:2")
    assert report.changed["leads"] == 12  # all of a document's steps in one write
    stored = await leads.find_one({"lead_id": "LEAD-005"})
    assert stored is not None
    assert isinstance(stored["createdAt"], datetime)
    assert await leads.count_documents({"leadNumber": {"$exists": False}}) == 0
    lock = await seeded.db[LOCKS].find_one({"_id": LOCK_ID})
    assert lock is not None
    assert lock["owner"] is None
    assert lock["lastRunBy"] == "next:2"
    lead = await LeadDocument.find_one({"lead_id": "LEAD-005"})
    assert lead is not None
    assert lead.lead_number == 5
