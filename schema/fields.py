"""GraphQL fields made from the lead field catalog (models/fields.py), never written by hand.

`catalog_fields` adds a model's catalog fields to an output type; `create_input_fields` and
`update_input_fields` add the writable ones to an input, typed, defaulted and described from
their rules. Each is a class decorator applied under `@strawberry.type` / `@strawberry.input`.
GraphQL names are the Python names in camelCase (Strawberry's rule).
"""

import inspect
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLObjectType, GraphQLSchema
from pydantic import BaseModel
from strawberry.utils.str_converters import to_camel_case

from models.fields import (
    WRITABLE,
    Choice,
    FieldSpec,
    LeadFields,
    Number,
    Text,
    default_of,
    specs,
    stored_name,
)


def _with_fields[T](cls: type[T], fields: dict[str, tuple[Any, Any]]) -> type[T]:
    """`cls` with `fields` ({name: (annotation, strawberry.field)}) after its own."""
    annotations = inspect.get_annotations(cls)
    for name, (annotation, field) in fields.items():
        annotations[name] = annotation
        setattr(cls, name, field)
    cls.__annotations__ = annotations
    return cls


def catalog_fields[T](
    model: type[BaseModel],
    names: Iterable[str] | None = None,
    *,
    describe: Callable[[str], str] = lambda description: description,
) -> Callable[[type[T]], type[T]]:
    """Output fields for `model`'s catalog fields (all of them, or `names`)."""
    chosen = list(names) if names is not None else list(specs(model))

    def add(cls: type[T]) -> type[T]:
        fields = {}
        for name in chosen:
            info = model.model_fields[name]
            description = describe(info.description or "")
            fields[name] = (info.annotation, strawberry.field(description=description))
        return _with_fields(cls, fields)

    return add


def _limits(spec: FieldSpec) -> str:
    """A rule in words, as an input field's description states it."""
    if isinstance(spec, Text):
        shape = {
            "email": "An address like name@example.com, at most",
            "email_list": "Comma-separated addresses, at most",
            "phone": "Digits, spaces and + ( ) . - only; at most",
        }.get(spec.format or "", "At most")
        return f"{shape} {spec.max_length} characters."
    if isinstance(spec, Number):
        maximum = f", at most {spec.maximum:g}" if spec.maximum is not None else ""
        return f"Must not be negative{maximum}."
    return ""


def _default_note(model: type[BaseModel], name: str, spec: FieldSpec) -> str:
    default = default_of(model, name)
    if isinstance(default, Enum):
        return f"Defaults to {default.name}."
    return spec.default_hint


def _rule_on_create(model: type[BaseModel], name: str, spec: FieldSpec) -> str:
    """What a new record's value must be, and what it is when left out."""
    limits = _limits(spec)
    if _required(spec):
        limits = "Required; " + limits[0].lower() + limits[1:]
    return " ".join(word for word in (limits, _default_note(model, name, spec)) if word)


def create_input_fields[T](model: type[BaseModel]) -> Callable[[type[T]], type[T]]:
    """Input fields for a new record: required ones first, the others defaulted."""

    def add(cls: type[T]) -> type[T]:
        writable = specs(model, writable=True)
        required = [name for name, spec in writable.items() if _required(spec)]
        fields = {}
        for name in [*required, *(name for name in writable if name not in required)]:
            spec = writable[name]
            info = model.model_fields[name]
            description = " ".join(
                word for word in (info.description, _rule_on_create(model, name, spec)) if word
            )
            field = (
                strawberry.field(description=description)
                if _required(spec)
                else strawberry.field(default=default_of(model, name), description=description)
            )
            fields[name] = (info.annotation, field)
        return _with_fields(cls, fields)

    return add


def update_input_fields[T](model: type[BaseModel]) -> Callable[[type[T]], type[T]]:
    """Input fields for a partial update: each optional, omitted ones left as they are."""

    def add(cls: type[T]) -> type[T]:
        fields = {}
        for name, spec in specs(model, writable=True).items():
            info = model.model_fields[name]
            limits = _limits(spec)
            if _required(spec):
                limits = "Cannot be cleared; " + limits[0].lower() + limits[1:]
            elif isinstance(spec, Choice):
                limits = "Cannot be null."
            annotation = info.annotation | None  # type: ignore[operator]
            description = " ".join(word for word in (info.description, limits) if word)
            fields[name] = (
                annotation,
                strawberry.field(default=strawberry.UNSET, description=description),
            )
        return _with_fields(cls, fields)

    return add


def _required(spec: FieldSpec) -> bool:
    return isinstance(spec, Text) and spec.required


def catalog_markdown(graphql_schema: GraphQLSchema) -> str:
    """docs/lead-fields.md: the catalog as a table, for people (written by `crm export-schema`)."""
    lead_type = graphql_schema.get_type("Lead")
    assert isinstance(lead_type, GraphQLObjectType)
    rows = [
        "# Lead fields",
        "",
        "Generated from the lead field catalog (`models/fields.py`) by `crm export-schema`; a "
        "test fails when it is out of date. *Import headers* are the column names an import "
        "maps to the field (any case; spaces, `_` and `-` ignored).",
        "",
        "| field | stored as | type | clients may write | import headers | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, spec in specs(LeadFields).items():
        graphql_name = to_camel_case(name)
        writable = isinstance(spec, WRITABLE)
        rule = _rule_on_create(LeadFields, name, spec)
        headers = ", ".join(
            dict.fromkeys((graphql_name, stored_name(LeadFields, name), *spec.import_aliases))
        )
        cells = (
            f"`{graphql_name}`",
            f"`{stored_name(LeadFields, name)}`",
            f"`{lead_type.fields[graphql_name].type}`",
            (rule or "yes") if writable else "no (set by the server)",
            headers,
            LeadFields.model_fields[name].description or "",
        )
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
