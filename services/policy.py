"""Who may do what, and which leads they see (README "Teams"): the one permission table and
the one record scope, applied by the services for every door (GraphQL over HTTP and
WebSocket, REST, the command line).

- `require(viewer, action)`: FORBIDDEN unless the viewer's role has the action.
- `lead_scope(viewer)`: a MongoDB filter fragment that every read and write of a lead adds to
  its own filter (`{}` for roles that see every lead). It is built from the viewer only,
  never from client input, so no filter, search, cursor or alias can widen it.
- `in_scope(viewer, lead)`: the same rule for a lead already in hand (live events).

A lead out of scope is NOT_FOUND (the services' look-ups simply do not find it), never
FORBIDDEN: its existence is not revealed.
"""

from enum import StrEnum
from typing import Any

from models.activity import Activity, ActivityType
from models.lead import LeadDocument
from services.errors import Forbidden
from services.viewer import Viewer


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    SALES = "sales"
    VIEWER = "viewer"


class Action(StrEnum):
    """What an operation does, as the permission table names it."""

    IDENTIFY = "identify"
    """Ask who the caller is (`me`): any valid token or key, whatever its role."""
    READ = "read"
    """Read leads and everything under them (emails, calls, tasks, notes, deals)."""
    CREATE = "create"
    """Create leads."""
    WRITE = "write"
    """Update a lead or its status; send emails, log calls, create and update tasks, add
    notes; convert it to a deal."""
    ASSIGN = "assign"
    """Give leads another owner (`assignLead`, `assignLeads`)."""
    DELETE = "delete"
    """Delete leads (and, later, merge, import, export)."""
    MANAGE_KEYS = "manage_keys"
    """Create, list and revoke API keys (and, later, webhooks)."""


ALL_ACTIONS = frozenset(Action)
# the README's "Teams" table, row by row. IDENTIFY is everyone's, so it is in no row.
ROLE_PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: ALL_ACTIONS - {Action.IDENTIFY},
    Role.MANAGER: frozenset(
        {Action.READ, Action.CREATE, Action.WRITE, Action.ASSIGN, Action.DELETE}
    ),
    Role.SALES: frozenset({Action.READ, Action.CREATE, Action.WRITE}),
    Role.VIEWER: frozenset({Action.READ}),
}
# Roles that see (and change) only the leads they own; the others see every lead.
OWN_LEADS_ONLY = frozenset({Role.SALES})
ROLES = tuple(role.value for role in Role)

OWNER_ID_FIELD = LeadDocument.model_fields["lead_owner_id"].alias or "lead_owner_id"


def role_of(viewer: Viewer) -> Role | None:
    """The viewer's role, or None for a role this server does not know."""
    try:
        return Role(viewer.role)
    except ValueError:
        return None


def allows(viewer: Viewer, action: Action) -> bool:
    if action is Action.IDENTIFY:
        return True
    role = role_of(viewer)
    return role is not None and action in ROLE_PERMISSIONS[role]


def require(viewer: Viewer, action: Action) -> None:
    """FORBIDDEN unless the viewer's role may do `action` (on leads in its scope)."""
    if not allows(viewer, action):
        shown = viewer.role or "no role"
        raise Forbidden(f"The {shown!r} role may not {action.value.replace('_', ' ')}")


def sees_all_leads(viewer: Viewer) -> bool:
    role = role_of(viewer)
    return role is not None and role not in OWN_LEADS_ONLY


def lead_scope(viewer: Viewer) -> dict[str, Any]:
    """The leads `viewer` may see, as a filter fragment to add to any lead query.

    `{}` for admin, manager and viewer (every lead, also those no one owns yet);
    `{"leadOwnerId": <sub>}` for sales; a filter matching nothing for an unknown role.
    """
    if sees_all_leads(viewer):
        return {}
    if role_of(viewer) in OWN_LEADS_ONLY:
        return {OWNER_ID_FIELD: viewer.id}
    return {"_id": None}  # matches no document (and is index-served)


def scoped(viewer: Viewer, query: dict[str, Any]) -> dict[str, Any]:
    """`query` restricted to the viewer's leads. The scope is its own `$and` term, so no key
    of `query` (built from client input) can replace it."""
    scope = lead_scope(viewer)
    if not scope:
        return query
    if not query:
        return scope
    return {"$and": [scope, query]}


def in_scope(viewer: Viewer, lead: LeadDocument) -> bool:
    """Whether `viewer` may see `lead`: `lead_scope`'s rule for a lead already read."""
    if sees_all_leads(viewer):
        return True
    return role_of(viewer) in OWN_LEADS_ONLY and lead.lead_owner_id == viewer.id


def sees_activity(viewer: Viewer, lead: LeadDocument, activity: Activity) -> bool:
    """Whether a live timeline event reaches `viewer`: one of a lead in their scope, and the
    ASSIGNED entry that moves a lead away from them (the last they hear of it, so a client
    can drop it from its lists)."""
    if in_scope(viewer, lead):
        return True
    return (
        role_of(viewer) in OWN_LEADS_ONLY
        and activity.type is ActivityType.ASSIGNED
        and activity.old_value == viewer.id
    )
