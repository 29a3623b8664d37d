"""Deals: look-ups and the list. A deal is in the caller's scope when its lead is
(services/policy.py)."""

from typing import Any

from models.deal import DealDocument
from models.lead import LeadDocument
from services import policy
from services.documents import decode
from services.errors import not_found
from services.pagination import Order, Page, paginate
from services.policy import Action
from services.viewer import Viewer

DEAL_ORDER = Order(stored_field="createdAt", descending=True)


async def deal_scope(viewer: Viewer) -> dict[str, Any]:
    """The deals `viewer` may see, as a filter: `{}` when they see every lead, else the deals
    of the leads in their scope (a deal without a lead, or whose lead is gone, is in none)."""
    scope = policy.lead_scope(viewer)
    if not scope:
        return {}
    leads = LeadDocument.get_pymongo_collection()
    lead_ids = [raw["lead_id"] for raw in await leads.find(scope, {"lead_id": 1}).to_list()]
    # `$in: []` fails on the embedded engine; `_id: None` matches nothing, index-served.
    return {"lead_id": {"$in": lead_ids}} if lead_ids else {"_id": None}


async def get_deal(viewer: Viewer, deal_id: str) -> DealDocument:
    """The deal, if its lead is in the viewer's scope; NOT_FOUND otherwise."""
    policy.require(viewer, Action.READ)
    raw = await DealDocument.get_pymongo_collection().find_one({"deal_id": deal_id})
    if raw is None:
        raise not_found("Deal", deal_id)
    deal = decode(DealDocument, raw, "Deal")
    scope = policy.lead_scope(viewer)
    if scope:
        query = policy.scoped(viewer, {"lead_id": deal.lead_id})
        leads = LeadDocument.get_pymongo_collection()
        if deal.lead_id is None or await leads.find_one(query, {"_id": 1}) is None:
            raise not_found("Deal", deal_id)
    return deal


async def list_deals(viewer: Viewer, *, first: int | None, after: str | None) -> Page[DealDocument]:
    policy.require(viewer, Action.READ)
    query = await deal_scope(viewer)
    return await paginate(DealDocument, query, DEAL_ORDER, first=first, after=after)


async def count_deals(viewer: Viewer) -> int:
    policy.require(viewer, Action.READ)
    return await DealDocument.find(await deal_scope(viewer)).count()
