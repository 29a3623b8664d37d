"""Import jobs (`import_jobs`), their uploaded files (`import_files`) and their row ledger
(`import_rows`); see services/imports.py for how they are used.

- A job document holds the options, the progress counters and the checkpoint
  (`processedRows`: every data row before it is done) and a lease (`owner`, `leaseUntil`),
  so exactly one server instance runs it and another takes over when that one dies.
- The uploaded file's bytes are stored in MongoDB, in chunks of `CHUNK_BYTES`: any
  instance of a replica set can resume the job after a restart.
- The ledger has one document per row that failed (its errors) or updated a lead (which one),
  unique per (job, row): a batch that runs twice (resumed after a crash) records nothing
  twice. Rows that created a lead looking like stored leads are in `import_duplicates`.
  Leads a job created carry `importJobId`, `importRow` and `importKey` (`<job>:<row>`,
  unique among leads) themselves.
"""

from datetime import datetime
from enum import Enum

from beanie import PydanticObjectId
from pydantic import BaseModel, ConfigDict, Field
from pymongo import IndexModel

from models.base import CrmDocument, StoredDateTime

CHUNK_BYTES = 255 * 1024
# Stored on leads a job created (extra fields of the lead document).
LEAD_JOB_FIELD = "importJobId"
LEAD_ROW_FIELD = "importRow"
LEAD_KEY_FIELD = "importKey"
"""`<job id>:<row>`, unique among leads."""


class ImportStatus(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    REVERTED = "reverted"


TERMINAL = frozenset({ImportStatus.COMPLETED, ImportStatus.FAILED, ImportStatus.REVERTED})


class ImportMode(Enum):
    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"


class ImportMatch(Enum):
    LEAD_ID = "lead_id"
    EMAIL = "email"
    PHONE = "phone"


class ColumnMapping(BaseModel):
    """A file column and the lead field (Python name) it fills."""

    model_config = ConfigDict(populate_by_name=True)

    column: str
    field: str


class RowError(BaseModel):
    """One problem of one row: where it is, what is wrong, and the value as uploaded."""

    model_config = ConfigDict(populate_by_name=True)

    row: int
    column: str | None = None
    field: str | None = None
    code: str
    message: str
    value: str | None = None


class ImportJobDocument(CrmDocument):
    status: ImportStatus = ImportStatus.QUEUED
    file_name: str = Field(alias="fileName")
    file_size: int = Field(default=0, alias="fileSize")
    file_format: str | None = Field(default=None, alias="fileFormat")
    encoding: str | None = None
    delimiter: str | None = None
    mode: ImportMode = ImportMode.CREATE
    match_on: list[ImportMatch] = Field(default_factory=list, alias="matchOn")
    mapping: list[ColumnMapping] = Field(default_factory=list)
    """What the client asked for (`mapping`), column by column."""
    columns: list[ColumnMapping] = Field(default_factory=list)
    """The mapping in force: the file's columns that fill a lead field."""
    unknown_columns: list[str] = Field(default_factory=list, alias="unknownColumns")
    dry_run: bool = Field(default=False, alias="dryRun")
    total_rows: int | None = Field(default=None, alias="totalRows")
    processed_rows: int = Field(default=0, alias="processedRows")
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    error: str | None = None
    """Why the whole job failed (a file it cannot read), if it did."""
    created_at: StoredDateTime = Field(alias="createdAt")
    started_at: StoredDateTime | None = Field(default=None, alias="startedAt")
    finished_at: StoredDateTime | None = Field(default=None, alias="finishedAt")
    created_by: str = Field(alias="createdBy")
    created_by_name: str | None = Field(default=None, alias="createdByName")
    created_by_role: str = Field(default="admin", alias="createdByRole")
    owner: str | None = None
    lease_until: StoredDateTime | None = Field(default=None, alias="leaseUntil")
    reverted_at: StoredDateTime | None = Field(default=None, alias="revertedAt")
    reverted_by: str | None = Field(default=None, alias="revertedBy")

    class Settings:
        name = "import_jobs"
        indexes = [
            IndexModel([("createdAt", -1), ("_id", -1)]),
            IndexModel([("status", 1), ("leaseUntil", 1)]),
        ]


class ImportFileChunk(CrmDocument):
    job_id: PydanticObjectId = Field(alias="jobId")
    n: int
    data: bytes

    class Settings:
        name = "import_files"
        indexes = [IndexModel([("jobId", 1), ("n", 1)], unique=True)]


class RowDuplicate(BaseModel):
    """A stored lead the row's new lead looks like (services/search.py's rules)."""

    model_config = ConfigDict(populate_by_name=True)

    lead_id: str = Field(alias="leadId")
    score: float
    rules: list[str]


class ImportRowDocument(CrmDocument):
    job_id: PydanticObjectId = Field(alias="jobId")
    row: int
    outcome: str
    """`failed` or `updated`."""
    lead_id: str | None = Field(default=None, alias="leadId")
    errors: list[RowError] = Field(default_factory=list)
    at: datetime | None = None

    class Settings:
        name = "import_rows"
        indexes = [
            IndexModel([("jobId", 1), ("row", 1)], unique=True),
            IndexModel([("jobId", 1), ("outcome", 1), ("row", 1)]),
        ]


class ImportDuplicateDocument(CrmDocument):
    """A row whose new lead looks like stored leads. Its `_id` is `<job>:<row>`: a batch
    that runs twice records it once (a keyed check, where a compound unique index would make
    the embedded engine read the whole collection at every insert)."""

    id: str = Field(alias="_id")  # type: ignore[assignment]
    job_id: PydanticObjectId = Field(alias="jobId")
    row: int
    lead_id: str | None = Field(default=None, alias="leadId")
    """None on a dry run."""
    duplicates: list[RowDuplicate]

    class Settings:
        name = "import_duplicates"
        indexes = [IndexModel([("jobId", 1), ("row", 1)])]
