"""Live-timeline plumbing that the Node subscription tests cannot reach: reading MongoDB
change-stream events (no change streams in the embedded engine) and slow subscribers."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.activity import ActivityType
from models.base import to_bson
from models.lead import LeadDocument
from services import events, timeline
from services.errors import ServiceUnavailable

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def stored_lead(entries: int) -> dict[str, Any]:
    """A lead as MongoDB stores it, with `entries` timeline entries one minute apart."""
    activities = [
        timeline.activity(ActivityType.UPDATED, f"entry {n}", by="A", at=T0 + timedelta(minutes=n))
        for n in range(entries)
    ]
    lead = LeadDocument(
        lead_id="LEAD-007", lead_number=7, first_name="Ada", created_at=T0,
        updated_at=activities[-1].timestamp, activities=activities,
    )  # fmt: skip
    document: dict[str, Any] = lead.model_dump(by_alias=True, exclude={"id"})
    document["activities"] = to_bson(activities)
    return document


def announced(change: dict[str, Any]) -> list[tuple[str, list[int]]]:
    return [(lead.lead_id, numbers) for lead, numbers in events.events_of_change(change)]


def test_an_inserted_lead_announces_its_whole_timeline() -> None:
    change = {"operationType": "insert", "fullDocument": stored_lead(1)}
    assert announced(change) == [("LEAD-007", [1])]


def test_pushed_entries_are_announced_by_their_position() -> None:
    change = {
        "operationType": "update",
        "fullDocument": stored_lead(5),
        "updateDescription": {
            "updatedFields": {"activities.3": {}, "activities.4": {}, "updatedAt": T0}
        },
    }
    assert announced(change) == [("LEAD-007", [4, 5])]


def test_a_whole_array_in_the_change_announces_the_entries_of_that_write() -> None:
    document = stored_lead(3)
    written_at = T0 + timedelta(minutes=2)
    change = {
        "operationType": "update",
        "fullDocument": document,
        "updateDescription": {"updatedFields": {"activities": [], "updatedAt": written_at}},
    }
    assert announced(change) == [("LEAD-007", [3])]


def test_changes_without_new_entries_or_lead_announce_nothing() -> None:
    no_entries = {
        "operationType": "update",
        "fullDocument": stored_lead(2),
        "updateDescription": {"updatedFields": {"email": "x@example.com"}},
    }
    deleted_since = {"operationType": "update", "fullDocument": None}
    assert announced(no_entries) == []
    assert announced(deleted_since) == []


async def test_a_subscriber_that_falls_behind_is_ended_not_buffered_forever() -> None:
    hub = events.LeadActivityHub()
    lead = LeadDocument.model_validate(stored_lead(1))
    subscription = hub.subscribe(None)
    first = asyncio.ensure_future(anext(subscription))
    await asyncio.sleep(0)  # the subscriber is registered once the generator runs

    hub.deliver(lead, range(1, events.QUEUE_LIMIT + 2))

    assert (await first).number == 1
    delivered = [await anext(subscription) for _ in range(events.QUEUE_LIMIT - 1)]
    assert delivered[-1].number == events.QUEUE_LIMIT
    with pytest.raises(ServiceUnavailable):
        await anext(subscription)
    assert hub.subscribers == set()


async def test_local_writes_reach_matching_subscribers_only() -> None:
    hub = events.LeadActivityHub()
    lead = LeadDocument.model_validate(stored_lead(2))
    own, other = hub.subscribe("LEAD-007"), hub.subscribe("LEAD-008")
    got_own = asyncio.ensure_future(anext(own))
    got_other = asyncio.ensure_future(anext(other))
    await asyncio.sleep(0)

    hub.written(lead, 1)

    assert (await asyncio.wait_for(got_own, 1)).number == 2
    await asyncio.sleep(0.05)
    assert not got_other.done()
    got_other.cancel()
