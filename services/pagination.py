"""Keyset (cursor) pagination: sort key plus `_id`, so ties and inserts never skip a row."""

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId, json_util
from bson.errors import InvalidId

from models.base import CrmDocument
from services.documents import decode_each
from services.errors import BadUserInput, FieldError

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
SORT_KEY_TYPES = (datetime, int, float, str, type(None))


@dataclass(frozen=True)
class Order:
    """Sort on a stored field; `_id` in the same direction breaks ties."""

    stored_field: str
    descending: bool


@dataclass(frozen=True)
class Page[D: CrmDocument]:
    documents: list[D]
    has_next_page: bool
    has_previous_page: bool


def encode_cursor(document: CrmDocument, order: Order) -> str:
    value = getattr(document, _attribute(type(document), order.stored_field))
    payload = json_util.dumps(
        {"f": order.stored_field, "d": order.descending, "v": value, "id": str(document.id)}
    )
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _attribute(document: type[CrmDocument], stored_field: str) -> str:
    for name, info in document.model_fields.items():
        if (info.alias or name) == stored_field:
            return str(name)
    raise KeyError(stored_field)


def _decode_cursor(cursor: str, order: Order) -> tuple[Any, ObjectId]:
    invalid = BadUserInput([FieldError("after", "is not a cursor this list returned")])
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json_util.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(payload, dict) or (payload.get("f"), payload.get("d")) != (
            order.stored_field,
            order.descending,
        ):
            raise invalid
        value = payload["v"]
        # The value goes into a query: only a plain sort key, never an object (operator).
        if isinstance(value, bool) or not isinstance(value, SORT_KEY_TYPES):
            raise invalid
        return value, ObjectId(payload["id"])
    except (ValueError, KeyError, TypeError, InvalidId, binascii.Error, json.JSONDecodeError):
        raise invalid from None


def after_filter(order: Order, value: Any, last_id: ObjectId) -> dict[str, Any]:
    """Documents strictly after (value, last_id) in `order`; null sorts lowest, as in MongoDB."""
    field = order.stored_field
    if order.descending:
        if value is None:
            return {field: None, "_id": {"$lt": last_id}}
        return {
            "$or": [
                {field: {"$lt": value}},
                {field: value, "_id": {"$lt": last_id}},
                {field: None},
            ]
        }
    if value is None:
        return {"$or": [{field: None, "_id": {"$gt": last_id}}, {field: {"$ne": None}}]}
    return {"$or": [{field: {"$gt": value}}, {field: value, "_id": {"$gt": last_id}}]}


def check_page_size(first: int) -> None:
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput([FieldError("first", f"must be between 0 and {MAX_PAGE_SIZE}")])


def unread_page(first: int | None, after: str | None, order: Order) -> Page[Any]:
    """The page of a list whose query shows none of its items, only its count: its arguments
    checked as `paginate` checks them, no document read."""
    check_page_size(DEFAULT_PAGE_SIZE if first is None else first)
    if after is not None:
        _decode_cursor(after, order)
    return Page(documents=[], has_next_page=False, has_previous_page=after is not None)


async def paginate[D: CrmDocument](
    document: type[D],
    query: Mapping[str, Any],
    order: Order,
    *,
    first: int | None,
    after: str | None,
    projection: Mapping[str, Any] | None = None,
    reshape: Sequence[Mapping[str, Any]] = (),
) -> Page[D]:
    """Up to `first` (null: the default) documents matching `query` after the `after` cursor:
    read by a `find` keeping the fields `projection` keeps, or, with `reshape` (aggregation
    stages applied to the page's documents only), by an aggregation."""
    first = DEFAULT_PAGE_SIZE if first is None else first
    check_page_size(first)
    conditions = [dict(query)] if query else []
    if after is not None:
        conditions.append(after_filter(order, *_decode_cursor(after, order)))
    match = {"$and": conditions} if conditions else {}
    direction = -1 if order.descending else 1
    sort = {order.stored_field: direction, "_id": direction}
    collection = document.get_pymongo_collection()
    if reshape:
        pipeline: list[Mapping[str, Any]] = [
            {"$match": match},
            {"$sort": sort},
            {"$limit": first + 1},
            *reshape,
        ]
        found = await (await collection.aggregate(pipeline)).to_list()
    else:
        cursor = collection.find(match, projection).sort(list(sort.items())).limit(first + 1)
        found = await cursor.to_list()
    return Page(
        # A document that cannot be read is skipped (and logged), never the whole page.
        documents=decode_each(document, found[:first]),
        has_next_page=len(found) > first,
        has_previous_page=after is not None,
    )
