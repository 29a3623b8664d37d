"""Lead merges (`lead_merges`): what each mergeLeads did, so unmergeLeads can undo it.

A merge document is written before any lead is touched and holds everything needed to finish
or undo the merge: the primary lead, the duplicates as they were last read before deletion
(whole documents, byte for byte: `snapshots`), the primary's values the merge replaced
(`primaryBefore`, stored names) and the values it wrote (`primaryAfter`). Children, deals
and timeline entries moved to the primary carry `mergeId` and `mergedFrom` (the lead they
came from), so they can be found and moved back.
"""

from enum import Enum
from typing import Any

from pydantic import Field
from pymongo import IndexModel

from models.base import CrmDocument, StoredDateTime


class MergeStatus(Enum):
    MERGING = "merging"
    MERGED = "merged"
    UNMERGING = "unmerging"
    UNMERGED = "unmerged"


# Stored on emails, calls, tasks, notes, deals and timeline entries a merge moved.
MERGE_ID_FIELD = "mergeId"
MERGED_FROM_FIELD = "mergedFrom"


class LeadMergeDocument(CrmDocument):
    primary_lead_id: str = Field(alias="primaryLeadId")
    duplicate_lead_ids: list[str] = Field(alias="duplicateLeadIds")
    status: MergeStatus = MergeStatus.MERGING
    snapshots: list[dict[str, Any]] = Field(default_factory=list)
    primary_before: dict[str, Any] = Field(default_factory=dict, alias="primaryBefore")
    primary_after: dict[str, Any] = Field(default_factory=dict, alias="primaryAfter")
    by: str | None = None
    created_at: StoredDateTime = Field(alias="createdAt")
    unmerged_at: StoredDateTime | None = Field(default=None, alias="unmergedAt")

    class Settings:
        name = "lead_merges"
        indexes = [
            # A retried mergeLeads finds its unfinished merge by the leads it names.
            IndexModel([("primaryLeadId", 1), ("status", 1)]),
        ]
