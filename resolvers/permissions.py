"""Who may call a field: permissions declared on Query, Mutation and Subscription fields."""

from typing import Any

import strawberry
from strawberry.permission import BasePermission

from resolvers.context import Info


class IsAdmin(BasePermission):
    """The seed's rule: every CRM operation needs the `admin` role."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.user.require_admin()
        return True


def admin_field(**options: Any) -> Any:
    """A Query/Mutation field that needs the admin role."""
    return strawberry.field(permission_classes=[IsAdmin], **options)
