"""Optimistic concurrency: `updatedAt` is the version a client read and passes back as
`expectedUpdatedAt`, so a write based on a stale read is refused instead of lost.

A version must only ever grow, on every write: every writer of a lead sets `updatedAt` with
`advanced()`, which the database evaluates inside the write itself, so no clock (another
instance's behind, or the same millisecond) can repeat a version or move it back."""

from datetime import UTC, datetime, timedelta
from typing import Any

from services.errors import Conflict

# Stored datetimes have millisecond precision: the smallest step that makes a new version.
TICK = timedelta(milliseconds=1)


def _shown(moment: datetime | None) -> str:
    """As the API prints a DateTime, so the message matches what the client holds."""
    if moment is None:
        return "an unknown time"
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check(kind: str, key: str, stored: datetime | None, expected: datetime | None) -> None:
    """CONFLICT when the client expects a version other than the stored one (None: no check)."""
    if expected is not None and stored != expected:
        raise Conflict(
            f"{kind} {key!r} was changed at {_shown(stored)} after you read it at "
            f"{_shown(expected)}; reload and retry"
        )


def next_version(previous: datetime | None, now: datetime) -> datetime:
    """`now`, but later than `previous`: two writes in one millisecond must still leave two
    different versions, or the second write's client could not tell it missed the first."""
    return now if previous is None or now > previous else previous + TICK


def advanced(field: str, now: datetime) -> dict[str, Any]:
    """An update-pipeline expression for `field`'s new version: `now`, or one tick after the
    stored version when that is not earlier (in the same update, so atomic).

    A missing, null or unreadable stored version counts as none (`now`); one stored as an
    ISO string (seed data) is read as the moment it names.
    """
    stored = {"$convert": {"input": f"${field}", "to": "date", "onError": None, "onNull": None}}
    tick_ms = TICK // timedelta(milliseconds=1)
    return {"$max": [{"$literal": now}, {"$add": [stored, tick_ms]}]}
