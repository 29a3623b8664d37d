"""Import queries, mutations and the progress subscription: read the arguments, call
services/imports.py, return."""

from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry

from models.import_job import ColumnMapping as ColumnMappingDocument
from resolvers.arguments import AfterArgument
from resolvers.context import Info
from resolvers.permissions import permission_field, permission_subscription
from schema.common import PageInfo
from schema.imports import (
    ImportJob,
    ImportJobConnection,
    StartImportInput,
    import_job,
)
from services import imports
from services.errors import BadUserInput, FieldError
from services.imports import IMPORT_ACTION

JobIdArgument = Annotated[strawberry.ID, strawberry.argument(description="The import job's id.")]


@strawberry.type
class ImportQuery:
    @permission_field(
        IMPORT_ACTION,
        description="One import job; null (with a NOT_FOUND error) when there is none.",
        graphql_type=ImportJob | None,
    )
    async def import_job(self, info: Info, id: JobIdArgument) -> ImportJob:
        return import_job(await imports.get_job(info.context.user, str(id)))

    @permission_field(IMPORT_ACTION, description="Import jobs, newest first.")
    async def import_jobs(
        self,
        info: Info,
        first: Annotated[
            int | None, strawberry.argument(description="Page size, 0 to 100 (default 20).")
        ] = 20,
        after: AfterArgument = None,
    ) -> ImportJobConnection:
        jobs, more = await imports.list_jobs(
            info.context.user, 20 if first is None else first, after
        )
        return ImportJobConnection(
            nodes=[import_job(job) for job in jobs],
            page_info=PageInfo(
                has_next_page=more,
                has_previous_page=after is not None,
                start_cursor=str(jobs[0].id) if jobs else None,
                end_cursor=str(jobs[-1].id) if jobs else None,
            ),
        )


@strawberry.type
class ImportMutation:
    @permission_field(
        IMPORT_ACTION,
        description="Upload a CSV or XLSX file (GraphQL multipart request; send an "
        "`Apollo-Require-Preflight: true` header) and start its import job, which runs in "
        "the background: follow it with `importJob` or `importProgress`. Errors: "
        "BAD_USER_INPUT (a mapping to no importable field, an empty or too large file).",
    )
    async def start_import(
        self,
        info: Info,
        input: Annotated[StartImportInput, strawberry.argument(description="File and options.")],
    ) -> ImportJob:
        upload: Any = input.file  # Starlette's UploadFile: filename, async read()
        if not callable(getattr(upload, "read", None)):
            raise BadUserInput([FieldError("file", "must be a file (GraphQL multipart request)")])
        mapping = [
            ColumnMappingDocument(column=item.column, field=item.field)
            for item in input.mapping or []
        ]
        job = await imports.start_import(
            info.context.user,
            file_name=str(getattr(upload, "filename", None) or "upload"),
            upload=upload,
            max_bytes=info.context.limits.max_upload_bytes,
            mode=input.mode,
            match_on=input.match_on,
            mapping=mapping,
            dry_run=input.dry_run,
        )
        return import_job(job)

    @permission_field(
        IMPORT_ACTION,
        description="Undo a completed import: delete the leads it created and restore the "
        "fields it updated (from their timelines). Errors: NOT_FOUND, CONFLICT (not completed, "
        "a dry run, already reverted, or leads changed since by someone else: "
        "`extensions.leadIds` lists them and nothing is written).",
    )
    async def revert_import(self, info: Info, id: JobIdArgument) -> ImportJob:
        return import_job(await imports.revert_import(info.context.user, str(id)))


@strawberry.type
class ImportSubscription:
    @permission_subscription(
        IMPORT_ACTION,
        graphql_type=ImportJob,
        description="An import job now and after every batch, until it completes or fails.",
    )
    async def import_progress(self, info: Info, id: JobIdArgument) -> AsyncGenerator[ImportJob]:
        async for job in imports.watch_job(info.context.user, str(id)):
            yield import_job(job)
