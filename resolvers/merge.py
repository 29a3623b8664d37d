"""mergeLeads and unmergeLeads: read the arguments, call services/merge.py, return."""

from typing import Annotated

import strawberry

from resolvers.arguments import LeadIdArgument
from resolvers.context import Info
from resolvers.permissions import permission_field
from schema.merge import MergeFieldChoice, MergeLeadsPayload, UnmergeLeadsPayload
from services import merge
from services.policy import Action


@strawberry.type
class MergeMutation:
    @permission_field(
        Action.DELETE,
        description="Merge duplicates into the primary lead: their emails, calls, tasks, "
        "notes, deal and timeline entries move to it (entries in time order, ids kept), empty "
        "primary fields take the first duplicate's value unless `fieldChoices` say otherwise, "
        "a MERGED entry is written and the duplicates are deleted (a snapshot is kept: "
        "unmergeLeads undoes it all). Calling it again with the same leads finishes an "
        "interrupted merge. Errors: NOT_FOUND for a lead not in scope; BAD_USER_INPUT for "
        "repeated ids, over 20 duplicates or a bad choice; CONFLICT when two of the leads are "
        "converted, or one is in an unfinished merge.",
    )
    async def merge_leads(
        self,
        info: Info,
        primary_lead_id: LeadIdArgument,
        duplicate_lead_ids: Annotated[
            list[str], strawberry.argument(description="The leads to merge into it (1 to 20).")
        ],
        field_choices: Annotated[
            list[MergeFieldChoice] | None,
            strawberry.argument(description="Which lead gives a field its value."),
        ] = None,
        dry_run: Annotated[
            bool, strawberry.argument(description="Say what would happen; write nothing.")
        ] = False,
    ) -> MergeLeadsPayload:
        choices = [merge.FieldChoice(c.field, c.lead_id) for c in field_choices or []]
        done = await merge.merge_leads(
            info.context.user, primary_lead_id, duplicate_lead_ids, choices, dry_run=dry_run
        )
        return MergeLeadsPayload(
            merge_id=strawberry.ID(done.merge_id) if done.merge_id else None,
            lead=done.lead,
            merged_lead_ids=done.merged_lead_ids,
            moved_emails=done.moved["emails"],
            moved_calls=done.moved["calls"],
            moved_tasks=done.moved["tasks"],
            moved_notes=done.moved["notes"],
            moved_deals=done.moved["deals"],
            moved_activities=done.moved_activities,
            changed_fields=done.changed_fields,
            dry_run=done.dry_run,
        )

    @permission_field(
        Action.DELETE,
        description="Undo a merge: the merged leads come back with their own ids, fields, "
        "children and timeline entries; the primary gets back its timeline and the fields the "
        "merge changed (unless changed since). Calling it again finishes an interrupted "
        "unmerge. Errors: NOT_FOUND for an unknown merge; CONFLICT when it was undone already "
        "or is not finished.",
    )
    async def unmerge_leads(
        self,
        info: Info,
        merge_id: Annotated[
            strawberry.ID, strawberry.argument(description="mergeLeads' `mergeId`.")
        ],
    ) -> UnmergeLeadsPayload:
        done = await merge.unmerge_leads(info.context.user, merge_id)
        return UnmergeLeadsPayload(lead=done.lead, restored_leads=done.restored_leads)
