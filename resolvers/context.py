"""What every resolver gets as `info.context`: the caller and this request's loaders."""

from dataclasses import dataclass, field, replace

from strawberry.types import Info as StrawberryInfo

from config import Limits
from resolvers.dataloaders import Loaders
from services.viewer import Viewer


@dataclass
class Context:
    viewer: Viewer | None
    loaders: Loaders = field(default_factory=Loaders)
    connection_params: dict[str, object] = field(default_factory=dict)
    """A WebSocket's `connection_init` payload (where its token travels)."""
    limits: Limits = field(default_factory=Limits)
    """The app's request limits, checked by `api.limits.QueryLimits`."""

    def for_operation(self) -> "Context":
        """A copy for one operation: the same caller and limits, loaders of its own.

        Each operation of an HTTP batch and each over a WebSocket gets one, so a loader never
        serves what it cached before another operation's writes, and a subscription that
        renews its loaders for each event renews only its own.
        """
        return replace(self, loaders=Loaders())

    @property
    def user(self) -> Viewer:
        """The authenticated caller (the HTTP layer refuses requests without one)."""
        assert self.viewer is not None
        return self.viewer


type Info = StrawberryInfo[Context, None]
