"""What every resolver gets as `info.context`: the caller and this request's loaders."""

from dataclasses import dataclass, field

from strawberry.types import Info as StrawberryInfo

from resolvers.auth import Viewer
from resolvers.dataloaders import Loaders


@dataclass
class Context:
    viewer: Viewer | None
    loaders: Loaders = field(default_factory=Loaders)

    @property
    def user(self) -> Viewer:
        """The authenticated caller (the HTTP layer refuses requests without one)."""
        assert self.viewer is not None
        return self.viewer


type Info = StrawberryInfo[Context, None]
