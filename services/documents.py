"""Reading stored documents tolerantly: one bad document never takes down a page.

A list skips a document it cannot read, with a warning naming its `_id` and why; a single
read raises UnreadableDocument naming it. `crm doctor` (services/doctor.py) lists them all.
"""

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from models.base import CrmDocument
from services.errors import UnreadableDocument

log = logging.getLogger("crm.documents")

MAX_REASONS = 3


def why_unreadable(error: ValidationError) -> str:
    """The first problems, as `field: message` (no stored values: they may be anything)."""
    reasons = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'document'}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)[:MAX_REASONS]
    ]
    more = error.error_count() - len(reasons)
    return "; ".join(reasons) + (f" (and {more} more)" if more > 0 else "")


def decode[D: CrmDocument](document: type[D], raw: Mapping[str, Any], kind: str) -> D:
    """`raw` as a `document`; UnreadableDocument (naming the `_id`) when it cannot be read."""
    try:
        found: D = document.model_validate(raw)
    except ValidationError as error:
        shown = raw.get("lead_id") or raw.get("deal_id")
        name = f"{kind} {shown!r} (_id {raw.get('_id')})" if shown else f"{kind} {raw.get('_id')}"
        message = f"{name} is stored in a shape this server cannot read: {why_unreadable(error)}"
        log.warning("%s", message, extra={"document_id": str(raw.get("_id"))})
        raise UnreadableDocument(message) from None
    return found


def decode_each[D: CrmDocument](document: type[D], raws: Iterable[Mapping[str, Any]]) -> list[D]:
    """The documents of `raws` that can be read; each other one is logged and skipped."""
    found: list[D] = []
    for raw in raws:
        try:
            found.append(document.model_validate(raw))
        except ValidationError as error:
            log.warning(
                "skipped unreadable %s document _id=%s: %s",
                document.get_collection_name(),
                raw.get("_id"),
                why_unreadable(error),
                extra={
                    "collection": document.get_collection_name(),
                    "document_id": str(raw.get("_id")),
                },
            )
    return found
