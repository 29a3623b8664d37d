"""Partial updates without lost writes: what changed, and a filter pinning what was read."""

from collections.abc import Iterable, Mapping
from typing import Any

from models.base import CrmDocument, stored_fields


def diff(document: CrmDocument, fields: Mapping[str, object]) -> dict[str, object]:
    """The given fields whose values differ from the document's."""
    return {name: value for name, value in fields.items() if getattr(document, name) != value}


def pinned(document: CrmDocument, names: Iterable[str]) -> dict[str, Any]:
    """Matches the document only while `names` still hold the values read: a concurrent
    change makes the write miss (and the caller re-read) instead of being overwritten."""
    read = {name: getattr(document, name) for name in names}
    return {"_id": document.id, **stored_fields(type(document), read)}
