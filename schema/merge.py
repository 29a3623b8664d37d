"""mergeLeads and unmergeLeads: their input and payloads (services/merge.py does the work)."""

import strawberry

from models.lead import LeadDocument
from schema.lead import Lead


@strawberry.input(description="Take one field's value from one of the merged leads.")
class MergeFieldChoice:
    field: str = strawberry.field(
        description='A Lead field by its GraphQL name, e.g. "email" (any writable field but '
        "leadOwnerId: ownership stays the primary's)."
    )
    lead_id: str = strawberry.field(description="The primary or one of the duplicates.")


@strawberry.type(description="What mergeLeads did (or, with dryRun, would do).")
class MergeLeadsPayload:
    merge_id: strawberry.ID | None = strawberry.field(
        description="The merge, for unmergeLeads; null on a dry run."
    )
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead,
        description="The primary lead after the merge (on a dry run: as it would be, its "
        "timeline merged; nothing is stored).",
    )
    merged_lead_ids: list[str] = strawberry.field(
        description="The duplicates, deleted by the merge (restored by unmergeLeads)."
    )
    moved_emails: int = strawberry.field(description="Emails moved to the primary.")
    moved_calls: int = strawberry.field(description="Calls moved to the primary.")
    moved_tasks: int = strawberry.field(description="Tasks moved to the primary.")
    moved_notes: int = strawberry.field(description="Notes moved to the primary.")
    moved_deals: int = strawberry.field(
        description="Deals now linked to the primary (a converted duplicate's)."
    )
    moved_activities: int = strawberry.field(
        description="Timeline entries moved to the primary, in time order, ids kept."
    )
    changed_fields: list[str] = strawberry.field(
        description="Primary fields the merge set (GraphQL names; also convertedToDeal and "
        "dealId when a duplicate's deal comes along)."
    )
    dry_run: bool = strawberry.field(description="True: nothing was written.")


@strawberry.type(description="What unmergeLeads restored.")
class UnmergeLeadsPayload:
    lead: LeadDocument = strawberry.field(
        graphql_type=Lead, description="The primary lead as it was before the merge."
    )
    restored_leads: list[LeadDocument] = strawberry.field(
        graphql_type=list[Lead],
        description="The merged leads, back with their own ids, fields, children and entries.",
    )
