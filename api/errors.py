"""How errors reach clients: a code on every error, nothing internal ever shown (docs/api.md)."""

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLInputType, ValidationContext, ValueNode
from graphql.language import ArgumentNode
from graphql.language.visitor import SKIP, VisitorAction
from graphql.utilities.validate_input_value import validate_input_literal
from graphql.validation import ValuesOfCorrectTypeRule
from pymongo.errors import AutoReconnect, ConnectionFailure, ExecutionTimeout, NetworkTimeout
from strawberry.extensions import SchemaExtension

from observability.request_id import current_request_id
from services.errors import DomainError, ErrorCode, ServiceUnavailable

log = logging.getLogger("crm.errors")

DATABASE_DOWN = (ConnectionFailure, AutoReconnect, NetworkTimeout, ExecutionTimeout)
PUBLIC_CODES = {code.value for code in ErrorCode} - {ErrorCode.INTERNAL_SERVER_ERROR.value}
# Codes that tell a client to retry or contact support: they carry the request id.
SUPPORT_CODES = {
    ErrorCode.INTERNAL_SERVER_ERROR.value,
    ErrorCode.SERVICE_UNAVAILABLE.value,
    ErrorCode.UNREADABLE_DOCUMENT.value,  # stored data to repair: the id finds the log line
}
# graphql-core: "Variable '$input' has invalid value at .status: Value 'X' does not exist…"
VARIABLE_ERROR = re.compile(
    r"^Variable '\$(?P<variable>\w+)' (?:has invalid value(?: at (?P<path>\S+?))?:)?"
)


def _bad_input(field: str, message: str) -> dict[str, Any]:
    return {
        "code": ErrorCode.BAD_USER_INPUT.value,
        "fieldErrors": [{"field": field, "message": message}],
    }


class InputLiteralRule(ValuesOfCorrectTypeRule):
    """Graphql-core's literal check, reporting BAD_USER_INPUT with the offending field."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.argument: str | None = None

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self.argument = node.name.value

    def leave_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self.argument = None

    def is_valid_value_node(
        self, node: ValueNode, input_type: GraphQLInputType | None
    ) -> VisitorAction:
        if input_type:

            def on_error(error: GraphQLError, path: list[str | int]) -> None:
                field = ".".join(str(part) for part in path) or self.argument or ""
                self.report_error(
                    GraphQLError(
                        error.message, error.nodes, extensions=_bad_input(field, error.message)
                    )
                )

            validate_input_literal(
                node, input_type, on_error, None, None, self.context.hide_suggestions
            )
        return SKIP


class InputErrorCodes(SchemaExtension):
    """Swaps graphql-core's literal check for one that says which field is bad."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = tuple(
            InputLiteralRule if rule is ValuesOfCorrectTypeRule else rule
            for rule in context.validation_rules
        )
        yield


def _request_error_code(error: GraphQLError) -> dict[str, Any]:
    """Errors raised before execution: unparsable document, failed validation, bad variables."""
    if error.message.startswith("Syntax Error"):
        return {"code": ErrorCode.GRAPHQL_PARSE_FAILED.value}
    if match := VARIABLE_ERROR.match(error.message):
        return _bad_input((match["path"] or "").lstrip(".") or match["variable"], error.message)
    return {"code": ErrorCode.GRAPHQL_VALIDATION_FAILED.value}


def public_error(error: GraphQLError) -> dict[str, Any]:
    """The error as a client sees it; anything unexpected is masked and logged.

    INTERNAL_SERVER_ERROR and SERVICE_UNAVAILABLE carry `extensions.requestId` (the request's
    `X-Request-ID`, also on its log lines), for users to quote to support.
    """
    public = _public_error(error, report=True)
    extensions = public["extensions"]
    if extensions["code"] in SUPPORT_CODES and (request_id := current_request_id()):
        public["extensions"] = {**extensions, "requestId": request_id}
    return public


def error_code(error: GraphQLError) -> str:
    """The `extensions.code` a client gets for this error (`public_error`'s, without logging)."""
    return str(_public_error(error, report=False)["extensions"]["code"])


def _public_error(error: GraphQLError, *, report: bool) -> dict[str, Any]:
    original = error.original_error
    if isinstance(original, DATABASE_DOWN):
        original = ServiceUnavailable("The database is unavailable; retry shortly")
        if report:
            log.warning("database unavailable: %s", error.original_error)
    if isinstance(original, DomainError):
        return {**error.formatted, "message": original.message, "extensions": original.extensions}
    if original is None and (error.extensions or {}).get("code") in PUBLIC_CODES:
        return dict(error.formatted)
    if is_request_error(error):
        return {**error.formatted, "extensions": _request_error_code(error)}
    if report:
        log.error("unexpected error in %s", error.path, exc_info=original or error)
    return {
        **error.formatted,
        "message": "Internal server error",
        "extensions": {"code": ErrorCode.INTERNAL_SERVER_ERROR.value},
    }


def is_request_error(error: GraphQLError) -> bool:
    """A request error (GraphQL-over-HTTP): raised before execution, so it has no field path.

    An exception from outside graphql-core has no path either when a subscription's event
    stream raises it (or a schema extension does): not a request error, but an unexpected one
    (a variable's scalar rejecting its value keeps its exception, and is a request error).
    """
    original = error.original_error
    return error.path is None and (
        original is None
        or isinstance(original, GraphQLError)
        or VARIABLE_ERROR.match(error.message) is not None
    )
