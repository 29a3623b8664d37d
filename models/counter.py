"""The `counters` collection: one document per human-id sequence (`lead`, `deal`)."""

from models.base import CrmDocument


class Counter(CrmDocument):
    id: str  # type: ignore[assignment]  # the sequence name is the _id
    seq: int = 0

    class Settings:
        name = "counters"
