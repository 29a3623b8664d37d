"""What every stored document shares: UTC millisecond timestamps and alias-aware fields."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

from beanie import Document, Insert, PydanticObjectId, before_event
from beanie.odm.utils.encoder import Encoder
from pydantic import AfterValidator, BaseModel, ConfigDict


def to_milliseconds(moment: datetime) -> datetime:
    """Cut to the millisecond BSON stores, so a value reads back equal to what was written."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def utc_now() -> datetime:
    return to_milliseconds(datetime.now(UTC))


def as_utc(moment: datetime) -> datetime:
    """A moment in UTC; one without an offset (the seed's `"2025-01-20T10:00:00"`) is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# A stored timestamp: a BSON datetime, or (the seed's database) an ISO string, offset or not.
StoredDateTime = Annotated[datetime, AfterValidator(as_utc)]


class CrmDocument(Document):
    """Python attributes are snake_case; stored field names keep the seed's spelling (aliases).

    Fields this server does not know (written by the seed's backend, or a later version) are
    kept (`extra="allow"`), so no write drops them.
    """

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    @before_event(Insert)
    def _assign_id(self) -> None:
        """A new document gets its `_id` here, already the field's type: for the id pymongo
        makes, Beanie's `insert` builds a pydantic TypeAdapter to cast it (~1 ms each time)."""
        if self.id is None:
            self.id = PydanticObjectId()


def to_bson(value: object) -> object:
    """A Python value (enum, model, list…) as stored: enums by value, models by alias."""
    return Encoder(to_db=True).encode(value)


def stored_fields(model: type[BaseModel], values: Mapping[str, object]) -> dict[str, object]:
    """`{python_name: value}` → `{stored_name: bson_value}` for a `$set`."""
    fields = model.model_fields
    return {(fields[name].alias or name): to_bson(value) for name, value in values.items()}
