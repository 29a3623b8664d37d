"""Who is calling: the principal every service acts for, as the token (or key) says."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.errors import Unauthenticated

ADMIN_ROLE = "admin"  # what `crm token` and dev mode mint; roles: services/policy.py
# Clock skew allowed on `exp` and `nbf`: small, as RFC 8725 §3.10 asks.
LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class Viewer:
    """The authenticated caller, from the token's claims only."""

    id: str
    name: str | None
    email: str | None
    role: str
    expires_at: datetime | None = None
    api_key_id: str | None = None
    """Set when the caller is an API key (`id` is then `apikey:<api_key_id>`)."""

    def require_unexpired(self) -> None:
        """For long-lived connections: the token checked at connect time may since expire."""
        if self.expires_at and datetime.now(UTC) > self.expires_at + timedelta(
            seconds=LEEWAY_SECONDS
        ):
            raise Unauthenticated("Token has expired")
