"""Merging duplicate leads into one (mergeLeads), and undoing it (unmergeLeads).

A merge is recorded first (models/merge.py: the plan, the primary's old values, a snapshot of
each duplicate), then runs as steps (services/steps.py) that can each run again, on any
deployment: calling mergeLeads again with the same leads finishes an interrupted merge (it
finds its record), and calling unmergeLeads again finishes an interrupted unmerge. Tests
prove it with a failure injected between every two steps (tests/test_merge.py).

Merge steps:
1. move the duplicates' emails, calls, tasks and notes to the primary, then their deal,
   each tagged with the merge and the lead it came from;
2. rewrite the primary: its entries and the duplicates' in time order (each keeps its id,
   stored on it), a MERGED entry last, the chosen field values and new keys; the duplicates'
   snapshots are refreshed to what this step merged;
3. delete each duplicate only if its timeline is as step 2 read it (a child added meanwhile
   logs an entry: then the steps start over, and it is merged too);
4. move children again (a child whose adder found a duplicate just before it went);
5. mark the merge done.

Unmerge steps: put the snapshots back (same `_id`, same bytes), move the tagged children and
deal back, take the moved entries and the MERGED entry off the primary and restore the
fields the merge changed (those nobody changed since), mark the merge undone. The primary's
timeline is then exactly what it was before the merge: the `lead_merges` document records
who undid it and when.
"""

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.errors import DuplicateKeyError
from strawberry.utils.str_converters import to_camel_case

from models.activity import Activity
from models.base import CrmDocument, stored_fields, to_bson, utc_now
from models.call import CallDocument
from models.deal import DealDocument
from models.email import EmailDocument
from models.fields import LeadFields, specs, stored_name
from models.lead import LeadDocument
from models.merge import MERGE_ID_FIELD, MERGED_FROM_FIELD, LeadMergeDocument, MergeStatus
from models.note import NoteDocument
from models.task import TaskDocument
from services import normalize, policy, timeline
from services.errors import BadUserInput, Conflict, FieldError, not_found
from services.policy import Action
from services.steps import Step, run_steps
from services.viewer import Viewer

MAX_DUPLICATES = 20
# Moved by a merge, and back by an unmerge.
CHILDREN: dict[str, type[CrmDocument]] = {
    "emails": EmailDocument,
    "calls": CallDocument,
    "tasks": TaskDocument,
    "notes": NoteDocument,
    "deals": DealDocument,
}
# Fields a merge fills from the duplicates (ownership stays the primary's: assignLead).
MERGED_FIELDS = tuple(name for name in specs(LeadFields, writable=True) if name != "lead_owner_id")
CONVERSION_FIELDS = ("convertedToDeal", "dealId")
# Starting over because the leads keep changing ends in CONFLICT after this many tries.
MAX_ATTEMPTS = 25


@dataclass(frozen=True)
class FieldChoice:
    field: str
    """GraphQL name of a lead field."""
    lead_id: str


@dataclass
class MergeResult:
    merge_id: str | None
    lead: LeadDocument
    merged_lead_ids: list[str]
    moved: dict[str, int]
    moved_activities: int
    changed_fields: list[str]
    dry_run: bool


@dataclass
class UnmergeResult:
    lead: LeadDocument
    restored_leads: list[LeadDocument]


class LeadsChanged(Exception):
    """A duplicate changed after its timeline was merged: start over."""


def _leads() -> Any:
    return LeadDocument.get_pymongo_collection()


def _merges() -> Any:
    return LeadMergeDocument.get_pymongo_collection()


def _empty(value: object) -> bool:
    return value is None or value == "" or value == []


# --- planning ------------------------------------------------------------------------------


def _choices(choices: Sequence[FieldChoice], lead_ids: Sequence[str]) -> dict[str, str]:
    """`{stored field: lead id}`; BAD_USER_INPUT for unknown fields or leads not merged."""
    by_graphql = {to_camel_case(name): name for name in MERGED_FIELDS}
    chosen: dict[str, str] = {}
    errors = []
    for choice in choices:
        name = by_graphql.get(choice.field)
        if name is None:
            errors.append(FieldError("fieldChoices", f"{choice.field!r} is no mergeable field"))
        elif choice.lead_id not in lead_ids:
            message = f"{choice.lead_id!r} is not one of the merged leads"
            errors.append(FieldError("fieldChoices", message))
        else:
            chosen[stored_name(LeadFields, name)] = choice.lead_id
    if errors:
        raise BadUserInput(errors)
    return chosen


def _plan(
    primary: Mapping[str, Any], duplicates: Sequence[Mapping[str, Any]], chosen: Mapping[str, str]
) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """The primary's new values (stored names): a chosen lead's, else its own unless empty,
    else the first duplicate's that is not; with the fields it replaces (before; absent)."""
    by_id = {lead["lead_id"]: lead for lead in [primary, *duplicates]}
    after: dict[str, Any] = {}
    for name in MERGED_FIELDS:
        stored = stored_name(LeadFields, name)
        if stored in chosen:
            value = by_id[chosen[stored]].get(stored)
        else:
            value = next(
                (
                    lead.get(stored)
                    for lead in [primary, *duplicates]
                    if not _empty(lead.get(stored))
                ),
                primary.get(stored),
            )
        if value != primary.get(stored):
            after[stored] = value
    converted = [lead for lead in duplicates if lead.get("dealId")]
    if converted and not primary.get("dealId"):
        after |= {"convertedToDeal": True, "dealId": converted[0]["dealId"]}
    before = {name: primary[name] for name in after if name in primary}
    absent = [name for name in after if name not in primary]
    return after, absent, before


def _refuse_two_deals(primary: Mapping[str, Any], duplicates: Sequence[Mapping[str, Any]]) -> None:
    converted = [lead for lead in [primary, *duplicates] if lead.get("dealId")]
    if len(converted) > 1:
        named = ", ".join(f"{lead['lead_id']} ({lead['dealId']})" for lead in converted)
        raise Conflict(
            f"{named} are each converted to a deal; a lead has at most one deal, so at most "
            "one of the merged leads may be converted"
        )


def _checked_ids(primary_id: str, duplicate_ids: Sequence[str]) -> list[str]:
    errors = []
    if not duplicate_ids or len(duplicate_ids) > MAX_DUPLICATES:
        errors.append(FieldError("duplicateLeadIds", f"give 1 to {MAX_DUPLICATES} lead ids"))
    if len(set(duplicate_ids)) != len(duplicate_ids):
        errors.append(FieldError("duplicateLeadIds", "a lead id is given twice"))
    if primary_id in duplicate_ids:
        errors.append(
            FieldError("duplicateLeadIds", "the primary lead cannot be its own duplicate")
        )
    if errors:
        raise BadUserInput(errors)
    return list(duplicate_ids)


async def _read(viewer: Viewer, lead_id: str) -> dict[str, Any]:
    raw = await _leads().find_one(policy.scoped(viewer, {"lead_id": lead_id}))
    if raw is None:
        raise not_found("Lead", lead_id)
    return dict(raw)


# --- merge steps ---------------------------------------------------------------------------


@dataclass
class MergeRun:
    merge: dict[str, Any]
    read: dict[str, int] = field(default_factory=dict)
    """Duplicate lead id → timeline length as step 2 merged it."""

    @property
    def merge_id(self) -> str:
        return str(self.merge["_id"])


async def _move_children(run: MergeRun) -> None:
    primary_id = run.merge["primaryLeadId"]
    for document in CHILDREN.values():
        for duplicate_id in run.merge["duplicateLeadIds"]:
            await document.get_pymongo_collection().update_many(
                {"lead_id": duplicate_id},
                {
                    "$set": {
                        "lead_id": primary_id,
                        MERGE_ID_FIELD: run.merge_id,
                        MERGED_FROM_FIELD: duplicate_id,
                    }
                },
            )


def _stamped(entries: Sequence[Mapping[str, Any]], lead_id: str) -> list[dict[str, Any]]:
    """Entries with their ids stored on them (the position-based id, where none is yet)."""
    return [
        {**entry, "entryId": entry.get("entryId") or f"{lead_id}:{number}"}
        for number, entry in enumerate(entries, start=1)
    ]


def _in_time_order(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda entry: Activity.model_validate(entry).timestamp)


@dataclass
class Rewrite:
    """The primary's new timeline and fields, composed from it as read."""

    entries: list[dict[str, Any]]
    sets: dict[str, Any]
    unsets: list[str] = field(default_factory=list)
    announced: int = 0


async def _rewrite_primary(
    run: MergeRun, compose: Callable[[dict[str, Any]], Awaitable[Rewrite]]
) -> bool:
    """Read the primary, `compose` its rewrite, write it pinned on the version read (again
    while others change it meanwhile). False when the primary is gone."""
    primary_id = run.merge["primaryLeadId"]
    for _ in range(MAX_ATTEMPTS):
        primary = await _leads().find_one({"lead_id": primary_id})
        if primary is None:
            return False
        rewrite = await compose(primary)
        written = await timeline.rewrite(
            {"_id": primary["_id"], "updatedAt": primary.get("updatedAt")},
            rewrite.entries,
            sets=rewrite.sets,
            unsets=rewrite.unsets,
            at=utc_now(),
            announced=rewrite.announced,
        )
        if written is not None:
            return True
    raise Conflict(f"Lead {primary_id!r} is being changed by others; retry")


async def _merge_timeline(run: MergeRun) -> None:
    merge = run.merge
    primary_id, merge_id = merge["primaryLeadId"], run.merge_id
    live: dict[str, dict[str, Any]] = {}

    async def compose(primary: dict[str, Any]) -> Rewrite:
        live.clear()
        async for raw in _leads().find({"lead_id": {"$in": merge["duplicateLeadIds"]}}):
            live[raw["lead_id"]] = raw
        own = [
            entry
            for entry in _stamped(primary.get("activities") or [], primary_id)
            # this merge's earlier attempt: the MERGED entry, and what is merged again now
            if entry.get(MERGE_ID_FIELD) != merge_id
            or (entry.get(MERGED_FROM_FIELD) is not None and entry[MERGED_FROM_FIELD] not in live)
        ]
        moved = [
            {**entry, MERGE_ID_FIELD: merge_id, MERGED_FROM_FIELD: lead_id}
            for lead_id, raw in live.items()
            for entry in _stamped(raw.get("activities") or [], lead_id)
        ]
        entries = _in_time_order(own + moved)
        closing = to_bson(
            timeline.merged(merge_id, merge["duplicateLeadIds"], by=merge.get("by"), at=utc_now())
        )
        assert isinstance(closing, dict)
        entries.append({**closing, "entryId": f"{primary_id}:{len(entries) + 1}"})
        sets = {
            name: value
            for name, value in merge["primaryAfter"].items()
            # a field someone changed since the merge started keeps their value
            if primary.get(name) in (merge["primaryBefore"].get(name), value)
        }
        return Rewrite(entries, sets | _keys({**primary, **sets}), announced=1)

    if not await _rewrite_primary(run, compose):
        raise not_found("Lead", primary_id)
    run.read = {lead_id: len(raw.get("activities") or []) for lead_id, raw in live.items()}
    snapshots = [live.get(snapshot["lead_id"], snapshot) for snapshot in merge["snapshots"]]
    await _merges().update_one({"_id": merge["_id"]}, {"$set": {"snapshots": snapshots}})


def _keys(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The normalized keys (stored names) of a lead with these stored values."""
    values = {name: stored.get(stored_name(LeadDocument, name)) for name in normalize.KEY_SOURCES}
    return stored_fields(LeadDocument, normalize.lead_keys(values))


async def _delete_duplicates(run: MergeRun) -> None:
    for lead_id, count in run.read.items():
        deleted = await _leads().delete_one({"lead_id": lead_id, "activities": {"$size": count}})
        if deleted.deleted_count == 0 and await _leads().find_one({"lead_id": lead_id}, {"_id": 1}):
            raise LeadsChanged


async def _finish_merge(run: MergeRun) -> None:
    await _merges().update_one(
        {"_id": run.merge["_id"]}, {"$set": {"status": MergeStatus.MERGED.value}}
    )


STEPS: tuple[Step[MergeRun], ...] = (
    Step("move children", _move_children),
    Step("merge timeline", _merge_timeline),
    Step("delete duplicates", _delete_duplicates),
    Step("sweep children", _move_children),
    Step("finish", _finish_merge),
)


async def _run_merge(run: MergeRun) -> None:
    for _ in range(MAX_ATTEMPTS):
        try:
            await run_steps(STEPS, run)
        except LeadsChanged:
            continue
        return
    raise Conflict("The leads are being changed by others; retry the merge")


# --- mergeLeads ----------------------------------------------------------------------------


async def merge_leads(
    viewer: Viewer,
    primary_id: str,
    duplicate_ids: Sequence[str],
    choices: Sequence[FieldChoice] = (),
    *,
    dry_run: bool = False,
) -> MergeResult:
    """Merge the duplicates into the primary (or, with `dry_run`, say what that would do)."""
    policy.require(viewer, Action.DELETE)
    duplicate_ids = _checked_ids(primary_id, duplicate_ids)
    chosen = _choices(choices, [primary_id, *duplicate_ids])
    same = {"primaryLeadId": primary_id, "duplicateLeadIds": duplicate_ids}
    primary = await _read(viewer, primary_id)
    unfinished = await _merges().find_one({**same, "status": MergeStatus.MERGING.value})
    done = await _merges().find_one({**same, "status": MergeStatus.MERGED.value})
    if unfinished is None and done is not None and not await _any_exists(duplicate_ids):
        return await _result(viewer, done)  # a retry of a merge that finished: its answer
    if unfinished is None:
        await _refuse_busy([primary_id, *duplicate_ids])
        duplicates = [await _read(viewer, lead_id) for lead_id in duplicate_ids]
        _refuse_two_deals(primary, duplicates)
        after, absent, before = _plan(primary, duplicates, chosen)
        if dry_run:
            return await _preview(primary, duplicates, after)
        merge = {
            **same,
            "status": MergeStatus.MERGING.value,
            "snapshots": duplicates,
            "primaryBefore": before,
            "primaryAbsent": absent,
            "primaryAfter": after,
            "by": viewer.name,
            "createdAt": utc_now(),
        }
        merge["_id"] = (await _merges().insert_one(merge)).inserted_id
    else:
        merge = dict(unfinished)
        if dry_run:
            raise Conflict(
                f"Merge {merge['_id']} of these leads is under way; run it again to finish it"
            )
    await _run_merge(MergeRun(merge))
    return await _result(viewer, merge)


async def _any_exists(lead_ids: list[str]) -> bool:
    return await _leads().find_one({"lead_id": {"$in": lead_ids}}, {"_id": 1}) is not None


async def _refuse_busy(lead_ids: list[str]) -> None:
    busy = await _merges().find_one(
        {
            "status": {"$in": [MergeStatus.MERGING.value, MergeStatus.UNMERGING.value]},
            "$or": [
                {"primaryLeadId": {"$in": lead_ids}},
                {"duplicateLeadIds": {"$in": lead_ids}},
            ],
        }
    )
    if busy is not None:
        raise Conflict(
            f"Merge {busy['_id']} of {busy['primaryLeadId']} is not finished; finish it first "
            "(mergeLeads or unmergeLeads with the same leads again)"
        )


async def _counts(query_of: Mapping[str, Any]) -> dict[str, int]:
    return {
        name: await document.get_pymongo_collection().count_documents(dict(query_of))
        for name, document in CHILDREN.items()
    }


async def _preview(
    primary: Mapping[str, Any], duplicates: Sequence[Mapping[str, Any]], after: Mapping[str, Any]
) -> MergeResult:
    entries = _in_time_order(
        _stamped(primary.get("activities") or [], primary["lead_id"])
        + [
            entry
            for raw in duplicates
            for entry in _stamped(raw.get("activities") or [], raw["lead_id"])
        ]
    )
    merged_ids = [raw["lead_id"] for raw in duplicates]
    preview = LeadDocument.model_validate({**primary, **after, "activities": entries})
    return MergeResult(
        merge_id=None,
        lead=preview,
        merged_lead_ids=merged_ids,
        moved=await _counts({"lead_id": {"$in": merged_ids}}),
        moved_activities=sum(len(raw.get("activities") or []) for raw in duplicates),
        changed_fields=_graphql_names(after),
        dry_run=True,
    )


def _graphql_names(stored: Mapping[str, Any]) -> list[str]:
    names = {
        stored_name(LeadDocument, name): to_camel_case(name) for name in LeadDocument.model_fields
    }
    return [names.get(name, name) for name in stored]


async def _result(viewer: Viewer, merge: Mapping[str, Any]) -> MergeResult:
    primary = await _read(viewer, merge["primaryLeadId"])
    merge_id = str(merge["_id"])
    moved = [
        e
        for e in primary.get("activities") or []
        if e.get(MERGED_FROM_FIELD) and e.get(MERGE_ID_FIELD) == merge_id
    ]
    return MergeResult(
        merge_id=merge_id,
        lead=LeadDocument.model_validate(primary),
        merged_lead_ids=list(merge["duplicateLeadIds"]),
        moved=await _counts({MERGE_ID_FIELD: merge_id}),
        moved_activities=len(moved),
        changed_fields=_graphql_names(merge["primaryAfter"]),
        dry_run=False,
    )


# --- unmergeLeads --------------------------------------------------------------------------


async def _restore_duplicates(run: MergeRun) -> None:
    for snapshot in run.merge["snapshots"]:
        with contextlib.suppress(DuplicateKeyError):  # restored by an earlier attempt
            await _leads().insert_one(snapshot)


async def _move_children_back(run: MergeRun) -> None:
    for document in CHILDREN.values():
        for duplicate_id in run.merge["duplicateLeadIds"]:
            await document.get_pymongo_collection().update_many(
                {MERGE_ID_FIELD: run.merge_id, MERGED_FROM_FIELD: duplicate_id},
                {
                    "$set": {"lead_id": duplicate_id},
                    "$unset": {MERGE_ID_FIELD: "", MERGED_FROM_FIELD: ""},
                },
            )


def _unstamped(entries: Sequence[Mapping[str, Any]], lead_id: str) -> list[dict[str, Any]]:
    """Entries without the ids a merge stored where the position gives the same id again."""
    kept = []
    for number, entry in enumerate(entries, start=1):
        copy = dict(entry)
        if copy.get("entryId") == f"{lead_id}:{number}":
            del copy["entryId"]
        kept.append(copy)
    return kept


async def _unmerge_primary(run: MergeRun) -> None:
    merge = run.merge

    async def compose(primary: dict[str, Any]) -> Rewrite:
        entries = [
            entry
            for entry in primary.get("activities") or []
            if entry.get(MERGE_ID_FIELD) != run.merge_id
        ]
        changed = {
            name
            for name, value in merge["primaryAfter"].items()
            if primary.get(name) == value  # a field someone changed since keeps their value
        }
        before = merge["primaryBefore"]
        sets = {name: before[name] for name in changed if name in before}
        unsets = [name for name in changed if name in merge.get("primaryAbsent", [])]
        restored = {key: value for key, value in primary.items() if key not in unsets} | sets
        return Rewrite(_unstamped(entries, merge["primaryLeadId"]), sets | _keys(restored), unsets)

    await _rewrite_primary(run, compose)  # a primary deleted since: nothing to take off it


async def _finish_unmerge(run: MergeRun) -> None:
    await _merges().update_one(
        {"_id": run.merge["_id"]},
        {"$set": {"status": MergeStatus.UNMERGED.value, "unmergedAt": utc_now()}},
    )


UNMERGE_STEPS: tuple[Step[MergeRun], ...] = (
    Step("restore duplicates", _restore_duplicates),
    Step("move children back", _move_children_back),
    Step("restore primary", _unmerge_primary),
    Step("finish", _finish_unmerge),
)


async def unmerge_leads(viewer: Viewer, merge_id: str) -> UnmergeResult:
    """Undo a merge: the merged leads back with their own ids, children and entries."""
    policy.require(viewer, Action.DELETE)
    try:
        key = ObjectId(merge_id)
    except (InvalidId, TypeError):
        raise not_found("Merge", merge_id) from None
    merge = await _merges().find_one({"_id": key})
    if merge is None:
        raise not_found("Merge", merge_id)
    await _read(viewer, merge["primaryLeadId"])  # out of scope: NOT_FOUND, like the lead
    status = MergeStatus(merge["status"])
    if status is MergeStatus.UNMERGED:
        raise Conflict(f"Merge {merge_id} was undone already")
    if status is MergeStatus.MERGING:
        raise Conflict(f"Merge {merge_id} is not finished; run mergeLeads again to finish it")
    await _merges().update_one({"_id": key}, {"$set": {"status": MergeStatus.UNMERGING.value}})
    await run_steps(UNMERGE_STEPS, MergeRun(dict(merge)))
    restored = [await _read(viewer, lead_id) for lead_id in merge["duplicateLeadIds"]]
    return UnmergeResult(
        lead=LeadDocument.model_validate(await _read(viewer, merge["primaryLeadId"])),
        restored_leads=[LeadDocument.model_validate(raw) for raw in restored],
    )
