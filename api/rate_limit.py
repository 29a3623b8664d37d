"""Rate limits per principal (a user's `sub`, or an API key): a token bucket each.

Every door takes one token per request before any work: GraphQL over HTTP (a batch counts
each of its operations), each operation on a WebSocket, each REST request. A bucket holds
`per_minute` tokens and refills continuously at `per_minute` a minute, so a client may burst
up to a minute's worth and then goes at the steady rate. Over it: RATE_LIMITED with the
seconds until a token is back (HTTP 429 and `Retry-After` on HTTP doors).

The buckets live in this process (asyncio: `take` runs without an `await`, so concurrent
requests cannot both spend the last token). With several instances each enforces its own
limit; see README "Teams: roles, scope, API keys, rate limits". One principal's burst never
touches another's bucket.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.errors import DomainError, ErrorCode
from services.viewer import Viewer

# Buckets kept at most; the least recently used go first (a full bucket holds no state
# worth keeping: forgetting it gives the same answer).
MAX_BUCKETS = 100_000


class RateLimited(DomainError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit exceeded; retry in {retry_after} s")
        self.retry_after = retry_after

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code.value, "retryAfter": self.retry_after}


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by principal; `per_minute` 0 turns limiting off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.clock = clock
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, principal: str, cost: int = 1) -> None:
        """Spend `cost` tokens of `principal`'s bucket, or raise RateLimited (spending none)."""
        if self.per_minute <= 0:
            return
        now = self.clock()
        bucket = self.buckets.get(principal)
        if bucket is None:
            bucket = Bucket(tokens=self.capacity, updated=now)
            self.buckets[principal] = bucket
            if len(self.buckets) > MAX_BUCKETS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(principal)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return
        missing = min(cost, self.capacity) - bucket.tokens
        raise RateLimited(retry_after=max(1, math.ceil(missing / self.rate)))

    def check(self, viewer: Viewer, cost: int = 1) -> None:
        """`take` for the principal `viewer` is: its key, or its user (`sub`)."""
        principal = f"key:{viewer.api_key_id}" if viewer.api_key_id else f"user:{viewer.id}"
        self.take(principal, cost)
