"""Who may call a field: every Query, Mutation and Subscription field declares its action.

`permission_field(Action.X)` (and `permission_subscription`) check the caller's role against
services/policy.py's table before the resolver runs (FORBIDDEN if not allowed), and record
the action in the field's metadata (`ACTION_KEY`), where tests/test_permissions.py reads it
for every root field: an operation without a declared action fails that test. Which leads the
caller sees is the services' business (`policy.lead_scope`), whatever the door.
"""

from functools import cache
from typing import Any

import strawberry
from strawberry.permission import BasePermission

from resolvers.context import Info
from services import policy
from services.policy import Action

ACTION_KEY = "crm_action"


@cache
def requires(action: Action) -> type[BasePermission]:
    """The permission class that lets through callers whose role may do `action`."""

    def has_permission(self: BasePermission, source: Any, info: Info, **kwargs: Any) -> bool:
        policy.require(info.context.user, action)  # raises FORBIDDEN
        return True

    name = f"May{action.name.title().replace('_', '')}"
    return type(name, (BasePermission,), {"has_permission": has_permission})


def permission_field(action: Action, **options: Any) -> Any:
    """A Query or Mutation field that needs `action` (services/policy.py's table)."""
    metadata = {**options.pop("metadata", {}), ACTION_KEY: action}
    return strawberry.field(permission_classes=[requires(action)], metadata=metadata, **options)


def permission_subscription(action: Action, **options: Any) -> Any:
    """A Subscription field that needs `action`."""
    metadata = {**options.pop("metadata", {}), ACTION_KEY: action}
    return strawberry.subscription(
        permission_classes=[requires(action)], metadata=metadata, **options
    )
