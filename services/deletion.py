"""Deleting a lead with everything that hangs off it, leaving no orphan.

The work is a list of steps (`STEPS`, run as services/steps.py describes). On a replica set
or sharded cluster they run in one transaction: all or nothing. Elsewhere (a standalone, the
embedded engine) their order keeps every state a crash can leave orphan-free, and each can
run again, so a retried deleteLead finishes what an interrupted one started:

1. read the lead (and how many timeline entries it has);
2. delete its emails, calls, tasks and notes, one step each: a crash leaves the lead;
3. delete the lead, only if its timeline has not grown since 1: adding a child logs an
   entry, so a child added meanwhile makes this miss and the steps start over;
4. sweep the children again: catches a child whose adder found the lead just before it went
   (the adder takes it back itself, unless it died first).

For a lead already gone the same steps delete what is left of it; the answer is NOT_FOUND.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from models.base import CrmDocument
from models.call import CallDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from services import policy
from services.errors import Conflict, not_found
from services.policy import Action
from services.steps import Step, in_transaction_if_supported, run_steps
from services.viewer import Viewer

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


class LeadChanged(Exception):
    """A child was added to the lead after its collection was emptied: start over."""


def _leads() -> AsyncCollection[Any]:
    return LeadDocument.get_pymongo_collection()


async def _read_lead(run: Deletion) -> None:
    run.lead = await _leads().find_one(
        {"lead_id": run.lead_id}, {"activities": 1}, session=run.session
    )


def _children_step(name: str, document: type[CrmDocument]) -> Step[Deletion]:
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


STEPS: tuple[Step[Deletion], ...] = (
    Step("read lead", _read_lead),
    *CHILD_STEPS,
    Step("delete lead", _delete_lead),
    Step("sweep children", _sweep),
)


async def _run_steps(run: Deletion) -> Deletion:
    for _ in range(MAX_ATTEMPTS):
        try:
            await run_steps(STEPS, run)
        except LeadChanged:
            continue
        return run
    raise Conflict(f"Lead {run.lead_id!r} is being changed by others; retry")


async def delete_lead(viewer: Viewer, lead_id: str) -> DeletedLead:
    """NOT_FOUND when there is no such lead; its leftover children are deleted all the same."""
    policy.require(viewer, Action.DELETE)
    scope = policy.lead_scope(viewer)  # `{}` for every role that may delete, as of today
    if scope and await _leads().find_one(policy.scoped(viewer, {"lead_id": lead_id})) is None:
        raise not_found("Lead", lead_id)  # out of scope: not even its leftovers are touched
    # A fresh Deletion per call: a transaction may be run again after a transient error.
    run = await in_transaction_if_supported(lambda session: _run_steps(Deletion(lead_id, session)))
    if not run.lead_deleted:
        if any(run.counts.values()):
            log.warning(
                "deleted children left by an interrupted delete of %s: %s", lead_id, run.counts
            )
        raise not_found("Lead", lead_id)
    return DeletedLead(lead_id=lead_id, **run.counts)
