"""`crm doctor`: every stored document this server cannot read, and why.

The same check as the tolerant reads (services/documents.py), over whole collections: what
lists skip with a warning and single reads refuse with UNREADABLE_DOCUMENT, listed at once.
Also says what the start-up migration has still to do (it runs at the next start, or with
`crm migrate`).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from pydantic import ValidationError

from models import DOCUMENT_MODELS
from services.documents import why_unreadable
from services.migration import NUMBERED, unnumbered

BATCH_SIZE = 1000


@dataclass(frozen=True)
class Finding:
    collection: str
    document_id: str
    human_id: str | None
    reason: str

    def __str__(self) -> str:
        named = f" ({self.human_id})" if self.human_id else ""
        return f"{self.collection} _id={self.document_id}{named}: {self.reason}"


async def unreadable_documents() -> AsyncIterator[Finding]:
    for model in DOCUMENT_MODELS:
        collection = model.get_pymongo_collection()
        async for raw in collection.find({}, batch_size=BATCH_SIZE):
            try:
                model.model_validate(raw)
            except ValidationError as error:
                human = raw.get("lead_id") or raw.get("deal_id")
                yield Finding(
                    collection=collection.name,
                    document_id=str(raw.get("_id")),
                    human_id=human if isinstance(human, str) else None,
                    reason=why_unreadable(error),
                )


async def pending_migration() -> dict[str, int]:
    """Documents still without the fields the start-up migration adds."""
    pending: dict[str, int] = {}
    for model, _sequence, id_field, number_field in NUMBERED:
        collection = model.get_pymongo_collection()
        count = await collection.count_documents(unnumbered(id_field, number_field))
        if count:
            pending[f"{collection.name}.{number_field}"] = count
    return pending
