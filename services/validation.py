"""Input checks shared by every door: the catalog's rules as pydantic constraints.

A rule (`models.fields.Text`, `Number`, `Choice`, `ObjectIdText`) becomes an `Annotated`
pydantic type; a set of rules becomes a pydantic model (built once, cached). Every bad field
of one input is reported together, as BAD_USER_INPUT with one `fieldErrors` entry each.
"""

import re
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

from beanie import PydanticObjectId
from bson.errors import InvalidId
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from strawberry.utils.str_converters import to_camel_case

from models.fields import Choice, FieldSpec, Format, Number, ObjectIdText, Text
from services.errors import BadUserInput, FieldError

EMAIL_PATTERN = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
PHONE_PATTERN = re.compile(r"^\+?[0-9 ().\-]{3,32}$")
# Control characters other than tab and line breaks: invisible, and NUL breaks many consumers.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

type Rules = Mapping[str, FieldSpec]


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", message)


def _blank_is_null(value: object) -> object:
    if isinstance(value, str):
        return value.strip() or None
    return value


def _no_control_characters(text: str) -> str:
    if CONTROL_CHARACTERS.search(text):
        raise _invalid("must not contain control characters")
    return text


def _format_check(text_format: Format) -> AfterValidator:
    def check(text: str) -> str:
        if text_format == "email" and not EMAIL_PATTERN.match(text):
            raise _invalid("must be an email address like name@example.com")
        if text_format == "email_list" and not all(
            EMAIL_PATTERN.match(address.strip()) for address in text.split(",")
        ):
            raise _invalid("must be one or more email addresses, separated by commas")
        if text_format == "phone" and not PHONE_PATTERN.match(text):
            raise _invalid("must be a phone number: digits, spaces, + ( ) . -")
        return text

    return AfterValidator(check)


def _not_null(value: object) -> object:
    if value is None:
        raise _invalid("must not be null")
    return value


def _required(value: object) -> object:
    if value is None:
        raise _invalid("must not be empty")
    return value


def _object_id(value: str) -> PydanticObjectId:
    try:
        return PydanticObjectId(value)
    except InvalidId:
        raise _invalid("is not a valid id") from None


def constrained(spec: FieldSpec) -> Any:
    """The pydantic type a value written to a field with this rule must have."""
    if isinstance(spec, Text):
        text: Any = Annotated[
            str,
            StringConstraints(max_length=spec.max_length),
            AfterValidator(_no_control_characters),
            *([_format_check(spec.format)] if spec.format else []),
        ]
        checks = [AfterValidator(_required)] if spec.required else []
        return Annotated[text | None, BeforeValidator(_blank_is_null), *checks]
    if isinstance(spec, Number):
        return Annotated[int | float, Field(ge=0, le=spec.maximum)] | None
    if isinstance(spec, ObjectIdText):
        return Annotated[str, AfterValidator(_object_id)] | None
    if isinstance(spec, Choice):
        return Annotated[Any, AfterValidator(_not_null)]
    return Any


@cache
def _model(rules: tuple[tuple[str, FieldSpec], ...]) -> type[BaseModel]:
    fields: dict[str, Any] = {name: (constrained(spec), None) for name, spec in rules}
    return create_model("Input", __config__=ConfigDict(arbitrary_types_allowed=True), **fields)


MESSAGES = {
    "string_too_long": "must be at most {max_length} characters",
    "greater_than_equal": "must not be negative",
    "less_than_equal": "must be at most {le:g}",
    "string_type": "must be text",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
}


def _message(error: ErrorDetails) -> str:
    template = MESSAGES.get(error["type"])
    return template.format(**error.get("ctx", {})) if template else error["msg"]


def clean(
    values: Mapping[str, object], rules: Rules, *, required: bool = False
) -> dict[str, object]:
    """Trim and check `values` (snake_case names) against `rules`; fields without a rule pass.

    With `required`, a required field that is left out is an error too (a whole new record).
    """
    given = dict(values)
    if required:
        given.update(
            {
                name: None
                for name, spec in rules.items()
                if isinstance(spec, Text) and spec.required and name not in given
            }
        )
    checked = {name: value for name, value in given.items() if name in rules}
    model = _model(tuple((name, rules[name]) for name in sorted(checked)))
    try:
        valid = model.model_validate(checked)
    except ValidationError as error:
        raise BadUserInput(
            [
                FieldError(to_camel_case(str(detail["loc"][0])), _message(detail))
                for detail in error.errors()
            ]
        ) from None
    return {name: getattr(valid, name) if name in rules else value for name, value in given.items()}


def object_id(value: str, field: str = "id") -> PydanticObjectId:
    """A client-given document id; BAD_USER_INPUT unless it is 24 hex digits."""
    parsed = clean({field: value}, {field: ObjectIdText()})[field]
    assert isinstance(parsed, PydanticObjectId)
    return parsed
