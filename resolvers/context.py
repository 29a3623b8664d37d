"""What every resolver gets as `info.context`: the caller and this request's loaders."""

from dataclasses import dataclass, field

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

    @property
    def user(self) -> Viewer:
        """The authenticated caller (the HTTP layer refuses requests without one)."""
        assert self.viewer is not None
        return self.viewer


type Info = StrawberryInfo[Context, None]
