"""Input checks shared by every mutation: all bad fields are reported together."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from beanie import PydanticObjectId
from bson.errors import InvalidId
from strawberry.utils.str_converters import to_camel_case

from services.errors import BadUserInput, FieldError

EMAIL_PATTERN = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
PHONE_PATTERN = re.compile(r"^\+?[0-9 ().\-]{3,32}$")
# Control characters other than tab and line breaks: invisible, and NUL breaks many consumers.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Format = Literal["email", "email_list", "phone"]


@dataclass(frozen=True)
class Text:
    """A string field: trimmed; blank becomes null unless required."""

    max_length: int = 200
    required: bool = False
    format: Format | None = None


@dataclass(frozen=True)
class Number:
    """A numeric field that cannot be negative."""

    maximum: float | None = None


@dataclass(frozen=True)
class NotNull:
    """A non-text field that may be omitted from a partial update but not set to null."""


@dataclass(frozen=True)
class ObjectIdText:
    """A document id given as 24 hex digits; becomes an ObjectId."""


Rule = Text | Number | NotNull | ObjectIdText


def _check_format(value: str, text_format: Format) -> str | None:
    if text_format == "email" and not EMAIL_PATTERN.match(value):
        return "must be an email address like name@example.com"
    if text_format == "email_list":
        addresses = [address.strip() for address in value.split(",")]
        if not all(EMAIL_PATTERN.match(address) for address in addresses):
            return "must be one or more email addresses, separated by commas"
    if text_format == "phone" and not PHONE_PATTERN.match(value):
        return "must be a phone number: digits, spaces, + ( ) . -"
    return None


def _clean_text(value: object, rule: Text) -> tuple[object, str | None]:
    if value is None:
        return None, ("must not be empty" if rule.required else None)
    assert isinstance(value, str)
    text = value.strip()
    if not text:
        return None, ("must not be empty" if rule.required else None)
    if len(text) > rule.max_length:
        return text, f"must be at most {rule.max_length} characters"
    if CONTROL_CHARACTERS.search(text):
        return text, "must not contain control characters"
    if rule.format is not None:
        return text, _check_format(text, rule.format)
    return text, None


def _clean_number(value: object, rule: Number) -> tuple[object, str | None]:
    if value is None:
        return None, None
    assert isinstance(value, int | float)
    if value < 0:
        return value, "must not be negative"
    if rule.maximum is not None and value > rule.maximum:
        return value, f"must be at most {rule.maximum:g}"
    return value, None


def _parse_object_id(value: object) -> tuple[object, str | None]:
    try:
        return PydanticObjectId(str(value)), None
    except InvalidId:
        return value, "is not a valid id"


def clean(values: Mapping[str, object], rules: Mapping[str, Rule]) -> dict[str, object]:
    """Trim and check `values` (snake_case names) against `rules`; fields without a rule pass."""
    cleaned: dict[str, object] = {}
    errors: list[FieldError] = []
    for name, value in values.items():
        rule = rules.get(name)
        message: str | None = None
        if isinstance(rule, Text):
            value, message = _clean_text(value, rule)
        elif isinstance(rule, Number):
            value, message = _clean_number(value, rule)
        elif isinstance(rule, NotNull) and value is None:
            message = "must not be null"
        elif isinstance(rule, ObjectIdText) and value is not None:
            value, message = _parse_object_id(value)
        if message is not None:
            errors.append(FieldError(field=to_camel_case(name), message=message))
        cleaned[name] = value
    if errors:
        raise BadUserInput(errors)
    return cleaned


def object_id(value: str, field: str = "id") -> PydanticObjectId:
    """A client-given document id; BAD_USER_INPUT unless it is 24 hex digits."""
    parsed, message = _parse_object_id(value)
    if message is not None:
        raise BadUserInput([FieldError(field, message)])
    assert isinstance(parsed, PydanticObjectId)
    return parsed
