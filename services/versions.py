"""Optimistic concurrency: `updatedAt` is the version a client read and passes back as
`expectedUpdatedAt`, so a write based on a stale read is refused instead of lost."""

from datetime import UTC, datetime, timedelta

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
