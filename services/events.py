"""The live timeline: every new activity, delivered to `leadActivity` subscribers.

Where MongoDB has change streams (a replica set, Atlas), every server instance watches the
`leads` collection, so each subscriber hears about writes made by any instance. Where it has
none (the embedded engine, a standalone mongod), each instance delivers the writes it made
itself: subscribers see only what their own instance wrote.
"""

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure, PyMongoError

from models.lead import LeadDocument
from services.errors import ServiceUnavailable

log = logging.getLogger("crm.events")

# Events waiting for one subscriber; a client that falls this far behind is disconnected
# (it resubscribes and refetches) rather than letting the server's memory grow.
QUEUE_LIMIT = 1000
RETRY_SECONDS = 1.0
PUSHED_ENTRY = re.compile(r"^activities\.(\d+)$")
CHANGES = [{"$match": {"operationType": {"$in": ["insert", "update"]}}}]


@dataclass(frozen=True)
class LeadActivityEvent:
    lead: LeadDocument
    """The lead as stored right after the activity was written."""
    number: int
    """The new activity's place on the lead's timeline (1 = oldest)."""


@dataclass(eq=False)
class Subscriber:
    lead_id: str | None
    queue: asyncio.Queue[LeadActivityEvent | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT + 1)
    )

    def offer(self, event: LeadActivityEvent) -> None:
        if self.queue.qsize() >= QUEUE_LIMIT:
            self.queue.put_nowait(None)  # the overflow marker ends the subscription
            return
        self.queue.put_nowait(event)


class LeadActivityHub:
    """Fans new activities out to the subscribers of this process."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.watcher: asyncio.Task[None] | None = None

    @property
    def watching(self) -> bool:
        """Whether events come from a change stream (all instances) or from local writes."""
        return self.watcher is not None

    def written(self, lead: LeadDocument, count: int) -> None:
        """A write by this process appended `count` activities to `lead`."""
        if not self.watching:
            total = len(lead.activities)
            self.deliver(lead, range(total - count + 1, total + 1))

    def deliver(self, lead: LeadDocument, numbers: range | list[int]) -> None:
        for subscriber in list(self.subscribers):
            if subscriber.lead_id in (None, lead.lead_id):
                for number in numbers:
                    subscriber.offer(LeadActivityEvent(lead, number))

    async def subscribe(self, lead_id: str | None) -> AsyncIterator[LeadActivityEvent]:
        """New activities of one lead (or of every lead when `lead_id` is None), as written."""
        subscriber = Subscriber(lead_id)
        self.subscribers.add(subscriber)
        try:
            while (event := await subscriber.queue.get()) is not None:
                yield event
            raise ServiceUnavailable("Too many unread events for this subscription; resubscribe")
        finally:
            self.subscribers.discard(subscriber)

    async def start(self, leads: AsyncCollection[dict[str, Any]]) -> None:
        """Watch `leads` when the deployment has change streams; otherwise stay local."""
        if self.watching:
            return  # the hub is per process; a second app in it shares the watcher
        try:
            stream = await leads.watch(CHANGES, full_document="updateLookup")
        except OperationFailure as error:
            log.info("no change streams (%s): live events reach this instance only", error)
            return
        self.watcher = asyncio.create_task(self.watch(leads, stream))
        log.info("live events from the leads change stream (all instances)")

    async def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            await asyncio.gather(self.watcher, return_exceptions=True)
            self.watcher = None

    async def watch(
        self, leads: AsyncCollection[dict[str, Any]], stream: AsyncChangeStream[dict[str, Any]]
    ) -> None:
        """Deliver every change, reopening the stream where it left off after a failure."""
        while True:
            try:
                async with stream:
                    async for change in stream:
                        for lead, numbers in events_of_change(change):
                            self.deliver(lead, numbers)
            except PyMongoError as error:
                log.warning("leads change stream failed, reopening: %s", error)
            await asyncio.sleep(RETRY_SECONDS)
            try:
                stream = await leads.watch(
                    CHANGES, full_document="updateLookup", resume_after=stream.resume_token
                )
            except PyMongoError as error:
                log.warning("leads change stream failed to reopen: %s", error)


def events_of_change(change: Mapping[str, Any]) -> Iterator[tuple[LeadDocument, list[int]]]:
    """The new activities a change-stream event announces, as (lead, their numbers)."""
    document = change.get("fullDocument")
    if document is None:  # the lead was deleted before the event was read
        return
    lead = LeadDocument.model_validate(document)
    if change["operationType"] == "insert":
        yield lead, list(range(1, len(lead.activities) + 1))
        return
    updated: Mapping[str, Any] = change.get("updateDescription", {}).get("updatedFields", {})
    numbers = sorted(int(m.group(1)) + 1 for key in updated if (m := PUSHED_ENTRY.match(key)))
    if "activities" in updated:
        # The server reported the whole array: the new entries are those of this write's time.
        written_at = updated.get("updatedAt")
        numbers = [
            number
            for number, entry in enumerate(lead.activities, start=1)
            if entry.timestamp == written_at
        ]
    if numbers:
        yield lead, numbers


hub = LeadActivityHub()
