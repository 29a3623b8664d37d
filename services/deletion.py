"""Deleting a lead with everything that hangs off it, leaving no orphan.

The work is a list of steps (`STEPS`). On a replica set or sharded cluster they run in one
transaction: all or nothing. Elsewhere (a standalone, the embedded engine) their order keeps
every state a crash can leave orphan-free, and each can run again, so a retried deleteLead
finishes what an interrupted one started:

1. read the lead (and how many timeline entries it has);
2. delete its emails, calls, tasks and notes, one step each: a crash leaves the lead;
3. delete the lead, only if its timeline has not grown since 1: adding a child logs an
   entry, so a child added meanwhile makes this miss and the steps start over;
4. sweep the children again: catches a child whose adder found the lead just before it went
   (the adder takes it back itself, unless it died first).

For a lead already gone the same steps delete what is left of it; the answer is NOT_FOUND.
"""

import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from models.base import CrmDocument
from models.call import CallDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from services.errors import Conflict, not_found

log = logging.getLogger(__name__)

CHILDREN: dict[str, type[CrmDocument]] = {
    "deleted_emails": EmailDocument,
    "deleted_calls": CallDocument,
    "deleted_tasks": TaskDocument,
    "deleted_notes": NoteDocument,
}
# Starting over because children keep arriving ends in CONFLICT after this many tries.
MAX_ATTEMPTS = 25


@dataclass(frozen=True)
class DeletedLead:
    lead_id: str
    deleted_emails: int
    deleted_calls: int
    deleted_tasks: int
    deleted_notes: int


@dataclass
class Deletion:
    """One deleteLead run: what it works on, and what it has done so far."""

    lead_id: str
    session: AsyncClientSession | None = None
    lead: Mapping[str, Any] | None = None  # as step 1 read it; None: no such lead
    lead_deleted: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHILDREN, 0))


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Deletion], Awaitable[None]]


class LeadChanged(Exception):
    """A child was added to the lead after its collection was emptied: start over."""


def _leads() -> AsyncCollection[Any]:
    return LeadDocument.get_pymongo_collection()


async def _read_lead(run: Deletion) -> None:
    run.lead = await _leads().find_one(
        {"lead_id": run.lead_id}, {"activities": 1}, session=run.session
    )


def _children_step(name: str, document: type[CrmDocument]) -> Step:
    async def delete(run: Deletion) -> None:
        collection = document.get_pymongo_collection()
        result = await collection.delete_many({"lead_id": run.lead_id}, session=run.session)
        run.counts[name] += result.deleted_count

    return Step(f"delete {name.removeprefix('deleted_')}", delete)


def _unchanged(lead: Mapping[str, Any]) -> dict[str, Any]:
    """Matches the lead only while its timeline has the entries read: adding a child always
    appends one (timeline.record), so the filter misses once a child was added since."""
    activities = lead.get("activities")
    count = {"$size": len(activities)} if isinstance(activities, list) else None
    return {"_id": lead["_id"], "activities": count}


async def _delete_lead(run: Deletion) -> None:
    if run.lead is None:
        return  # already gone: the other steps still clear what an interrupted delete left
    deleted = await _leads().delete_one(_unchanged(run.lead), session=run.session)
    if deleted.deleted_count == 0:
        raise LeadChanged  # (or deleted meanwhile: the next read finds it gone)
    run.lead_deleted = True


CHILD_STEPS = tuple(_children_step(name, document) for name, document in CHILDREN.items())


async def _sweep(run: Deletion) -> None:
    for step in CHILD_STEPS:
        await step.run(run)


STEPS: tuple[Step, ...] = (
    Step("read lead", _read_lead),
    *CHILD_STEPS,
    Step("delete lead", _delete_lead),
    Step("sweep children", _sweep),
)


async def _run_steps(run: Deletion) -> Deletion:
    for _ in range(MAX_ATTEMPTS):
        try:
            for step in STEPS:
                await step.run(run)
        except LeadChanged:
            continue
        return run
    raise Conflict(f"Lead {run.lead_id!r} is being changed by others; retry")


_TRANSACTIONAL: weakref.WeakKeyDictionary[AsyncMongoClient[Any], bool] = weakref.WeakKeyDictionary()


async def supports_transactions(client: AsyncMongoClient[Any]) -> bool:
    """Replica sets and sharded clusters do; asked once per client.

    A standalone does not. Nor does the embedded engine for our use, though it has
    transactions: it answers `hello` as a standalone, and while one session's transaction
    is open every other session's command fails (mongoeco 4.11, measured), which would fail
    concurrent requests instead of waiting for them.
    """
    if client not in _TRANSACTIONAL:
        hello = await client.admin.command("hello")
        _TRANSACTIONAL[client] = "setName" in hello or hello.get("msg") == "isdbgrid"
    return _TRANSACTIONAL[client]


async def delete_lead(lead_id: str) -> DeletedLead:
    """NOT_FOUND when there is no such lead; its leftover children are deleted all the same."""
    client = _leads().database.client
    if await supports_transactions(client):
        async with client.start_session() as session:
            # with_transaction re-runs the callback on transient errors: fresh state each time.
            run = await session.with_transaction(lambda s: _run_steps(Deletion(lead_id, s)))
    else:
        run = await _run_steps(Deletion(lead_id))
    if not run.lead_deleted:
        if any(run.counts.values()):
            log.warning(
                "deleted children left by an interrupted delete of %s: %s", lead_id, run.counts
            )
        raise not_found("Lead", lead_id)
    return DeletedLead(lead_id=lead_id, **run.counts)
