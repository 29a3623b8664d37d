"""Pieces every domain's schema uses: DateTime, connections, inputs to dicts, the admin rule."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types.enum import StrawberryEnumDefinition

from models.base import CrmDocument, to_milliseconds
from services.pagination import Order, Page, encode_cursor


def _serialize_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset: add 'Z' or '+hh:mm'")
    return to_milliseconds(parsed.astimezone(UTC))


DateTime = strawberry.scalar(
    name="DateTime",
    description="ISO-8601 date-time. Input needs a UTC offset (`Z` or `+02:00`); output is "
    "always UTC with milliseconds, e.g. `2025-01-20T10:00:00.000Z`.",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
)


@strawberry.enum(description="Sort direction.")
class OrderDirection(Enum):
    ASC = "asc"
    DESC = "desc"


def describe_values(enum: type[Enum], **descriptions: str) -> None:
    """Describe the values of an enum already registered with `strawberry.enum`.

    `strawberry.enum_value` would put the descriptions into the Python enum (in models/);
    this sets them on the GraphQL definition Strawberry keeps for it instead.
    """
    definition = getattr(enum, "__strawberry_definition__", None)
    assert isinstance(definition, StrawberryEnumDefinition), f"{enum} is not a strawberry.enum"
    unknown = set(descriptions) - {value.name for value in definition.values}
    if unknown:
        raise ValueError(f"{enum.__name__} has no values {sorted(unknown)}")
    for value in definition.values:
        value.description = descriptions.get(value.name, value.description)


describe_values(
    OrderDirection,
    ASC="Ascending: smallest (and null) first.",
    DESC="Descending: largest first, null last.",
)


@strawberry.type(description="Where a page of a connection sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="Whether more items follow; fetch them with `after: endCursor`."
    )
    has_previous_page: bool = strawberry.field(
        description="True when this page was asked for with an `after` cursor."
    )
    start_cursor: str | None = strawberry.field(
        description="Cursor of the first item of this page; null when the page is empty."
    )
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last item of this page (pass it as `after` for the next "
        "page); null when the page is empty."
    )


Node = TypeVar("Node")


@strawberry.type(description="One item of a connection and the cursor that points at it.")
class Edge(Generic[Node]):
    cursor: str = strawberry.field(
        description="Opaque cursor of this item: pass it as `after` to get the items after it. "
        "Valid only for the ordering it came from."
    )
    node: Node = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list: edges with cursors, or just the nodes.")
class Connection(Generic[Node]):
    """Nodes are stored documents, served through the GraphQL type `Node` names."""

    page: strawberry.Private[Page[Any]]
    order: strawberry.Private[Order]
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="The items of this page, with their cursors.")
    def edges(self) -> list[Edge[Node]]:
        return [
            Edge(cursor=encode_cursor(document, self.order), node=document)
            for document in self.page.documents
        ]

    @strawberry.field(description="The items of this page.")
    def nodes(self) -> list[Node]:
        return list(self.page.documents)

    @strawberry.field(description="Cursors and whether there are more pages.")
    def page_info(self) -> PageInfo:
        documents: list[CrmDocument] = self.page.documents
        return PageInfo(
            has_next_page=self.page.has_next_page,
            has_previous_page=self.page.has_previous_page,
            start_cursor=encode_cursor(documents[0], self.order) if documents else None,
            end_cursor=encode_cursor(documents[-1], self.order) if documents else None,
        )

    @strawberry.field(description="How many items match the filter, over all pages.")
    async def total_count(self) -> int:
        return await self.count()
