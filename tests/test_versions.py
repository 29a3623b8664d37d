"""`updatedAt` is a version that only ever grows, on every write of a lead, whatever the
writer's clock: a stale `expectedUpdatedAt` can never match again."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import services.emails
from models.activity import ActivityType
from models.base import utc_now
from models.lead import LeadDocument
from services import timeline
from tests.conftest import GraphQLClient
from tests.documents import (
    CONVERT_LEAD,
    CREATE_LEAD,
    CREATE_NOTE,
    CREATE_TASK,
    GET_LEAD,
    LOG_CALL,
    SEND_EMAIL,
)
from tests.test_lost_updates import UPDATE_LEAD

TICK = timedelta(milliseconds=1)
# Every write that appends to a lead's timeline without reading its version first, as
# (document, variables). (updateLead and updateLeadStatus read it: tests/test_lost_updates.py.)
WRITES: dict[str, tuple[str, dict[str, Any]]] = {
    "sendEmail": (SEND_EMAIL, {"input": {"subject": "s", "body": "b"}}),
    "logCall": (LOG_CALL, {"input": {"duration": 60}}),
    "createNote": (CREATE_NOTE, {"input": {"content": "n"}}),
    "createTask": (CREATE_TASK, {"input": {"title": "t"}}),
    "convertLeadToDeal": (CONVERT_LEAD, {}),
}


async def new_lead(gql: GraphQLClient) -> dict[str, Any]:
    data = await gql(CREATE_LEAD, {"input": {"firstName": "Jane", "email": "jane@acme.com"}})
    return dict(data["createLead"]["lead"])


async def stored_version(lead_id: str = "LEAD-001") -> object:
    lead = await LeadDocument.get_pymongo_collection().find_one({"lead_id": lead_id})
    assert lead is not None
    return lead.get("updatedAt")


@pytest.mark.parametrize("stored_as", ["datetime", "ISO string"])
@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
async def test_every_write_moves_updated_at_past_a_version_from_a_clock_ahead(
    gql: GraphQLClient, write: tuple[str, dict[str, Any]], stored_as: str
) -> None:
    """Another instance, its clock an hour ahead, wrote the lead last: a write from this
    instance still makes a later version (old code went back to this clock's time)."""
    await new_lead(gql)
    ahead = utc_now() + timedelta(hours=1)
    shown = ahead.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    await LeadDocument.get_pymongo_collection().update_one(
        {"lead_id": "LEAD-001"},
        {"$set": {"updatedAt": ahead if stored_as == "datetime" else shown}},
    )
    document, variables = write

    await gql(document, {"leadId": "LEAD-001", **variables})

    assert await stored_version() == ahead + TICK
    assert (await gql(GET_LEAD, {"leadId": "LEAD-001"}))["lead"]["updatedAt"] == (
        (ahead + TICK).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


async def test_a_stale_expected_updated_at_after_an_append_is_a_conflict(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An email sent in the millisecond the client read the lead (or by an instance whose
    clock says so) makes a new version: the client's update based on its read is refused."""
    read = await new_lead(gql)
    monkeypatch.setattr(
        services.emails, "utc_now", lambda: datetime.fromisoformat(read["updatedAt"])
    )
    await gql(SEND_EMAIL, {"leadId": "LEAD-001", "input": {"subject": "s", "body": "b"}})

    body = (
        await gql.post(
            UPDATE_LEAD,
            {
                "leadId": "LEAD-001",
                "input": {"jobTitle": "CTO"},
                "expectedUpdatedAt": read["updatedAt"],
            },
        )
    ).json()

    assert [error["extensions"]["code"] for error in body.get("errors", [])] == ["CONFLICT"]
    assert (await gql(GET_LEAD, {"leadId": "LEAD-001"}))["lead"]["jobTitle"] is None


async def test_a_lead_stored_without_updated_at_gets_versions_that_grow(
    gql: GraphQLClient,
) -> None:
    """Seed data may lack `updatedAt`: it counts as no version yet, and writes in one
    millisecond still leave two versions."""
    await new_lead(gql)
    collection = LeadDocument.get_pymongo_collection()
    await collection.update_one({"lead_id": "LEAD-001"}, {"$unset": {"updatedAt": ""}})
    at = datetime(2030, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    entry = timeline.activity(ActivityType.NOTE_ADDED, "n", by="x", at=at)

    first = await timeline.record({"lead_id": "LEAD-001"}, [entry], at=at)
    second = await timeline.record({"lead_id": "LEAD-001"}, [entry], at=at)

    assert first is not None
    assert second is not None
    assert (first.updated_at, second.updated_at) == (at, at + TICK)
    assert await stored_version() == at + TICK
