"""Import jobs with real files generated here, uploaded as the GraphQL multipart request spec
says, run by the app's own runner: the messy file's report in two encodings,
matching and modes, the UPSERT re-run that changes nothing, dry run, a crash in the middle of
a job and its resume, revert, and files the import must refuse."""

import asyncio
import csv
import io
import json
import os
import subprocess
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from starlette.applications import Starlette

from models.import_job import ImportJobDocument, ImportStatus
from models.lead import LeadDocument
from services.imports import ImportRunner
from tests.conftest import GraphQLClient, mint
from tests.live_server import CRM, ROOT

START = """
mutation Start($input: StartImportInput!) {
  startImport(input: $input) { id status fileName mode dryRun }
}"""
JOB = """
query Job($id: ID!) {
  importJob(id: $id) {
    id status totalRows processedRows created updated unchanged failed unknownColumns error
    dryRun columns { column field }
    errors(first: 100) { totalCount nodes { row column field code message value } }
  }
}"""
REVERT = "mutation Revert($id: ID!) { revertImport(id: $id) { id status } }"
LEAD = """query Lead($id: String!) {
  lead(leadId: $id) { leadId firstName lastName email mobile organization annualRevenue status
                      updatedAt activities { type description field oldValue newValue } } }"""
TERMINAL = ("COMPLETED", "FAILED", "REVERTED")


async def upload(
    http: httpx.AsyncClient,
    token: str,
    content: bytes,
    name: str,
    *,
    preflight: bool = True,
    **options: Any,
) -> httpx.Response:
    """startImport as the GraphQL multipart request spec (and Apollo's upload link) sends it."""
    operations = {"query": START, "variables": {"input": {"file": None, **options}}}
    headers = {"authorization": f"Bearer {token}"}
    if preflight:
        headers["apollo-require-preflight"] = "true"
    return await http.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": (name, content, "application/octet-stream")},
        headers=headers,
    )


async def run_import(
    http: httpx.AsyncClient, gql: GraphQLClient, content: bytes, name: str, **options: Any
) -> dict[str, Any]:
    """Upload, then wait for the job to finish; its report."""
    response = await upload(http, gql.token, content, name, **options)
    body = response.json()
    assert "errors" not in body, body
    return await finished(gql, body["data"]["startImport"]["id"])


async def finished(gql: GraphQLClient, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job: dict[str, Any] = (await gql(JOB, {"id": job_id}))["importJob"]
        if job["status"] in TERMINAL:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"import {job_id} did not finish: {job}")


def csv_bytes(rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def lead_count() -> int:
    return await LeadDocument.get_pymongo_collection().count_documents({})


# ---- the messy file --------------------------------------------------------------------------

MESSY_HEADER = [
    "First Name",  # catalog alias
    "lastName",  # GraphQL name
    "E-mail",
    "Company",
    "Phone",
    "Annual Revenue",
    "Lead Status",
    "Favourite Colour",  # no such field: reported once
]
MESSY_ROWS = [
    [
        "José",
        "Müller",
        "jose@example.com",
        "Café Ñandú",
        "+49 30 1234567",
        "1000",
        "Qualified",
        "x",
    ],
    ["", "Nobody", "nobody@example.com", "", "", "", "", "x"],  # 3: no first name
    ["Ann", "Bad", "not-an-email", "", "", "", "", ""],  # 4: bad email
    ["Neg", "Rev", "neg@example.com", "", "", "-5", "", ""],  # 5: negative revenue
    ["Txt", "Rev", "txt@example.com", "", "", "lots", "", ""],  # 6: not a number
    ["Sta", "Tus", "status@example.com", "", "", "", "Hot", ""],  # 7: unknown status
    ["Pho", "Ne", "phone@example.com", "", "call me", "", "", ""],  # 8: not a phone number
    ["L" * 101, "Long", "long@example.com", "", "", "", "", ""],  # 9: first name too long
    ["", "", "", "", "", "", "", ""],  # blank: skipped, not counted
    ["Zoë", "Ærø", "zoe@example.com", "Ørsted", "", "2.5e3", "new", ""],  # 11: fine
]
MESSY_ERRORS = [
    (3, "First Name", "firstName", "must not be empty", ""),
    (4, "E-mail", "email", "must be an email address like name@example.com", "not-an-email"),
    (5, "Annual Revenue", "annualRevenue", "must not be negative", "-5"),
    (6, "Annual Revenue", "annualRevenue", "must be a number", "lots"),
    (7, "Lead Status", "status", None, "Hot"),
    (8, "Phone", "mobile", "must be a phone number: digits, spaces, + ( ) . -", "call me"),
    (9, "First Name", "firstName", "must be at most 100 characters", "L" * 101),
]


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8-sig", ","), ("cp1252", ";"), ("utf-16", "\t")],
    ids=["utf8-bom", "cp1252", "utf16"],
)
async def test_the_messy_file_is_reported_row_by_row_and_the_rest_imported(
    http: httpx.AsyncClient, gql: GraphQLClient, encoding: str, delimiter: str
) -> None:
    content = csv_bytes([MESSY_HEADER, *MESSY_ROWS], encoding=encoding, delimiter=delimiter)
    job = await run_import(http, gql, content, "messy.csv")

    assert job["status"] == "COMPLETED"
    assert (job["totalRows"], job["processedRows"]) == (9, 9)
    assert (job["created"], job["failed"], job["updated"], job["unchanged"]) == (2, 7, 0, 0)
    assert job["unknownColumns"] == ["Favourite Colour"]
    errors = job["errors"]["nodes"]
    assert job["errors"]["totalCount"] == 7
    assert [(e["row"], e["column"], e["field"], e["value"]) for e in errors] == [
        (row, column, field, value) for row, column, field, _, value in MESSY_ERRORS
    ]
    for error, (*_, message, _value) in zip(errors, MESSY_ERRORS, strict=True):
        assert error["code"] == "BAD_USER_INPUT"
        if message:
            assert error["message"] == message
    assert "must be one of New" in errors[4]["message"]

    # The same text in either encoding, the same validation as createLead.
    rows = await LeadDocument.find_all().sort("leadNumber").to_list()
    assert [(lead.first_name, lead.last_name, lead.organization) for lead in rows] == [
        ("José", "Müller", "Café Ñandú"),
        ("Zoë", "Ærø", "Ørsted"),
    ]
    assert rows[0].status.value == "Qualified"
    assert rows[0].annual_revenue == 1000
    assert rows[1].annual_revenue == 2500
    # Every created lead's timeline names the job and the row.
    assert rows[0].activities[0].description == f"Lead created by import {job['id']} (row 2)"

    # The failed rows as uploaded, plus `error`: ready to fix and upload again.
    response = await http.get(
        f"/imports/{job['id']}/errors.csv", headers={"authorization": f"Bearer {gql.token}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    failed = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert failed[0] == [*MESSY_HEADER, "error"]
    assert [row[:-1] for row in failed[1:]] == [
        [("'-5" if cell == "-5" else cell) for cell in MESSY_ROWS[row - 2]]
        for row, *_ in MESSY_ERRORS
    ]
    assert failed[1][-1] == "First Name: must not be empty"

    # Fixed and uploaded again, the error column is reported once and the rows go in.
    fixed = [row[:-1] for row in failed]
    fixed[1][0] = "Fixed"
    again = await run_import(http, gql, csv_bytes(fixed), "errors.csv")
    assert (again["created"], again["failed"]) == (1, 6)


# ---- modes and matching ----------------------------------------------------------------------

PEOPLE = [
    ["firstName", "lastName", "email", "mobile", "organization", "annualRevenue"],
    ["John", "Doe", "john.doe@gmail.com", "+1 (415) 555-0100", "Acme", "100"],
    ["Jane", "Roe", "jane@example.com", "415.555.0101", "Beta", ""],
    ["Max", "Moe", "max@example.com", "", "Gamma", "3"],
]


async def test_upsert_rerun_of_the_same_file_changes_nothing(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    first = await run_import(http, gql, csv_bytes(PEOPLE), "people.csv")
    assert first["created"] == 3
    before = {lead.lead_id: lead for lead in await LeadDocument.find_all().to_list()}

    again = await run_import(
        http, gql, csv_bytes(PEOPLE), "people.csv", mode="UPSERT", matchOn=["EMAIL"]
    )
    assert (again["unchanged"], again["created"], again["updated"], again["failed"]) == (
        3,
        0,
        0,
        0,
    )
    after = {lead.lead_id: lead for lead in await LeadDocument.find_all().to_list()}
    assert after.keys() == before.keys()
    for lead_id, lead in after.items():
        assert lead.updated_at == before[lead_id].updated_at
        assert len(lead.activities) == 1


async def test_matching_normalizes_email_and_phone(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await run_import(http, gql, csv_bytes(PEOPLE), "people.csv")
    changes = [
        ["E-mail", "Phone", "Job Title"],
        [" John.Doe+crm@GMAIL.com ", "", "CEO"],  # case, spaces, +tag and Gmail's dots
        ["", "+1 415-555-0101", "CTO"],  # by phone: formats differ, E.164 agrees
        ["nobody@example.com", "", "Intern"],  # matches no one
        ["", "", "Ghost"],  # nothing to match by
    ]
    job = await run_import(
        http, gql, csv_bytes(changes), "titles.csv", mode="UPDATE", matchOn=["EMAIL", "PHONE"]
    )
    assert (job["updated"], job["failed"], job["created"]) == (2, 2, 0)
    assert [(e["row"], e["code"]) for e in job["errors"]["nodes"]] == [
        (4, "NOT_FOUND"),
        (5, "NOT_FOUND"),
    ]
    titles = {lead.first_name: lead.job_title for lead in await LeadDocument.find_all().to_list()}
    assert titles == {"John": "CEO", "Jane": "CTO", "Max": None}
    john = await LeadDocument.find_one({"firstName": "John"})
    assert john is not None
    assert john.email == "john.doe@gmail.com"  # a blank cell changes nothing
    entry = john.activities[-1]
    assert entry.field == "jobTitle"
    assert entry.description == f"jobTitle changed from empty to CEO by import {job['id']} (row 2)"


async def test_upsert_creates_updates_and_reports_ambiguous_matches(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await run_import(http, gql, csv_bytes(PEOPLE), "people.csv")
    twins = csv_bytes([["firstName", "email"], ["Twin", "twin@example.com"]] * 1)
    await run_import(http, gql, twins, "a.csv")
    await run_import(http, gql, twins, "b.csv")
    rows = [
        ["leadId", "firstName", "email", "organization"],
        ["LEAD-002", "Jane", "", "Beta Two"],  # by lead id
        ["", "Newbie", "new@example.com", "Delta"],  # no match: created
        ["", "New Again", "NEW@example.com", "Delta 2"],  # matches the row before it
        ["", "Twin", "twin@example.com", ""],  # two leads have this email
    ]
    job = await run_import(
        http, gql, csv_bytes(rows), "upsert.csv", mode="UPSERT", matchOn=["LEAD_ID", "EMAIL"]
    )
    assert (job["created"], job["updated"], job["failed"]) == (1, 2, 1)
    assert job["errors"]["nodes"][0]["code"] == "AMBIGUOUS_MATCH"
    assert job["errors"]["nodes"][0]["row"] == 5
    jane = await LeadDocument.find_one({"lead_id": "LEAD-002"})
    assert jane is not None
    assert jane.organization == "Beta Two"
    newbie = await LeadDocument.find_one({"email": "new@example.com"})
    assert newbie is not None
    assert (newbie.first_name, newbie.organization) == ("New Again", "Delta 2")


async def test_explicit_mapping_and_xlsx(http: httpx.AsyncClient, gql: GraphQLClient) -> None:
    content = xlsx_bytes(
        [["Given", "Mail", "Revenue USD", "Employees"], ["Xavier", "x@example.com", 1500, "10-50"]]
    )
    mapping = [
        {"column": "Given", "field": "firstName"},
        {"column": "Revenue USD", "field": "annualRevenue"},
    ]
    job = await run_import(http, gql, content, "crm.xlsx", mapping=mapping)
    assert (job["status"], job["created"], job["failed"]) == ("COMPLETED", 1, 0)
    assert job["unknownColumns"] == []  # "Mail" and "Employees" are catalog aliases
    lead = await LeadDocument.find_one({"firstName": "Xavier"})
    assert lead is not None
    assert (lead.email, lead.annual_revenue, lead.no_of_employees) == (
        "x@example.com",
        1500,
        "10-50",
    )

    bad = [{"column": "Given", "field": "createdAt"}]  # read-only: not importable
    body = (await upload(http, gql.token, content, "crm.xlsx", mapping=bad)).json()
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "fieldErrors": [
            {"field": "mapping.0.field", "message": "'createdAt' is not an importable field"}
        ],
    }


async def test_dry_run_reports_the_same_and_writes_no_lead(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    content = csv_bytes([MESSY_HEADER, *MESSY_ROWS])
    dry = await run_import(http, gql, content, "messy.csv", dryRun=True, mode="UPSERT")
    assert dry["dryRun"] is True
    assert await lead_count() == 0
    real = await run_import(http, gql, content, "messy.csv", mode="UPSERT")
    keys = ("totalRows", "created", "updated", "unchanged", "failed", "errors", "unknownColumns")
    assert {key: dry[key] for key in keys} == {key: real[key] for key in keys}
    assert await lead_count() == 2
    # Dry run is simulated row by row: rows that match earlier rows match as in a real run.
    repeat = csv_bytes([PEOPLE[0], PEOPLE[1], PEOPLE[1]])
    dry = await run_import(
        http, gql, repeat, "p.csv", dryRun=True, mode="UPSERT", matchOn=["EMAIL"]
    )
    assert (dry["created"], dry["unchanged"]) == (1, 1)


# ---- durable jobs: a crash in the middle, and the resume -------------------------------------


class Crash(BaseException):
    """Stops a job as a killed process would: not an Exception, so nothing handles it."""


@pytest.fixture
async def paused_runner(app: Starlette) -> AsyncIterator[ImportRunner]:
    """The app's runner stopped (as if the server were down); started again afterwards."""
    runner: ImportRunner = app.state.imports
    await runner.stop()
    yield runner
    runner.start()


async def test_a_job_survives_a_crash_and_resumes_without_doubling_a_row(
    http: httpx.AsyncClient, gql: GraphQLClient, paused_runner: ImportRunner
) -> None:
    rows = [["firstName", "email"]] + [[f"P{n}", f"p{n}@example.com"] for n in range(95)]
    rows[50][1] = "broken"  # one failing row, recorded in the ledger before the crash
    response = await upload(http, gql.token, csv_bytes(rows), "big.csv")
    job_id = response.json()["data"]["startImport"]["id"]
    limits = replace(paused_runner.limits, batch_size=20, lease_seconds=60)

    # The first server dies after writing the third batch, before its checkpoint.
    def crash(done: int) -> None:
        if done >= 60:
            raise Crash

    first = ImportRunner(limits)
    first.after_writes = crash
    job = await first.claim()
    assert job is not None
    with pytest.raises(Crash):
        await first.run(job)
    stored = await ImportJobDocument.get(job.id)
    assert stored is not None
    assert (stored.status, stored.processed_rows, stored.created) == (ImportStatus.RUNNING, 40, 40)
    assert await lead_count() == 59  # the third batch's rows are written, not checkpointed

    # Its lease holds the job until it runs out: no other instance runs it twice at once.
    second = ImportRunner(limits)
    assert await second.claim() is None
    await ImportJobDocument.get_pymongo_collection().update_one(
        {"_id": job.id}, {"$set": {"leaseUntil": None}}
    )
    job = await second.claim()
    assert job is not None
    await second.run(job)

    report = await finished(gql, job_id)
    assert (report["status"], report["processedRows"]) == ("COMPLETED", 95)
    assert (report["created"], report["failed"]) == (94, 1)
    assert [e["row"] for e in report["errors"]["nodes"]] == [51]
    assert await lead_count() == 94
    names = await LeadDocument.get_pymongo_collection().distinct("firstName")
    assert len(names) == 94  # no row twice


# ---- revert ----------------------------------------------------------------------------------


async def test_revert_removes_what_was_created_and_restores_what_was_updated(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await run_import(http, gql, csv_bytes(PEOPLE), "people.csv")
    rows = [
        ["email", "organization", "annualRevenue", "status", "firstName"],
        ["john.doe@gmail.com", "Acme Two", "200", "Qualified", "John"],
        ["new@example.com", "New Co", "", "", "Newbie"],
    ]
    job = await run_import(http, gql, csv_bytes(rows), "u.csv", mode="UPSERT", matchOn=["EMAIL"])
    assert (job["created"], job["updated"]) == (1, 1)

    reverted = await gql(REVERT, {"id": job["id"]})
    assert reverted["revertImport"]["status"] == "REVERTED"
    assert await LeadDocument.find_one({"email": "new@example.com"}) is None
    john = await LeadDocument.find_one({"email": "john.doe@gmail.com"})
    assert john is not None
    assert (john.organization, john.annual_revenue, john.status.value) == ("Acme", 100, "New")
    assert "revert of import" in john.activities[-1].description

    errors = await gql.errors(REVERT, {"id": job["id"]})
    assert errors[0]["extensions"]["code"] == "CONFLICT"  # reverted already


async def test_revert_refuses_when_someone_changed_a_lead_since(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    job = await run_import(http, gql, csv_bytes(PEOPLE), "people.csv")
    await gql(
        'mutation { updateLead(leadId: "LEAD-002", input: {jobTitle: "Boss"}) { lead { leadId } } }'
    )
    errors = await gql.errors(REVERT, {"id": job["id"]})
    assert errors[0]["extensions"]["code"] == "CONFLICT"
    assert errors[0]["extensions"]["leadIds"] == ["LEAD-002"]
    assert await lead_count() == 3  # nothing written
    status = (await gql(JOB, {"id": job["id"]}))["importJob"]["status"]
    assert status == "COMPLETED"


# ---- the multipart door ----------------------------------------------------------------------


async def test_uploads_need_a_preflight_header_and_the_admin_permission(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    content = csv_bytes(PEOPLE)
    response = await upload(http, gql.token, content, "p.csv", preflight=False)
    assert response.status_code == 400
    assert "Apollo-Require-Preflight" in response.json()["errors"][0]["message"]

    sales = mint(app, role="sales", sub="rep-1", name="Rep")
    body = (await upload(http, sales, content, "p.csv")).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await ImportJobDocument.find_all().count() == 0

    jobs = await gql("{ importJobs(first: 5) { nodes { id } pageInfo { hasNextPage } } }")
    assert jobs["importJobs"]["nodes"] == []


# ---- files it refuses, as a whole, before writing anything -----------------------------------


def zip_bomb() -> bytes:
    """An XLSX-shaped ZIP whose shared strings unpack to 200 MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            block = b"0" * (1024 * 1024)
            for _ in range(200):
                part.write(block)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("leads.csv", xlsx_bytes([["firstName"], ["A"]]), "is a ZIP archive"),
        ("leads.xlsx", b"firstName\nA\n", "named like an XLSX workbook but is not one"),
        ("bomb.xlsx", zip_bomb(), "zip bomb"),
        ("leads.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "Excel 97-2003"),
        ("leads.csv", b"\x00\x01\x02binary", "binary content"),
        (
            "mixed.csv",
            "firstName\nJosé\n".encode() + "Zoë\n".encode("cp1252"),
            "mixes text encodings: line 2 is UTF-8 but line 3 is not",
        ),
        ("noheader.csv", b"\n\n", "The file is empty"),
        ("nofield.csv", b"colour,size\nred,1\n", "No column of the file is a lead field"),
        (
            "widecell.csv",
            b"firstName\n" + b"x" * 40_000 + b"\n",
            "more than the limit of 32767",
        ),
    ],
    ids=[
        "xlsx-named-csv",
        "csv-named-xlsx",
        "zip-bomb",
        "xls",
        "binary",
        "mixed-encodings",
        "empty",
        "no-lead-field",
        "huge-cell",
    ],
)
async def test_hostile_files_fail_the_job_with_a_clear_error_and_write_nothing(
    http: httpx.AsyncClient, gql: GraphQLClient, name: str, content: bytes, message: str
) -> None:
    job = await run_import(http, gql, content, name)
    assert job["status"] == "FAILED"
    assert message in job["error"]
    assert await lead_count() == 0


async def test_the_row_limit_fails_the_job_before_any_write(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    runner: ImportRunner = app.state.imports
    original = runner.limits
    runner.limits = replace(original, max_rows=5)
    try:
        rows = [["firstName"]] + [[f"R{n}"] for n in range(6)]
        job = await run_import(http, gql, csv_bytes(rows), "six.csv")
    finally:
        runner.limits = original
    assert job["status"] == "FAILED"
    assert "more than 5 rows" in job["error"]
    assert await lead_count() == 0


# ---- export, and the round trip --------------------------------------------------------------

CREATE = """mutation($input: CreateLeadInput!) { createLead(input: $input) { lead { leadId } } }"""
TRICKY = [
    {
        "firstName": "Ada",
        "lastName": 'Love, "the first"\nprogrammer',
        "email": "ada@example.com",
        "mobile": "+44 20 7946 0958",
        "organization": '=HYPERLINK("http://evil.example")',
        "annualRevenue": 1234.5,
        "status": "QUALIFIED",
        "website": "@home",
    },
    {"firstName": "Bob", "jobTitle": "-1+2", "noOfEmployees": "10-50", "annualRevenue": 0},
    {"firstName": "Cy", "source": "Web", "industry": "Café"},
]


async def export(http: httpx.AsyncClient, token: str, path: str, **params: str) -> httpx.Response:
    return await http.get(path, params=params, headers={"authorization": f"Bearer {token}"})


EXPORT_COLUMNS = [
    "leadId", "salutation", "firstName", "lastName", "email", "mobile", "organization",
    "website", "jobTitle", "industry", "source", "status", "gender", "noOfEmployees",
    "annualRevenue", "territory", "leadOwner", "leadOwnerId", "createdAt", "createdBy",
    "updatedAt", "convertedToDeal",
]  # fmt: skip


async def test_export_escapes_formulas_and_imports_back_unchanged(
    http: httpx.AsyncClient, gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services import exports

    monkeypatch.setattr(exports, "BATCH", 2)  # three leads: more than one batch
    for values in TRICKY:
        await gql(CREATE, {"input": values})
    before = {lead.lead_id: lead for lead in await LeadDocument.find_all().to_list()}

    response = await export(http, gql.token, "/export/leads.csv", orderBy='{"field": "LEAD_ID"}')
    assert response.status_code == 200
    assert 'filename="leads-' in response.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(response.text))
    rows = list(reader)
    # The lead's GraphQL fields, none of the stored-only ones (search keys, import bookkeeping).
    assert reader.fieldnames == EXPORT_COLUMNS
    assert [row["leadId"] for row in rows] == ["LEAD-001", "LEAD-002", "LEAD-003"]
    created = before["LEAD-001"].created_at
    assert rows[0]["createdAt"] == f"{created:%Y-%m-%dT%H:%M:%S}.{created.microsecond // 1000:03d}Z"
    assert rows[0]["convertedToDeal"] == "false"
    assert rows[0]["annualRevenue"] == str(before["LEAD-001"].annual_revenue)
    assert rows[0]["salutation"] == ""
    assert rows[0]["organization"] == '\'=HYPERLINK("http://evil.example")'
    assert rows[0]["mobile"] == "'+44 20 7946 0958"
    assert rows[0]["website"] == "'@home"
    assert rows[1]["jobTitle"] == "'-1+2"
    assert rows[0]["lastName"] == 'Love, "the first"\nprogrammer'

    # CSV and XLSX both come back as they went out: UPSERT by lead id changes nothing.
    xlsx = await export(http, gql.token, "/export/leads.xlsx")
    assert xlsx.status_code == 200
    for content, name in ((response.content, "leads.csv"), (xlsx.content, "leads.xlsx")):
        job = await run_import(http, gql, content, name, mode="UPSERT", matchOn=["LEAD_ID"])
        assert (job["unchanged"], job["updated"], job["created"], job["failed"]) == (3, 0, 0, 0)
        assert job["unknownColumns"] == []
    after = {lead.lead_id: lead for lead in await LeadDocument.find_all().to_list()}
    assert after == before

    # Into an empty database, the same file makes the same leads (new ids).
    await LeadDocument.get_pymongo_collection().delete_many({})
    job = await run_import(http, gql, response.content, "leads.csv")
    assert job["created"] == 3
    fields = (
        "first_name",
        "last_name",
        "email",
        "mobile",
        "organization",
        "annual_revenue",
        "status",
        "website",
        "job_title",
        "no_of_employees",
        "source",
        "industry",
    )
    again = sorted(await LeadDocument.find_all().to_list(), key=lambda lead: lead.first_name)
    earlier = sorted(before.values(), key=lambda lead: lead.first_name)
    assert [[getattr(lead, f) for f in fields] for lead in again] == [
        [getattr(lead, f) for f in fields] for lead in earlier
    ]


async def test_export_filters_orders_and_picks_fields(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    for values in TRICKY:
        await gql(CREATE, {"input": values})
    response = await export(
        http,
        gql.token,
        "/export/leads.jsonl",
        filter='{"status": ["NEW"]}',
        orderBy='{"field": "LEAD_ID", "direction": "DESC"}',
        fields="leadId,firstName,createdAt",
    )
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [list(line) for line in lines] == [["leadId", "firstName", "createdAt"]] * 2
    assert [line["leadId"] for line in lines] == ["LEAD-003", "LEAD-002"]
    assert lines[0]["createdAt"].endswith("Z")

    bad = await export(http, gql.token, "/export/leads.csv", fields="leadId,secret")
    assert bad.status_code == 422
    assert bad.json()["code"] == "BAD_USER_INPUT"
    assert (await http.get("/export/leads.csv")).status_code == 401
    viewer = mint(app, role="viewer", sub="v-1")
    forbidden = await export(http, viewer, "/export/leads.csv")
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "FORBIDDEN")
    unknown = await export(http, gql.token, "/imports/000000000000000000000000/errors.csv")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NOT_FOUND")


async def test_an_export_stopped_early_releases_its_cursor(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services import exports
    from services.leads import LeadOrderField
    from services.pagination import Order
    from services.viewer import Viewer

    monkeypatch.setattr(exports, "BATCH", 1)  # a batch read ahead while the first is written
    for values in TRICKY:
        await gql(CREATE, {"input": values})
    admin = Viewer(id="admin-1", name="Admin", email=None, role="admin")
    order = Order(stored_field=LeadOrderField.LEAD_ID.value, descending=False)

    async def body() -> exports.Body:
        fields = exports.columns(["leadId"])
        return await exports.export_leads(admin, "csv", filters={}, order=order, fields=fields)

    stopped = await body()
    assert [await anext(stopped), await anext(stopped)] == [b"leadId\r\n", b"LEAD-001\r\n"]
    await stopped.aclose()  # a client that went away: the read-ahead and the cursor are ended
    assert b"".join([piece async for piece in await body()]).split() == [
        b"leadId",
        b"LEAD-001",
        b"LEAD-002",
        b"LEAD-003",
    ]


# ---- importProgress --------------------------------------------------------------------------


async def test_import_progress_streams_the_job_until_it_completes(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette, paused_runner: ImportRunner
) -> None:
    from tests.test_websocket import Closed, Socket

    rows = [["firstName"]] + [[f"S{n}"] for n in range(45)]
    response = await upload(http, gql.token, csv_bytes(rows), "s.csv")
    job_id = response.json()["data"]["startImport"]["id"]
    socket = Socket(app)
    await socket.connect(gql.token)
    await socket.subscribe(
        "1",
        "subscription($id: ID!) { importProgress(id: $id) { status processedRows created } }",
        {"id": job_id},
    )
    runner = ImportRunner(replace(paused_runner.limits, batch_size=20))
    job = await runner.claim()
    assert job is not None
    running = asyncio.ensure_future(runner.run(job))
    seen = []
    while True:
        message = await asyncio.wait_for(socket.receive(), 10)
        assert not isinstance(message, Closed), message
        if message["type"] == "complete":
            break
        assert message["type"] == "next", message
        seen.append(message["payload"]["data"]["importProgress"])
    await running
    await socket.close()
    assert seen[0]["status"] in ("QUEUED", "RUNNING")
    assert seen[-1] == {"status": "COMPLETED", "processedRows": 45, "created": 45}
    progress = [event["processedRows"] for event in seen]
    assert progress == sorted(progress)
    assert len(seen) >= 3  # it moved, batch by batch, not just start and end


# ---- the command line ------------------------------------------------------------------------


def test_crm_import_and_export_from_the_command_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CRM_DATA_DIR": str(tmp_path / "data"),
        "CRM_DB_NAME": f"crm_cli_{tmp_path.name}"[:60],
        "CRM_LOG_LEVEL": "WARNING",
    }
    source = tmp_path / "leads.csv"
    source.write_bytes(
        csv_bytes(
            [
                ["First Name", "E-mail", "Company"],
                ["Ivy", "ivy@example.com", "=cmd|' /C calc'!A0"],
                ["", "nameless@example.com", "X"],
                ["Jon", "jon@example.com", "Y"],
            ]
        )
    )

    def crm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CRM, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    first = crm("import", str(source))
    assert first.returncode == 1, first.stderr  # a row failed
    assert "COMPLETED: 3 rows, 2 created, 0 updated, 0 unchanged, 1 failed" in first.stdout
    assert "row 3 First Name: must not be empty" in first.stdout
    again = crm("import", str(source), "--mode", "UPSERT", "--match", "EMAIL", "--dry-run")
    assert "(dry run): 3 rows, 0 created, 0 updated, 2 unchanged, 1 failed" in again.stdout

    out = crm("export", "--format", "csv", "--fields", "leadId,firstName,organization")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "leadId,firstName,organization",
        "LEAD-002,Jon,Y",
        "LEAD-001,Ivy,'=cmd|' /C calc'!A0",
    ]


# ---- the upload size limit -------------------------------------------------------------------


async def test_multipart_bodies_have_their_own_size_limit() -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse

    from api.graphql import negotiate_media_type
    from api.limits import RequestGuard
    from config import Limits

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        body = await Request(scope, receive).body()
        await PlainTextResponse(str(len(body)))(scope, receive, send)

    limits = Limits(max_body_bytes=1000, max_upload_bytes=10_000)
    guard = RequestGuard(endpoint, limits, negotiate_media_type, uploads=True)
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        upload_headers = {"content-type": "multipart/form-data; boundary=x"}
        small = await client.post("/graphql", content=b"x" * 5000, headers=upload_headers)
        assert (small.status_code, small.text) == (200, "5000")
        big = await client.post("/graphql", content=b"x" * 10_001, headers=upload_headers)
        assert big.status_code == 413
        assert "CRM_MAX_UPLOAD_BYTES" in big.json()["errors"][0]["message"]
        json_body = await client.post("/graphql", content=b"x" * 5000, headers={})
        assert json_body.status_code == 413
        assert "CRM_MAX_BODY_BYTES" in json_body.json()["errors"][0]["message"]
    # Other doors (REST) keep the 1 MiB rule for multipart bodies too.
    rest = RequestGuard(endpoint, limits, negotiate_media_type)
    transport = httpx.ASGITransport(app=rest)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        refused = await client.post("/x", content=b"x" * 5000, headers=upload_headers)
        assert refused.status_code == 413


def test_normalized_keys() -> None:
    from services.normalize import email_key, phone_key

    assert email_key(" John.Doe+CRM@GoogleMail.com ") == "johndoe@gmail.com"
    assert email_key("Ann+news@Outlook.com") == "ann@outlook.com"
    assert email_key("a.b+tag@example.com") == "a.b+tag@example.com"  # other domains: as is
    assert email_key("no-at-sign") is None
    assert email_key("  ") is None
    assert phone_key("(415) 555-0100") == phone_key("+1 415.555.0100") == "+14155550100"
    assert phone_key("+44 20 7946 0958") == "+442079460958"
    assert phone_key("ext. 12") == "12"
    assert phone_key("") is None
