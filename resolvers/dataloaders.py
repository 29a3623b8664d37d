"""Per-request DataLoaders: nested fields of N leads cost one query per field, not N."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from beanie import PydanticObjectId
from strawberry.dataloader import DataLoader

from models.base import CrmDocument
from models.call import CallDocument
from models.contact import ContactDocument
from models.deal import DealDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.note import NoteDocument
from models.organization import OrganizationDocument
from models.task import TaskDocument
from services.children import BATCH_SIZE, children_of
from services.documents import decode_each


def children_by_lead_id[D: CrmDocument](
    document: type[D], newest_first_by: str
) -> Callable[[Sequence[str]], Awaitable[list[list[D]]]]:
    """Batch function: each lead's child documents (emails, calls…), newest first."""

    async def load(lead_ids: Sequence[str]) -> list[list[D]]:
        grouped = await children_of(document, lead_ids, newest_first_by)
        return [grouped.get(lead_id, []) for lead_id in lead_ids]

    return load


def one_by_key[D: CrmDocument, K](
    document: type[D], stored_key: str, attribute: str
) -> Callable[[Sequence[K]], Awaitable[list[D | None]]]:
    """Batch function: the document whose `stored_key` equals each key, or None."""

    async def load(keys: Sequence[K]) -> list[D | None]:
        cursor = document.get_pymongo_collection().find(
            {stored_key: {"$in": list(keys)}}, batch_size=BATCH_SIZE
        )
        found = decode_each(document, await cursor.to_list())
        by_key = {getattr(item, attribute): item for item in found}
        return [by_key.get(key) for key in keys]

    return load


def _loader[K, V](load: Callable[[Sequence[K]], Awaitable[list[V]]]) -> DataLoader[K, V]:
    return DataLoader(load_fn=load)


@dataclass
class Loaders:
    """Created fresh for every request: a loader's cache must not outlive what it saw."""

    emails_by_lead_id: DataLoader[str, list[EmailDocument]] = field(
        default_factory=lambda: _loader(children_by_lead_id(EmailDocument, "timestamp"))
    )
    calls_by_lead_id: DataLoader[str, list[CallDocument]] = field(
        default_factory=lambda: _loader(children_by_lead_id(CallDocument, "timestamp"))
    )
    tasks_by_lead_id: DataLoader[str, list[TaskDocument]] = field(
        default_factory=lambda: _loader(children_by_lead_id(TaskDocument, "createdAt"))
    )
    notes_by_lead_id: DataLoader[str, list[NoteDocument]] = field(
        default_factory=lambda: _loader(children_by_lead_id(NoteDocument, "createdAt"))
    )
    deal_by_deal_id: DataLoader[str, DealDocument | None] = field(
        default_factory=lambda: _loader(one_by_key(DealDocument, "deal_id", "deal_id"))
    )
    organization_by_id: DataLoader[PydanticObjectId, OrganizationDocument | None] = field(
        default_factory=lambda: _loader(one_by_key(OrganizationDocument, "_id", "id"))
    )
    contact_by_id: DataLoader[PydanticObjectId, ContactDocument | None] = field(
        default_factory=lambda: _loader(one_by_key(ContactDocument, "_id", "id"))
    )
    # Leads a list or a search read without their timeline, read again when one is shown.
    lead_by_id: DataLoader[PydanticObjectId, LeadDocument | None] = field(
        default_factory=lambda: _loader(one_by_key(LeadDocument, "_id", "id"))
    )


async def load_optional[K, V](loader: DataLoader[K, V | None], key: K | None) -> V | None:
    """The loaded value for a reference that may be unset."""
    return None if key is None else await loader.load(key)
