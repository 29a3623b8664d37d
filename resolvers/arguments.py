"""Arguments shared by several resolvers, and reading a client's input objects."""

import dataclasses
from datetime import datetime
from typing import Annotated, Any

import strawberry

from resolvers.context import Info
from services.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

LeadIdArgument = Annotated[
    str, strawberry.argument(description='Human id of the lead, e.g. "LEAD-001".')
]
FirstArgument = Annotated[
    int | None,
    strawberry.argument(
        description=f"Page size, 0 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})."
    ),
]
AfterArgument = Annotated[
    str | None,
    strawberry.argument(
        description="Start after this cursor (`pageInfo.endCursor` or an edge's `cursor`), "
        "from a list asked for with the same filter and order."
    ),
]
ExpectedUpdatedAtArgument = Annotated[
    datetime | None,
    strawberry.argument(
        description="Its `updatedAt` as you read it: the change is made only if it is "
        "unchanged since (no lost updates); otherwise CONFLICT and nothing is written. "
        "Omit it to write whatever changed meanwhile."
    ),
]


def selects(info: Info, field_name: str) -> bool:
    """Whether the query asks for `field_name` anywhere below the field being resolved."""
    pending: list[Any] = list(info.selected_fields)
    while pending:
        selection = pending.pop()
        if getattr(selection, "name", None) == field_name:
            return True
        pending.extend(selection.selections)
    return False


def shows_items(info: Info) -> bool:
    """Whether a connection's query shows its items (`edges`, `nodes`, `pageInfo`), not only
    its `totalCount`."""
    return any(selects(info, name) for name in ("edges", "nodes", "pageInfo"))


def provided(input_object: object | None) -> dict[str, object]:
    """The fields a client gave in an input (omitted ones are UNSET; explicit nulls stay)."""
    if input_object is None:
        return {}
    assert dataclasses.is_dataclass(input_object)
    return {
        field.name: value
        for field in dataclasses.fields(input_object)
        if (value := getattr(input_object, field.name)) is not strawberry.UNSET
    }
