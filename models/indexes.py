"""Creating each model's indexes without tripping over the ones a database already has.

The seed's database may hold the recommended indexes under other names (`leadIdUnique`
rather than `lead_id_1`), or with other options: MongoDB refuses to create an index whose
keys an existing one already covers (IndexOptionsConflict), and Beanie creates all of a
collection's indexes in one command, so one such index would stop start-up. Here an index
whose keys already exist is kept as it is (a warning says when its options differ), and each
of the others is created on its own.
"""

import logging
from collections.abc import Sequence
from typing import Any

from beanie import Document
from pymongo import IndexModel
from pymongo.errors import OperationFailure

log = logging.getLogger("crm.indexes")

# Options that make two indexes on the same keys behave differently for this server.
COMPARED_OPTIONS = ("unique", "sparse", "partialFilterExpression")
# IndexOptionsConflict, IndexKeySpecsConflict: an index on these keys exists in another form.
CONFLICT_CODES = {85, 86}


def _keys(spec: Any) -> tuple[tuple[str, Any], ...]:
    return tuple((str(name), int(way) if isinstance(way, float) else way) for name, way in spec)


async def ensure_indexes(models: Sequence[type[Document]]) -> None:
    for model in models:
        # Beanie keeps them as IndexModelField, wrapping the IndexModel declared.
        declared = getattr(model.get_settings(), "indexes", None) or []
        wanted: list[IndexModel] = [getattr(item, "index", item) for item in declared]
        if not wanted:
            continue
        collection = model.get_pymongo_collection()
        existing = {
            _keys(info["key"]): (name, info)
            for name, info in (await collection.index_information()).items()
        }
        for index in wanted:
            document = index.document
            keys = _keys(document["key"].items())
            if keys in existing:
                name, info = existing[keys]
                differs = [
                    option
                    for option in COMPARED_OPTIONS
                    if bool(info.get(option)) != bool(document.get(option))
                ]
                if differs and name != document["name"]:
                    log.warning(
                        "%s: kept the existing index %r on %s; this server's own would differ "
                        "in %s",
                        collection.name,
                        name,
                        dict(keys),
                        ", ".join(differs),
                    )
                continue
            try:
                await collection.create_indexes([index])
            except OperationFailure as error:
                if error.code not in CONFLICT_CODES:
                    raise
                log.warning(
                    "%s: index %s not created (%s); the existing one is used",
                    collection.name,
                    dict(keys),
                    error.details.get("errmsg") if error.details else error,
                )
