"""Writes that span several documents, as resumable steps (deleteLead, convertLeadToDeal).

An operation is a tuple of `Step`s (its module's `STEPS`) run in order on one state object.
Where the database has transactions (`Database.capabilities`) they all run in one: all or
nothing. Elsewhere (a standalone, the embedded engine) each step is written so that a crash
after any of them leaves a state from which running the operation again finishes the job.
Tests prove that by running the real operation against the real database with a failing
step inserted between any two (tests/steps.py replaces the module's `STEPS`).
"""

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from models.database import Database


@dataclass(frozen=True)
class Step[R]:
    name: str
    run: Callable[[R], Awaitable[None]]


async def run_steps[R](steps: Iterable[Step[R]], state: R) -> R:
    for step in steps:
        await step.run(state)
    return state


async def in_transaction_if_supported[T](
    work: Callable[[AsyncClientSession | None], Coroutine[Any, Any, T]],
) -> T:
    """`work(session)` in one transaction where the database has them, else `work(None)`.

    `with_transaction` runs `work` again on transient errors (write conflicts), so `work`
    must start from fresh state each time it is called.
    """
    database = Database.bound()
    if not (await database.capabilities()).transactions:
        return await work(None)
    assert database.client is not None
    async with database.client.start_session() as session:
        return await session.with_transaction(work)
