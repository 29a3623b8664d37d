"""Human ids (`LEAD-001`, `DEAL-001`) from one atomic counter per kind."""

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from models.counter import Counter


async def next_number(sequence: str, *, session: AsyncClientSession | None = None) -> int:
    """The next number of `sequence`; `$inc` on one document is atomic, so none repeats."""
    return (await reserve(sequence, 1, session=session))[0]


async def reserve(sequence: str, count: int, *, session: AsyncClientSession | None = None) -> range:
    """The next `count` numbers of `sequence`, in one atomic step."""
    counter = await Counter.get_pymongo_collection().find_one_and_update(
        {"_id": sequence},
        {"$inc": {"seq": count}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    assert counter is not None
    last = int(counter["seq"])
    return range(last - count + 1, last + 1)


def format_id(prefix: str, number: int) -> str:
    """`LEAD-007`: at least three digits, more once past 999."""
    return f"{prefix}-{number:03d}"
