"""Deals: look-ups and the list."""

from models.deal import DealDocument
from services.errors import not_found
from services.pagination import Order, Page, paginate

DEAL_ORDER = Order(stored_field="createdAt", descending=True)


async def get_deal(deal_id: str) -> DealDocument:
    deal = await DealDocument.find_one({"deal_id": deal_id})
    if deal is None:
        raise not_found("Deal", deal_id)
    return deal


async def list_deals(*, first: int | None, after: str | None) -> Page[DealDocument]:
    return await paginate(DealDocument, {}, DEAL_ORDER, first=first, after=after)


async def count_deals() -> int:
    return await DealDocument.find({}).count()
