"""Domain errors and the GraphQL error codes they map to (docs/api.md)."""

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    CONFLICT = "CONFLICT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    UNREADABLE_DOCUMENT = "UNREADABLE_DOCUMENT"
    BAD_REQUEST = "BAD_REQUEST"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    RATE_LIMITED = "RATE_LIMITED"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    """An error the client caused or may act on; its message is safe to show."""

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code.value}


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class ServiceUnavailable(DomainError):
    code = ErrorCode.SERVICE_UNAVAILABLE


class UnreadableDocument(DomainError):
    """A stored document this server cannot read (names it and why; `crm doctor` lists all)."""

    code = ErrorCode.UNREADABLE_DOCUMENT


class BadUserInput(DomainError):
    """Every invalid field of one input at once, so a form can mark them all."""

    code = ErrorCode.BAD_USER_INPUT

    def __init__(self, field_errors: list[FieldError]) -> None:
        fields = ", ".join(error.field for error in field_errors)
        super().__init__(f"Invalid input: {fields}")
        self.field_errors = field_errors

    @property
    def extensions(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "fieldErrors": [
                {"field": error.field, "message": error.message} for error in self.field_errors
            ],
        }


def not_found(kind: str, key: str) -> NotFound:
    shown = key if len(key) <= 64 else key[:64] + "…"  # never echo a huge value back
    return NotFound(f"{kind} {shown!r} does not exist")
