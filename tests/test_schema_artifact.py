"""The schema as an artifact: `schema.graphql` matches the code, and everything is described."""

import difflib
import subprocess
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    is_introspection_type,
    is_specified_directive,
    is_specified_scalar_type,
)

from schema.fields import catalog_markdown
from schema.root import schema
from tests.live_server import CRM, ROOT

SCHEMA_FILE = ROOT / "schema.graphql"
LEAD_FIELDS_FILE = ROOT / "docs" / "lead-fields.md"
REGENERATE = "run `uv run crm export-schema` and commit schema.graphql"
MAX_DIFF_LINES = 60


def printed_schema() -> str:
    """What `crm export-schema` writes."""
    return schema.as_str() + "\n"


def short_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    lines = list(
        difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm="")
    )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more lines)"]
    return "\n".join(lines)


def test_committed_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.exists(), f"schema.graphql is missing: {REGENERATE}"
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    current = printed_schema()
    if committed != current:
        pytest.fail(
            f"schema.graphql differs from the code's schema: {REGENERATE}.\n"
            + short_diff(committed, current, "schema.graphql (committed)", "the code's schema"),
            pytrace=False,
        )


def test_committed_lead_fields_doc_matches_the_catalog() -> None:
    committed = LEAD_FIELDS_FILE.read_text(encoding="utf-8") if LEAD_FIELDS_FILE.exists() else ""
    current = catalog_markdown(schema._schema)
    if committed != current:
        pytest.fail(
            f"docs/lead-fields.md differs from models/fields.py: {REGENERATE} and "
            "docs/lead-fields.md.\n"
            + short_diff(committed, current, "docs/lead-fields.md (committed)", "the catalog"),
            pytrace=False,
        )


def undescribed() -> list[str]:
    """Every type, field, argument, input field and enum value without a description."""
    missing: list[str] = []

    def check(description: str | None, where: str) -> None:
        if not (description or "").strip():
            missing.append(where)

    graphql_schema = schema._schema
    for name, named_type in sorted(graphql_schema.type_map.items()):
        if is_introspection_type(named_type) or is_specified_scalar_type(named_type):
            continue
        check(named_type.description, f"type {name}")
        if isinstance(named_type, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named_type.fields.items():
                check(field.description, f"field {name}.{field_name}")
                for arg_name, arg in field.args.items():
                    check(arg.description, f"argument {name}.{field_name}({arg_name})")
        elif isinstance(named_type, GraphQLInputObjectType):
            for field_name, input_field in named_type.fields.items():
                check(input_field.description, f"input field {name}.{field_name}")
        elif isinstance(named_type, GraphQLEnumType):
            for value_name, value in named_type.values.items():
                check(value.description, f"enum value {name}.{value_name}")
    for directive in graphql_schema.directives:
        if not is_specified_directive(directive):
            check(directive.description, f"directive @{directive.name}")
            for arg_name, arg in directive.args.items():
                check(arg.description, f"argument @{directive.name}({arg_name})")
    return missing


def test_everything_in_the_schema_is_described() -> None:
    missing = undescribed()
    if missing:
        pytest.fail(
            f"{len(missing)} schema elements have no description (GraphiQL and codegen show "
            "them); add `description=` where each is defined in schema/:\n  "
            + "\n  ".join(missing),
            pytrace=False,
        )


def test_export_schema_to_stdout_prints_the_schema(tmp_path: Path) -> None:
    result = subprocess.run(
        [CRM, "export-schema", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if result.stdout != printed_schema():
        pytest.fail(
            "`crm export-schema -` printed another schema:\n"
            + short_diff(printed_schema(), result.stdout, "the code's schema", "stdout"),
            pytrace=False,
        )
