"""Import jobs (README "Import and export"): their GraphQL types and inputs."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.file_uploads import Upload

from models.import_job import ImportJobDocument, ImportMatch, ImportMode, ImportStatus, RowError
from resolvers.context import Info
from schema.common import PageInfo, describe_values
from schema.search import DuplicateCandidate
from services import imports, search
from services.errors import BadUserInput, FieldError
from services.viewer import Viewer

strawberry.enum(ImportMode, description="What an import does with each row.")
strawberry.enum(ImportMatch, description="How an import finds the lead a row means.")
strawberry.enum(ImportStatus, description="Where an import job stands.")
describe_values(
    ImportMode,
    CREATE="Every valid row becomes a new lead.",
    UPDATE="Every row changes the lead it matches; a row that matches none fails (NOT_FOUND).",
    UPSERT="A row changes the lead it matches, or becomes a new lead when it matches none.",
)
describe_values(
    ImportMatch,
    LEAD_ID='The lead id column ("LEAD-001").',
    EMAIL="The email, normalized: case, spaces and `+tags` (Gmail, Outlook…) do not matter.",
    PHONE="The mobile number, normalized to E.164: formatting does not matter.",
)
describe_values(
    ImportStatus,
    QUEUED="Waiting for a server to run it.",
    RUNNING="Being read and written; survives a restart (it resumes at its checkpoint).",
    COMPLETED="Every row is done (see the counters and `errors`).",
    FAILED="The file was refused as a whole (see `error`); nothing was written.",
    REVERTED="Undone by revertImport.",
)


@strawberry.input(description="A file column and the lead field it fills.")
class ColumnMappingInput:
    column: str = strawberry.field(description="The column's header, as in the file.")
    field: str = strawberry.field(
        description='The lead field: its GraphQL name ("firstName"), stored name, or an alias '
        '("E-mail", "Company").'
    )


@strawberry.input(description="What to import and how.")
class StartImportInput:
    file: Upload = strawberry.field(
        description="The file (GraphQL multipart request): CSV (any common delimiter and "
        "encoding, header row) or XLSX (first sheet, header row)."
    )
    mode: ImportMode = strawberry.field(
        default=ImportMode.CREATE, description="Create, update or upsert (default CREATE)."
    )
    match_on: list[ImportMatch] | None = strawberry.field(
        default=None,
        description="UPDATE and UPSERT: the keys that find a row's lead, tried in order "
        "(default LEAD_ID, then EMAIL).",
    )
    mapping: list[ColumnMappingInput] | None = strawberry.field(
        default=None,
        description="Columns to map explicitly; the others map by header (GraphQL names, "
        "stored names, common aliases).",
    )
    dry_run: bool = strawberry.field(
        default=False,
        description="Check and count everything, write no lead: the same report as a real run.",
    )


@strawberry.type(description="One problem of one row of an import.")
class ImportError:
    id: strawberry.ID = strawberry.field(
        description='Unique: the job id, row and place of the error ("<job>:12:0").'
    )
    row: int = strawberry.field(description="Row number in the file (the header is row 1).")
    column: str | None = strawberry.field(description="The column, as in the file's header.")
    field: str | None = strawberry.field(description="The lead field (GraphQL name).")
    code: str = strawberry.field(
        description="BAD_USER_INPUT (invalid value), NOT_FOUND (UPDATE: no lead matches), "
        "AMBIGUOUS_MATCH (several leads match), CONFLICT (changed meanwhile)."
    )
    message: str = strawberry.field(description="What is wrong.")
    value: str | None = strawberry.field(description="The cell as uploaded.")


def _error(job_id: str, index: int, error: RowError) -> ImportError:
    return ImportError(
        id=strawberry.ID(f"{job_id}:{error.row}:{index}"),
        row=error.row,
        column=error.column,
        field=error.field,
        code=error.code,
        message=error.message,
        value=error.value,
    )


@strawberry.type(description="A page of an import's row errors, in row order.")
class ImportErrorConnection:
    nodes: list[ImportError] = strawberry.field(description="The errors of this page.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether there are more.")
    total_count: int = strawberry.field(description="How many rows failed, over all pages.")


@strawberry.type(description="An imported row whose new lead looks like stored leads.")
class ImportRowDuplicates:
    id: strawberry.ID = strawberry.field(description='Unique: the job id and row ("<job>:12").')
    row: int = strawberry.field(description="Row number in the file (the header is row 1).")
    lead_id: str | None = strawberry.field(
        description="The lead the row created; null on a dry run."
    )
    candidates: list[search.DuplicateCandidate] = strawberry.field(
        graphql_type=list[DuplicateCandidate],
        description="Up to 5 stored leads it looks like, best first (findDuplicates' rules); "
        "merge them with mergeLeads.",
    )


@strawberry.type(description="A page of an import's rows with likely duplicates, in row order.")
class ImportDuplicateConnection:
    nodes: list[ImportRowDuplicates] = strawberry.field(description="The rows of this page.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether there are more.")
    total_count: int = strawberry.field(description="How many rows, over all pages.")


@strawberry.type(description="A column of the file and the lead field it fills.")
class ColumnMapping:
    id: strawberry.ID = strawberry.field(description="Unique: the job id and the column's place.")
    column: str = strawberry.field(description="The column's header.")
    field: str = strawberry.field(description="The lead field (GraphQL name).")


@strawberry.type(description="An import: its options, progress, counters and row errors.")
class ImportJob:
    document: strawberry.Private[ImportJobDocument]
    id: strawberry.ID = strawberry.field(description="The job's id.")
    status: ImportStatus = strawberry.field(description="Where the job stands.")
    file_name: str = strawberry.field(description="The uploaded file's name.")
    mode: ImportMode = strawberry.field(description="Create, update or upsert.")
    match_on: list[ImportMatch] = strawberry.field(description="The keys rows are matched by.")
    dry_run: bool = strawberry.field(description="True: nothing is written to leads.")
    total_rows: int | None = strawberry.field(
        description="Data rows in the file (blank rows left out); null until the file is read."
    )
    processed_rows: int = strawberry.field(description="Rows done so far.")
    created: int = strawberry.field(description="Rows that created a lead.")
    updated: int = strawberry.field(description="Rows that changed a lead.")
    unchanged: int = strawberry.field(description="Rows that matched a lead already so.")
    failed: int = strawberry.field(description="Rows reported in `errors` and not written.")
    unknown_columns: list[str] = strawberry.field(
        description="Columns no lead field takes (ignored; reported once, not per row)."
    )
    columns: list[ColumnMapping] = strawberry.field(
        description="The mapping in force: each column that fills a lead field."
    )
    error: str | None = strawberry.field(
        description="Why the job FAILED as a whole (a file it refuses), if it did."
    )
    created_at: datetime = strawberry.field(description="When the job was started.")
    finished_at: datetime | None = strawberry.field(description="When it completed or failed.")
    reverted_at: datetime | None = strawberry.field(description="When it was reverted.")
    created_by: str | None = strawberry.field(description="Name of who started it.")

    @strawberry.field(
        description="Rows that created a lead looking like stored leads (EMAIL, PHONE, a "
        "similar name with the same organization…), with their candidates; `first` up to 500."
    )
    async def duplicates(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size, 0 to 500.")] = 50,
        after: Annotated[
            str | None, strawberry.argument(description="`pageInfo.endCursor` of a page.")
        ] = None,
    ) -> ImportDuplicateConnection:
        return await _duplicates(self.document, info.context.user, first, after)

    @strawberry.field(description="The rows that failed, with why; `first` up to 500.")
    async def errors(
        self,
        first: Annotated[int, strawberry.argument(description="Page size, 0 to 500.")] = 50,
        after: Annotated[
            str | None, strawberry.argument(description="`pageInfo.endCursor` of a page.")
        ] = None,
    ) -> ImportErrorConnection:
        page = await imports.list_errors(self.document, first, after)
        return ImportErrorConnection(
            nodes=[_error(self.id, index, error) for index, error in page.indexed],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=None,
                end_cursor=page.end_cursor,
            ),
            total_count=page.total_count,
        )


async def _duplicates(
    document: ImportJobDocument, viewer: Viewer, first: int, after: str | None
) -> ImportDuplicateConnection:
    try:
        after_row = int(after) if after is not None else None
    except ValueError:
        raise BadUserInput([FieldError("after", "not a cursor of this list")]) from None
    rows, more, total = await imports.list_duplicates(document, first, after_row)
    ids = [found.lead_id for row in rows for found in row.duplicates]
    leads = await search.leads_by_id(viewer, ids)
    nodes = [
        ImportRowDuplicates(
            id=strawberry.ID(f"{document.id}:{row.row}"),
            row=row.row,
            lead_id=row.lead_id,
            candidates=[
                search.DuplicateCandidate(leads[found.lead_id], found.score, found.rules)
                for found in row.duplicates
                if found.lead_id in leads  # merged or deleted since, or out of scope
            ],
        )
        for row in rows
    ]
    return ImportDuplicateConnection(
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=more,
            has_previous_page=after is not None,
            start_cursor=None,
            end_cursor=str(rows[-1].row) if rows else after,
        ),
        total_count=total,
    )


def import_job(document: ImportJobDocument) -> ImportJob:
    from strawberry.utils.str_converters import to_camel_case

    return ImportJob(
        document=document,
        id=strawberry.ID(str(document.id)),
        status=document.status,
        file_name=document.file_name,
        mode=document.mode,
        match_on=list(document.match_on),
        dry_run=document.dry_run,
        total_rows=document.total_rows,
        processed_rows=document.processed_rows,
        created=document.created,
        updated=document.updated,
        unchanged=document.unchanged,
        failed=document.failed,
        unknown_columns=list(document.unknown_columns),
        columns=[
            ColumnMapping(
                id=strawberry.ID(f"{document.id}:column:{number}"),
                column=item.column,
                field=to_camel_case(item.field),
            )
            for number, item in enumerate(document.columns)
        ],
        error=document.error,
        created_at=document.created_at,
        finished_at=document.finished_at,
        reverted_at=document.reverted_at,
        created_by=document.created_by_name or document.created_by,
    )


@strawberry.type(description="A page of import jobs, newest first.")
class ImportJobConnection:
    nodes: list[ImportJob] = strawberry.field(description="The jobs of this page.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether there are more.")
